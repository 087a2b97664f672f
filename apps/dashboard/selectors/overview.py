"""The overview's KPI cards (current against previous period) and its filter facets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apps.accounts.models import Project
from apps.traces.metrics import CALL_TABLE, PeriodTotals, fetch_rows
from apps.traces.models import Call


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | None
    previous: float | None
    fmt: str  # "int" | "usd" | "ms" | "pct" | "score"
    # True when a rise is good news (volume, score); False when it is bad (cost, errors).
    higher_is_better: bool | None = None

    @property
    def delta(self) -> float | None:
        """Relative change against the previous period; None when it cannot be computed."""
        if self.value is None or self.previous in (None, 0):
            return None
        assert self.previous is not None
        return (self.value - self.previous) / abs(self.previous)

    @property
    def tone(self) -> str:
        d = self.delta
        if d is None or abs(d) < 0.005 or self.higher_is_better is None:
            return "neutral"
        return "good" if (d > 0) == self.higher_is_better else "bad"


def overview_kpis(current: PeriodTotals, previous: PeriodTotals) -> list[Kpi]:
    c, p = current.calls, previous.calls
    return [
        Kpi("calls", "LLM calls", c.calls, p.calls, "int", None),
        Kpi("cost", "Cost", c.cost_usd, p.cost_usd, "usd", False),
        Kpi("tokens", "Tokens", c.total_tokens, p.total_tokens, "int", None),
        Kpi("p50", "Latency p50", c.p50_ms, p.p50_ms, "ms", False),
        Kpi("p95", "Latency p95", c.p95_ms, p.p95_ms, "ms", False),
        Kpi("p99", "Latency p99", c.p99_ms, p.p99_ms, "ms", False),
        Kpi("errors", "Error rate", c.error_rate, p.error_rate, "pct", False),
        Kpi(
            "feedback",
            "Feedback score",
            current.feedback_score,
            previous.feedback_score,
            "score",
            True,
        ),
        Kpi("flagged", "Flagged", c.rate("flagged"), p.rate("flagged"), "pct", False),
    ]


# --- Facets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facets:
    models: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def call_facets(*, project: Project, since: datetime, limit: int = 100) -> Facets:
    """Distinct models, releases, environments and tags seen since ``since`` (for filters)."""
    where = "project_id = %s AND start_time >= %s"
    sql = f"""
        SELECT
          ARRAY(SELECT DISTINCT model FROM {CALL_TABLE} WHERE {where} AND model <> ''
                ORDER BY 1 LIMIT %s) AS models,
          ARRAY(SELECT DISTINCT release FROM {CALL_TABLE} WHERE {where} AND release <> ''
                ORDER BY 1 LIMIT %s) AS releases,
          ARRAY(SELECT DISTINCT environment FROM {CALL_TABLE} WHERE {where}
                AND environment <> '' ORDER BY 1 LIMIT %s) AS environments,
          ARRAY(SELECT DISTINCT tag FROM {CALL_TABLE}, unnest(tags) AS tag WHERE {where}
                ORDER BY 1 LIMIT %s) AS tags
    """  # noqa: S608 - identifiers are ours; values are parameters
    args: list[Any] = []
    for _ in range(4):
        args += [project.pk, since, limit]
    row = fetch_rows(sql, args)[0]
    return Facets(
        models=list(row["models"]),
        releases=list(row["releases"]),
        environments=list(row["environments"]),
        tags=list(row["tags"]),
    )


def project_has_calls(*, project: Project) -> bool:
    return Call.objects.filter(project=project).exists()


# --- Trace tree --------------------------------------------------------------------------------
