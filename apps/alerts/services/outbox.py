"""The outbox: an incident event and one notification row per enabled channel, written in the
caller's transaction, and the delivery wake-ups queued once it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from apps.alerts import enqueue
from apps.alerts.models import (
    NOTIFYING_EVENTS,
    Channel,
    EventKind,
    Incident,
    IncidentEvent,
    Notification,
)

User = AbstractBaseUser | AnonymousUser | None


def user_id(user: User) -> int | None:
    # API keys authenticate without a person (their user has no primary key).
    if user is None or not user.is_authenticated:
        return None
    pk = getattr(user, "pk", None)
    return pk if isinstance(pk, int) else None


def enqueue_deliveries(notification_ids: Sequence[int], *, countdown: float = 0.0) -> None:
    """Queue delivery tasks once the transaction that wrote the rows commits."""
    if not notification_ids:
        return
    ids = list(notification_ids)

    def send() -> None:
        for notification_id in ids:
            enqueue.notification_deliver(notification_id, countdown=countdown)

    transaction.on_commit(send)


def record_event(
    incident: Incident,
    kind: EventKind,
    *,
    now: datetime,
    message: str = "",
    actor: User = None,
    channels: Sequence[Channel] = (),
) -> tuple[IncidentEvent, list[int]]:
    event = IncidentEvent.objects.create(
        incident=incident,
        kind=kind,
        severity=incident.severity,
        value=incident.value,
        message=message,
        actor_id=user_id(actor),
    )
    ids: list[int] = []
    if kind in NOTIFYING_EVENTS:
        for channel in channels:
            if not channel.enabled:
                continue
            notification = Notification.objects.create(
                project_id=incident.project_id,
                channel=channel,
                event=event,
                dedupe_key=f"{event.pk}:{channel.pk}",
            )
            ids.append(notification.pk)
    return event, ids
