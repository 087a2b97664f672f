"""The per-project embedding budget: what to embed when ingest outruns the model.

On 2 CPU cores the model embeds ~300 short texts/s while ingest takes thousands of calls/s, so
embedding is sampled: every error, flagged call and call with feedback is embedded; the rest up
to ``DRIFTLINE_EMBEDDING_BUDGET_PER_HOUR`` per project and hour. When the embed queue's backlog
passes ``DRIFTLINE_EMBEDDING_MAX_BACKLOG`` only the must-embed calls are queued, so the backlog
degrades to sampling instead of growing without end.
"""

from __future__ import annotations

import logging
import time
from functools import cache

import redis
from django.conf import settings

from apps.queues import EMBED
from apps.traces.models import EmbedStatus

logger = logging.getLogger(__name__)
_BACKLOG_CACHE_S = 5.0
_backlog_seen: tuple[float, int] = (0.0, 0)


@cache
def _redis() -> redis.Redis | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def embed_backlog() -> int:
    """Messages waiting in the embed queue (cached for a few seconds); -1 when unknown."""
    global _backlog_seen
    now = time.monotonic()
    if now - _backlog_seen[0] < _BACKLOG_CACHE_S:
        return _backlog_seen[1]
    client = _redis()
    try:
        value = int(client.llen(EMBED)) if client is not None else -1
    except redis.RedisError:
        value = -1
    _backlog_seen = (now, value)
    return value


def embedding_decide(*, project_id: int, has_text: bool, must: bool) -> EmbedStatus:
    if not has_text:
        return EmbedStatus.NOT_APPLICABLE
    if must:
        return EmbedStatus.PENDING
    if embed_backlog() * EMBED_MESSAGE_CALLS > settings.DRIFTLINE_EMBEDDING_MAX_BACKLOG:
        return EmbedStatus.SKIPPED
    client = _redis()
    if client is None:
        return EmbedStatus.PENDING
    key = f"driftline:embed-budget:{project_id}:{int(time.time() // 3600)}"
    try:
        used = int(client.incr(key))
        if used == 1:
            client.expire(key, 7200)
    except redis.RedisError:
        return EmbedStatus.PENDING
    return (
        EmbedStatus.PENDING
        if used <= settings.DRIFTLINE_EMBEDDING_BUDGET_PER_HOUR
        else EmbedStatus.SKIPPED
    )


# One embed message carries up to this many calls (see apps.ingest.pipeline.EMBED_CHUNK).
EMBED_MESSAGE_CALLS = 64
