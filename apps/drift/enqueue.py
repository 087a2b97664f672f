"""Drift work sent to the drift workers by task name, so services never import tasks.

Routes (the queue) come from :mod:`apps.queues`.
"""

from __future__ import annotations

from celery import current_app

FIT_BASELINE_TASK = "apps.drift.tasks.fit_baseline"
# A fit request older than this is dropped; the baseline stays FITTING until the janitor or a
# new request.
FIT_EXPIRES_S = 6 * 3600


def baseline_fit(baseline_id: int) -> None:
    current_app.send_task(FIT_BASELINE_TASK, args=[baseline_id], expires=FIT_EXPIRES_S)


RUN_CHECK_TASK = "apps.drift.tasks.run_drift_check"
# As the beat's own check messages (tasks.CHECK_EXPIRES_S): an old request is dropped.
RUN_CHECK_EXPIRES_S = 30 * 60


def drift_check(monitor_id: int) -> None:
    current_app.send_task(RUN_CHECK_TASK, args=[monitor_id], expires=RUN_CHECK_EXPIRES_S)
