"""Reads of the prompt registry and of calls per prompt version."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.accounts.models import Project
from apps.core.errors import NotFound
from apps.traces.group_metrics import GroupMetrics, group_metrics
from apps.traces.models import PromptVersion


@dataclass(frozen=True)
class PromptSummary:
    name: str
    versions: int
    metrics: GroupMetrics | None
    latest_version: str


@dataclass(frozen=True)
class VersionRow:
    version: str
    template: str | None
    registered_at: datetime | None
    metrics: GroupMetrics | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "registered": self.template is not None,
            "registered_at": self.registered_at.isoformat() if self.registered_at else None,
            "template": self.template,
            "metrics": self.metrics.as_dict() if self.metrics else None,
        }


def prompt_list(
    *, project: Project, start: datetime | None = None, search: str | None = None
) -> list[PromptSummary]:
    """Every prompt seen in calls (since ``start``) or registered, most recently used first."""
    used = {
        m.key[0]: m
        for m in group_metrics(
            project_id=project.pk, group_by=["prompt_name"], start=start, search=search
        )
    }
    registered: dict[str, list[PromptVersion]] = {}
    versions = PromptVersion.objects.filter(project=project).order_by("created_at")
    if search:
        versions = versions.filter(name__icontains=search)
    for row in versions.only("name", "version", "created_at"):
        registered.setdefault(row.name, []).append(row)
    seen_versions = {
        (m.key[0], m.key[1])
        for m in group_metrics(
            project_id=project.pk,
            group_by=["prompt_name", "prompt_version"],
            start=start,
            search=search,
            limit=5000,
        )
    }
    names = list(used) + [n for n in registered if n not in used]
    out = []
    for name in names:
        versions_of = {v for (n, v) in seen_versions if n == name} | {
            r.version for r in registered.get(name, [])
        }
        latest = registered[name][-1].version if name in registered else ""
        out.append(
            PromptSummary(
                name=name,
                versions=len(versions_of),
                metrics=used.get(name),
                latest_version=latest,
            )
        )
    return out


def prompt_versions(
    *, project: Project, name: str, start: datetime | None = None
) -> list[VersionRow]:
    """The versions of one prompt, registered or only seen in calls, newest first."""
    metrics = {
        m.key[1]: m
        for m in group_metrics(
            project_id=project.pk,
            group_by=["prompt_name", "prompt_version"],
            where={"prompt_name": name},
            start=start,
        )
    }
    registered = {r.version: r for r in PromptVersion.objects.filter(project=project, name=name)}
    if not metrics and not registered:
        raise NotFound(f"prompt: {name!r} not found")
    rows = [
        VersionRow(
            version=version,
            template=registered[version].template if version in registered else None,
            registered_at=registered[version].created_at if version in registered else None,
            metrics=metrics.get(version),
        )
        for version in set(metrics) | set(registered)
    ]

    def created(row: VersionRow) -> float:
        # A registered version is as new as its registration; one only seen in calls, as its
        # first call.
        when = row.registered_at or (row.metrics.first_seen if row.metrics else None)
        return when.timestamp() if when else 0.0

    rows.sort(key=created, reverse=True)
    return rows


@dataclass(frozen=True)
class DiffLine:
    op: str  # "same" | "added" | "removed"
    text: str


def prompt_diff(a: str, b: str) -> list[DiffLine]:
    """Line diff of two templates, for the side-by-side view (text is escaped by the template)."""
    out: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=a.splitlines(), b=b.splitlines(), autojunk=False)
    a_lines, b_lines = a.splitlines(), b.splitlines()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(DiffLine("same", line) for line in a_lines[i1:i2])
            continue
        out.extend(DiffLine("removed", line) for line in a_lines[i1:i2])
        out.extend(DiffLine("added", line) for line in b_lines[j1:j2])
    return out
