"""Queuing the ingest follow-up by task name, so services never import tasks (``tasks`` imports
``services``; this keeps the dependency one-way). Routes come from ``apps/queues.py``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import current_app

from apps.queues import INGEST

logger = logging.getLogger(__name__)

PROCESS_CALLS = "apps.ingest.tasks.process_calls"
PROCESS_FEEDBACK = "apps.ingest.tasks.process_feedback"
FOLLOW_UP_CHUNK = 200
EXPIRES = 3600


def enqueue_follow_up(
    *, project_id: int, call_ids: Sequence[uuid.UUID], feedback_call_ids: Sequence[uuid.UUID] = ()
) -> None:
    """Queue the workers' part. A lost message is harmless: the sweeper finds unprocessed calls."""
    try:
        for start in range(0, len(call_ids), FOLLOW_UP_CHUNK):
            chunk = [str(i) for i in call_ids[start : start + FOLLOW_UP_CHUNK]]
            current_app.send_task(
                PROCESS_CALLS, args=(project_id, chunk), queue=INGEST, expires=EXPIRES
            )
        if feedback_call_ids:
            current_app.send_task(
                PROCESS_FEEDBACK,
                args=(project_id, [str(i) for i in feedback_call_ids]),
                queue=INGEST,
                expires=EXPIRES,
            )
    except Exception:
        # The broker being down must not fail an ingest whose rows are committed.
        logger.warning("could not queue follow-up work; the sweeper will pick it up", exc_info=True)
