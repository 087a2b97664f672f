"""Drift tasks (queue ``drift``): beat fans out one task per due monitor; ids in, a service
called; safe to run twice (the monitor claim and the (monitor, window_end) constraint).
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.drift.services import baselines, checks, monitors

_TRANSIENT = (OperationalError, InterfaceError, ConnectionError)
# A check message older than this is dropped: the next beat tick sends a fresh one.
CHECK_EXPIRES_S = 30 * 60


@shared_task(ignore_result=True)
def schedule_due_checks() -> int:
    monitors.drift_monitors_ensure()
    due = monitors.drift_monitors_due()
    for monitor_id in due:
        run_drift_check.apply_async(args=(monitor_id,), expires=CHECK_EXPIRES_S)
    return len(due)


@shared_task(
    acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, retry_jitter=True, max_retries=3
)
def run_drift_check(monitor_id: int) -> int | None:
    check = checks.drift_monitor_check(monitor_id=monitor_id)
    return check.pk if check is not None else None


@shared_task(ignore_result=True)
def reset_stuck_checks() -> int:
    return monitors.drift_monitors_unstick()


@shared_task(ignore_result=True)
def schedule_baseline_refits() -> int:
    projects = baselines.baselines_refit_due()
    for project_id in projects:
        refit_baseline.apply_async(args=(project_id,), expires=6 * 3600)
    return len(projects)


@shared_task(acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, max_retries=2)
def refit_baseline(project_id: int) -> int | None:
    baseline = baselines.baseline_refit_trailing(project_id=project_id)
    return baseline.pk if baseline is not None else None


@shared_task(acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, max_retries=2)
def fit_baseline(baseline_id: int) -> str:
    """Fit a baseline requested through the API (recorded as FITTING)."""
    from apps.drift.models import Baseline, BaselineStatus

    baseline = Baseline.objects.filter(pk=baseline_id, status=BaselineStatus.FITTING).first()
    if baseline is None:  # already fitted by an earlier delivery
        return "skipped"
    return str(baselines.baseline_fit_run(baseline=baseline).status)
