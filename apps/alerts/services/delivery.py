"""Delivering notifications: claim, send through the channel's transport, record the outcome.


Delivery guarantees (``notification_deliver``)
----------------------------------------------
Every message is a ``Notification`` row created in the same transaction as the incident event
that causes it, with a unique ``dedupe_key`` (event id + channel id), so evaluating twice cannot
create two messages. A worker sends a row only after claiming it with a conditional UPDATE
(``queued``/``retry`` -> ``sending``, ``attempts + 1``, a lease), so two workers, or a task
delivered twice by the broker, cannot both send it. Just before the HTTP request the worker
commits ``send_started_at``; every later write is fenced on ``(status='sending', attempts=n)``.

A worker killed mid-send leaves a ``sending`` row whose lease runs out. Then:

* ``send_started_at`` empty: it died before anything went out, so the row is sent again;
* ``send_started_at`` set: the request may have reached Slack, which has no idempotency key.
  We choose **at-most-once** for this window: the row becomes ``unknown`` ("outcome unknown,
  not resent") and is shown as such in the notification log. A duplicate page at 3 a.m. trains
  people to ignore alerts; a lost one is visible in the log, the incident stays firing in the
  UI and the re-notify interval repeats it. The window is one HTTP request long (timeouts
  bound it). Receivers of the generic webhook can do better: ``X-Driftline-Delivery`` is stable
  across retries, so they may deduplicate.

An HTTP answer we did observe (429, 5xx, timeouts) is retried with backoff up to
``MAX_ATTEMPTS``; 429 honours ``Retry-After`` and pauses the whole channel. Permanent errors
fail the row, and those that are the channel's fault disable the channel with the reason.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from apps.alerts.messages import message_for_notification
from apps.alerts.models import (
    Channel,
    Notification,
    NotificationStatus,
)
from apps.alerts.transports import TransportError, get_transport
from apps.core.crypto import DecryptionError, decrypt_str

logger = logging.getLogger(__name__)


MAX_ATTEMPTS = 6


BACKOFF_BASE_S = 5.0


BACKOFF_MAX_S = 15 * 60.0


RETRY_AFTER_MAX_S = 3600.0


def _lease() -> timedelta:
    timeout = float(getattr(settings, "DRIFTLINE_HTTP_TIMEOUT_S", 10.0))
    return timedelta(seconds=max(60.0, 4 * timeout + 20))


def channel_disable(*, channel_id: int, reason: str, now: datetime | None = None) -> bool:
    """Switch a channel off with a reason people can read; False when it already was."""
    now = now or timezone.now()
    updated = Channel.objects.filter(pk=channel_id, enabled=True).update(
        enabled=False,
        disabled_reason=reason[:2000],
        disabled_at=now,
        last_error=reason[:2000],
        updated_at=now,
    )
    if updated:
        logger.warning("alert channel disabled", extra={"channel_id": channel_id, "reason": reason})
    return bool(updated)


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    retry_in: float | None = None  # seconds until the next attempt, when one is due


def _min_interval(kind: str) -> float:
    try:
        return float(get_transport(kind).min_interval_s)
    except TransportError:
        return 0.0


def _backoff(attempts: int) -> float:
    delay: float = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(attempts - 1, 0))
    return delay * random.uniform(0.8, 1.2)  # jitter: retries of many rows do not align


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Send one notification at most once; see the module docstring for the guarantees.

    Runs outside a transaction (autocommit): each step commits before the next, which is
    what makes the claim and ``send_started_at`` meaningful to a second worker.
    """
    # Tests pass ``now`` to move through time; then every timestamp here derives from it.
    fixed = now

    def clock() -> datetime:
        return fixed if fixed is not None else timezone.now()

    now = clock()
    row = Notification.objects.filter(pk=notification_id).select_related("channel").first()
    if row is None:
        return DeliveryOutcome("missing")
    sendable = Q(status__in=[NotificationStatus.QUEUED, NotificationStatus.RETRY])
    stale = Q(status=NotificationStatus.SENDING, lease_until__lt=now)

    # A stale row whose request had started: outcome unknown, never resent (at-most-once).
    if Notification.objects.filter(stale, pk=row.pk, send_started_at__isnull=False).update(
        status=NotificationStatus.UNKNOWN,
        error="the worker stopped during the request; it may have been delivered and is not "
        "sent again, to avoid a duplicate",
        lease_until=None,
        updated_at=now,
    ):
        return DeliveryOutcome(NotificationStatus.UNKNOWN)

    channel = row.channel
    if not channel.enabled and row.event_id is not None:  # test messages go out regardless
        Notification.objects.filter(sendable | stale, pk=row.pk).update(
            status=NotificationStatus.SKIPPED,
            error=f"channel disabled: {channel.disabled_reason}"[:2000],
            updated_at=now,
        )
        return DeliveryOutcome(NotificationStatus.SKIPPED)
    not_before = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    claimable = (sendable & not_before) | (stale & Q(send_started_at__isnull=True))
    if not Notification.objects.filter(claimable, pk=row.pk).exists():
        current = Notification.objects.filter(pk=row.pk).values_list("status", "next_attempt_at")
        status, next_at = current.first() or (NotificationStatus.SENT, None)
        if status == NotificationStatus.RETRY and next_at is not None and next_at > now:
            return DeliveryOutcome(status, (next_at - now).total_seconds())
        return DeliveryOutcome(status)
    # Reserve the channel's next send slot: Slack takes about one message per second per
    # webhook, and after a 429 the whole channel waits for Retry-After. Waiting spends no attempt.
    interval = timedelta(seconds=_min_interval(channel.kind))
    free = Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    if not Channel.objects.filter(free, pk=channel.pk).update(paused_until=now + interval):
        paused = Channel.objects.filter(pk=channel.pk).values_list("paused_until", flat=True)
        resume = paused.first() or now
        Notification.objects.filter(sendable | stale, pk=row.pk).update(
            status=NotificationStatus.RETRY, next_attempt_at=resume, updated_at=now
        )
        return DeliveryOutcome(NotificationStatus.RETRY, max((resume - now).total_seconds(), 0.1))
    claimed = Notification.objects.filter(claimable, pk=row.pk).update(
        status=NotificationStatus.SENDING,
        attempts=F("attempts") + 1,
        lease_until=now + _lease(),
        send_started_at=None,
        updated_at=now,
    )
    if not claimed:  # another worker won the race
        return DeliveryOutcome(NotificationStatus.SENDING)
    row = Notification.objects.select_related(
        "channel__project", "event__incident__rule__project", "event__actor"
    ).get(pk=row.pk)
    fence = Notification.objects.filter(
        pk=row.pk, status=NotificationStatus.SENDING, attempts=row.attempts
    )
    try:
        message = message_for_notification(row)
        url = decrypt_str(channel.url_encrypted)
        secret = decrypt_str(channel.secret_encrypted) if channel.secret_encrypted else ""
        transport = get_transport(channel.kind)(url=url, secret=secret)
    except DecryptionError as exc:
        # The encryption key changed: only a person re-entering the URL can fix it.
        error = TransportError(
            f"{exc}; enter the channel's URL again", permanent=True, disable_channel=True
        )
        return _finish_failed(row, fence, error, now)
    except TransportError as exc:
        error = TransportError(f"cannot prepare the message: {exc}", permanent=True)
        return _finish_failed(row, fence, error, now)

    fence.update(send_started_at=clock())
    try:
        http_status = transport.notify(message)
    except TransportError as exc:
        return _finish_failed(row, fence, exc, clock())
    done_at = clock()
    fence.update(
        status=NotificationStatus.SENT,
        http_status=http_status,
        error="",
        sent_at=done_at,
        lease_until=None,
        next_attempt_at=None,
        updated_at=done_at,
        history=_history(row, done_at, "sent", http_status, ""),
    )
    Channel.objects.filter(pk=channel.pk).update(last_sent_at=done_at, last_error="")
    return DeliveryOutcome(NotificationStatus.SENT)


