"""Evaluator tasks: ids in, a service called; each can run twice without harm."""

from __future__ import annotations

import random
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.evaluators import services

_TRANSIENT = (ConnectionError, OperationalError, InterfaceError)
MAX_RETRIES = 5
MAX_BACKOFF_S = 600.0


def backoff_s(*, retries: int, retry_after: float | None) -> float:
    """The provider's ``Retry-After`` when it gave one (capped), else exponential with jitter."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_BACKOFF_S)
    base: float = min(2.0 ** (retries + 1), MAX_BACKOFF_S)
    return base * (0.5 + random.random() / 2)


@shared_task(acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, max_retries=5)
def select_calls(project_id: int, call_ids: list[str]) -> int:
    """The ingest follow-up's hand-off: pick the evaluators' jobs for these processed calls."""
    return services.evaluations_select(project_id=project_id, call_ids=call_ids)


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def evaluate(self: Any, job_id: int) -> str:
    last = self.request.retries >= MAX_RETRIES
    outcome = services.evaluation_run(job_id=job_id, last_attempt=last)
    if outcome.status == "retry":
        raise self.retry(
            countdown=backoff_s(retries=self.request.retries, retry_after=outcome.retry_after)
        )
    return outcome.status
