"""Ingest follow-up tasks: ids in, a service called; safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.ingest import services

# Transient: the broker or the database went away, or PostgreSQL chose this transaction as a
# deadlock victim. The follow-up is idempotent (it only touches unprocessed calls), so a retry
# is safe; the sweeper covers what retries do not.
_TRANSIENT = (ConnectionError, OperationalError, InterfaceError)


@shared_task(acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, max_retries=5)
def process_calls(project_id: int, call_ids: list[str]) -> int:
    return services.calls_follow_up(project_id=project_id, call_ids=call_ids)


@shared_task(acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, max_retries=5)
def process_feedback(project_id: int, call_ids: list[str]) -> int:
    return services.feedback_follow_up(project_id=project_id, call_ids=call_ids)


@shared_task
def sweep_unprocessed_calls() -> int:
    return services.unprocessed_calls_sweep()


@shared_task
def sweep_otlp_log_events() -> int:
    from apps.ingest.otlp.services import otlp_log_events_sweep

    return otlp_log_events_sweep()