def _history(
    row: Notification, at: datetime, outcome: str, http_status: int | None, error: str
) -> list[dict[str, Any]]:
    entry = {
        "attempt": row.attempts,
        "at": at.isoformat(),
        "outcome": outcome,
        "http_status": http_status,
        "error": error[:300],
    }
    return [*(row.history or []), entry][-20:]


def _finish_failed(
    row: Notification, fence: Any, exc: TransportError, now: datetime
) -> DeliveryOutcome:
    common: dict[str, Any] = {
        "http_status": exc.http_status,
        "error": exc.message[:2000],
        "lease_until": None,
        "send_started_at": None,
        "updated_at": now,
        "history": _history(
            row,
            now,
            "permanent error" if exc.permanent else "transient error",
            exc.http_status,
            exc.message,
        ),
    }
    Channel.objects.filter(pk=row.channel_id).update(last_error=exc.message[:2000])
    if exc.permanent or row.attempts >= MAX_ATTEMPTS:
        if not exc.permanent:
            common["error"] = f"gave up after {row.attempts} attempts: {exc.message}"[:2000]
        fence.update(status=NotificationStatus.FAILED, **common)
        # A failing test message explains itself; it does not switch the channel off.
        if exc.disable_channel and row.event_id is not None:
            channel_disable(channel_id=row.channel_id, reason=exc.message, now=now)
        return DeliveryOutcome(NotificationStatus.FAILED)
    if exc.retry_after is not None:
        delay = min(max(exc.retry_after, 1.0), RETRY_AFTER_MAX_S)
        Channel.objects.filter(pk=row.channel_id).update(
            paused_until=now + timedelta(seconds=delay)
        )
    else:
        delay = _backoff(row.attempts)
    fence.update(
        status=NotificationStatus.RETRY, next_attempt_at=now + timedelta(seconds=delay), **common
    )
    return DeliveryOutcome(NotificationStatus.RETRY, delay)


def notifications_requeue(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """The sweeper: rows whose task was lost (enqueue failed, worker died, ETA dropped).

    Returns the ids to enqueue again; ``notification_deliver`` decides what happens to each.
    """
    now = now or timezone.now()
    grace = timedelta(seconds=60)
    return list(
        Notification.objects.filter(
            Q(status=NotificationStatus.QUEUED, created_at__lt=now - grace)
            | Q(status=NotificationStatus.RETRY, next_attempt_at__lt=now - grace)
            | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
