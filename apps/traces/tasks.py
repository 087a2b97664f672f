"""Rollup tasks: ids in, a service called; every one is safe to run twice (a flush recomputes
buckets from raw rows under a per-project lock).

Beat: ``calls-partitions-ensure`` hourly and ``calls-retention`` daily (apps/traces/partitions.py);
``rollups-flush`` every 10 s (fans out one flush per project with dirty minutes, so
projects flush in parallel on the ingest workers), ``rollups-reconcile`` every 5 min (re-marks
the last 15 minutes: a mark lost to a killed worker is recovered) and ``rollups-prune`` daily.
"""

from __future__ import annotations

from celery import shared_task

from apps.queues import ROLLUP_FLUSH_EVERY
from apps.traces import partitions, rollups


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True)
def rollups_mark_calls(project_id: int, call_ids: list[str]) -> int:
    return rollups.rollup_add_calls(project_id=project_id, call_ids=call_ids)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True)
def rollups_flush_project(project_id: int) -> int:
    return rollups.rollup_flush(project_id=project_id)


@shared_task
def rollups_flush() -> int:
    """Fan out: one flush per project with dirty minutes (expires before the next beat)."""
    due = rollups.rollup_projects_due()
    for project_id in due:
        rollups_flush_project.apply_async(
            args=(project_id,), expires=ROLLUP_FLUSH_EVERY.total_seconds()
        )
    return len(due)


@shared_task
def rollups_reconcile() -> int:
    return rollups.rollup_reconcile_recent()


@shared_task
def rollups_prune() -> int:
    return rollups.rollup_prune_minutes()


@shared_task
def calls_partitions_ensure() -> list[str]:
    return partitions.partitions_ensure()


@shared_task
def calls_retention() -> dict[str, object]:
    outcome = partitions.calls_retention_apply()
    return {"dropped": outcome.dropped, "calls_deleted": outcome.calls_deleted}
