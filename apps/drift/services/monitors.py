"""Drift monitors: one per project, claimed by a worker for each due check (PostHog style), released
with the next window end, and unstuck by the janitor. ``checks.drift_monitor_check`` runs one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.accounts.models import Project
from apps.drift.models import (
    DriftMonitor,
)
from apps.drift.services.windows import floor_to_interval
from apps.embeddings.models import CallEmbedding

STUCK_AFTER = timedelta(minutes=30)


def drift_monitor_ensure(*, project: Project) -> DriftMonitor:
    monitor, _ = DriftMonitor.objects.get_or_create(project=project)
    return monitor


def drift_monitors_ensure() -> int:
    """A monitor for every project that has embedded calls and none yet; returns how many."""
    projects = Project.objects.filter(
        Exists(CallEmbedding.objects.filter(project_id=OuterRef("pk"))),
        ~Exists(DriftMonitor.objects.filter(project_id=OuterRef("pk"))),
    ).values_list("pk", flat=True)
    created = 0
    for project_id in projects:
        _, new = DriftMonitor.objects.get_or_create(project_id=project_id)
        created += int(new)
    return created


def drift_monitor_claim(*, monitor_id: int) -> bool:
    """Claim a due monitor for one check; False when another worker holds it."""
    now = timezone.now()
    return bool(
        DriftMonitor.objects.filter(pk=monitor_id, enabled=True, running_since__isnull=True).update(
            running_since=now
        )
    )


def drift_monitor_release(*, monitor: DriftMonitor) -> None:
    now = timezone.now()
    following = floor_to_interval(now, monitor.interval_minutes) + timedelta(
        minutes=monitor.interval_minutes
    )
    DriftMonitor.objects.filter(pk=monitor.pk).update(
        running_since=None, next_check_at=following, last_check_at=now
    )


def drift_monitors_unstick(*, older_than: timedelta = STUCK_AFTER) -> int:
    """Janitor: release monitors whose worker died mid-check (claims held too long)."""
    return DriftMonitor.objects.filter(running_since__lt=timezone.now() - older_than).update(
        running_since=None
    )


def drift_monitors_due(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        DriftMonitor.objects.filter(
            enabled=True, next_check_at__lte=now, running_since__isnull=True
        ).values_list("pk", flat=True)
    )
