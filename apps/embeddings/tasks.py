"""Embed tasks (queue ``embed``): ids in, a service called; safe to run twice.

``embed_calls`` is sent by name from :mod:`apps.ingest.pipeline` with
``[project_id, [call_id, ...]]`` (up to 64 ids).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import current_app, shared_task
from celery.signals import worker_process_init
from django.db import InterfaceError, OperationalError

from apps.embeddings import services
from apps.queues import EMBED

# Only transient failures are retried: a lost database connection. A bad input or a model
# error would fail the same way again.
_TRANSIENT = (OperationalError, InterfaceError, ConnectionError)

logger = logging.getLogger(__name__)


def _warm_up() -> None:
    from apps.embeddings.providers import get_provider
    from apps.quality.safety import warm_up

    try:
        probes = warm_up(get_provider().key)
    except Exception:  # a warm-up failure must not kill the worker: the first task retries
        logger.exception("embed worker warm-up failed")
        return
    logger.info("embed worker warm: model loaded, %d safety probes for its vectors", probes)


@worker_process_init.connect
def _warm_up_embed_worker(**_: Any) -> None:
    """An embed worker loads the model and the known-attack matrix when it starts, not on the
    first ingested call (tens of seconds the first time). In a thread: a pool process must
    answer its parent within seconds of starting."""
    consuming = current_app.amqp.queues.consume_from or {}
    if EMBED in consuming:
        threading.Thread(target=_warm_up, name="embed-warm-up", daemon=True).start()


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
