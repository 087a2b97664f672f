"""Enqueue evaluator tasks by name (services never import tasks)."""

from __future__ import annotations

from collections.abc import Sequence

from celery import current_app

from apps.queues import EVALUATE

EVALUATE_TASK = "apps.evaluators.tasks.evaluate"
SELECT_TASK = "apps.evaluators.tasks.select_calls"
JOB_EXPIRES_S = 24 * 3600


def evaluate_jobs(*, job_ids: Sequence[int]) -> None:
    for job_id in job_ids:
        current_app.send_task(
            EVALUATE_TASK, args=[int(job_id)], queue=EVALUATE, expires=JOB_EXPIRES_S
        )
