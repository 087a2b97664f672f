"""Per-project ingest rate limit: a token bucket in Redis (shared by every web process).

The limit fails open: when Redis is unreachable ingestion goes on, because losing data is worse
than a burst.
"""

from __future__ import annotations

import logging
import time
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV rate/s, burst, now (s), cost. Returns {allowed, retry_after_ms}.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry_ms = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, retry_ms}
"""


@cache
def _client() -> redis.Redis:
    url = settings.CELERY_BROKER_URL
    return redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)


def rate_limit_check(*, project_id: int, events: int) -> float | None:
    """None when allowed, else the seconds to wait before retrying."""
    rate = settings.INGEST_RATE_LIMIT_EVENTS_PER_S
    if rate <= 0 or not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return None
    burst = max(settings.INGEST_RATE_LIMIT_BURST, events)
    try:
        allowed, retry_ms = _client().eval(
            _BUCKET_SCRIPT,
            1,
            f"driftline:ingest-rate:{project_id}",
            rate,
            burst,
            time.time(),
            events,
        )
    except redis.RedisError:
        logger.warning("rate limiter unavailable; allowing the request", exc_info=True)
        return None
    return None if allowed else max(1.0, retry_ms / 1000.0)
