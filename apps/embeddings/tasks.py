"""Embed tasks (queue ``embed``): ids in, a service called; safe to run twice.

``embed_calls`` is sent by name from :mod:`apps.ingest.pipeline` with
``[project_id, [call_id, ...]]`` (up to 64 ids).
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.embeddings import services
from apps.queues import EMBED, register_periodic

# Only transient failures are retried: a lost database connection. A bad input or a model
# error would fail the same way again.
_TRANSIENT = (OperationalError, InterfaceError, ConnectionError)


@shared_task(
    acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, retry_jitter=True, max_retries=5
)
def embed_calls(project_id: int, call_ids: list[str]) -> int:
    return services.call_embeddings_create(project_id=project_id, call_ids=call_ids).calls_done


@shared_task(
    acks_late=True, autoretry_for=_TRANSIENT, retry_backoff=True, retry_jitter=True, max_retries=3
)
def score_injection(project_id: int, call_ids: list[str]) -> int:
    return services.call_injection_update(project_id=project_id, call_ids=call_ids)


@shared_task(ignore_result=True)
def sweep_pending_embeddings() -> int:
    return services.embeddings_sweep_pending()


register_periodic(
    "embeddings-sweep-pending",
    {
        "task": "apps.embeddings.tasks.sweep_pending_embeddings",
        "schedule": timedelta(minutes=5),
        "options": {"queue": EMBED, "expires": 300},
    },
)
