"""A generic JSON webhook, signed with HMAC-SHA256.

Every request carries:

* ``X-Driftline-Event``: ``incident.firing``, ``incident.resolved``, ... or ``test``;
* ``X-Driftline-Delivery``: the notification id, the same on every retry of one message, so a
  receiver can drop duplicates;
* ``X-Driftline-Timestamp``: Unix seconds when the request was signed;
* ``X-Driftline-Signature``: ``v1=<hex>``, the HMAC-SHA256 of ``"<timestamp>.<raw body>"`` keyed
  with the channel's signing secret.

A receiver recomputes the HMAC over the raw body, compares with ``hmac.compare_digest`` and
refuses timestamps more than 5 minutes old (replays). See :func:`verify_signature`.

2xx is success; 408, 425, 429 and 5xx are retried (``Retry-After`` honoured); 401, 403, 404, 410
and redirects disable the channel; other 4xx fail this message only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from apps.alerts.transports.base import AlertMessage, Transport, TransportError, register
from apps.lib import http

SIGNATURE_VERSION = "v1"
TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None
) -> bool:
    """What a receiver does (also used by our tests)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > TOLERANCE_S:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def build_payload(message: AlertMessage) -> dict[str, Any]:
    return {
        "id": message.delivery_id,
        "type": event_type(message),
        "created_at": message.occurred_at.isoformat(),
        "severity": message.severity,
        "title": message.title,
        "summary": message.summary,
        "confidence": message.confidence,
        "project": message.project_name,
        "rule": {"id": message.rule_id, "name": message.rule_name},
        "incident_id": message.incident_id,
        "figures": dict(message.figures),
        "labels": dict(message.labels),
        "examples": [
            {"call_id": e.call_id, "text": e.text, "url": e.url} for e in message.examples
        ],
        "url": message.url,
        "compare_url": message.compare_url or None,
        **({"data": message.extra} if message.extra else {}),
    }


def event_type(message: AlertMessage) -> str:
    return "test" if message.event == "test" else f"incident.{message.event}"


@register
class WebhookTransport(Transport):
    kind = "webhook"

    def notify(self, message: AlertMessage) -> int:
        body = json.dumps(build_payload(message), default=str).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "X-Driftline-Event": event_type(message),
            "X-Driftline-Delivery": message.delivery_id,
            "X-Driftline-Timestamp": str(timestamp),
            "X-Driftline-Signature": sign(self.secret, timestamp, body),
        }
        try:
            response = http.post_json(self.url, body, headers=headers)
        except http.UnsafeURLError as exc:
            raise TransportError(str(exc), permanent=True, disable_channel=True) from exc
        except http.HttpRequestError as exc:
            raise TransportError(str(exc), permanent=False) from exc
        status = response.status
        if response.ok:
            return status
        error = f"HTTP {status}: {response.text.strip()[:200]}"
        if status in (408, 425, 429) or status >= 500:
            retry_after = http.parse_retry_after(response.headers.get("retry-after"))
            raise TransportError(
                error, permanent=False, retry_after=retry_after, http_status=status
            )
        if status in (401, 403, 404, 410) or 300 <= status < 400:
            raise TransportError(error, permanent=True, disable_channel=True, http_status=status)
        raise TransportError(error, permanent=True, http_status=status)
