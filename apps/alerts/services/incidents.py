"""Incident actions: what people do (acknowledge, resolve, mute) and closing an incident, which
the evaluation does too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.alerts.models import (
    AlertRule,
    Channel,
    EventKind,
    Incident,
    IncidentState,
)
from apps.alerts.services.outbox import User, enqueue_deliveries, record_event, user_id
from apps.core.errors import ApplicationError

MAX_MUTE = timedelta(days=30)


def is_muted(incident: Incident, now: datetime) -> bool:
    return incident.muted_until is not None and incident.muted_until > now


INCIDENT_FIELDS = [
    "state",
    "severity",
    "value",
    "threshold",
    "baseline",
    "sample_count",
    "summary",
    "details",
    "fired_at",
    "resolved_at",
    "notified",
    "last_notified_at",
    "last_evaluated_at",
    "updated_at",
]


def incident_close(
    incident: Incident,
    *,
    now: datetime,
    channels: Sequence[Channel],
    message: str,
    actor: User = None,
) -> list[int]:
    """Close an open incident; one resolve message when a firing message went out."""
    was_firing = incident.state == IncidentState.FIRING
    incident.state = IncidentState.RESOLVED
    incident.resolved_at = now
    incident.resolved_by_id = user_id(actor)
    incident.save(update_fields=[*INCIDENT_FIELDS, "resolved_by"])
    if not was_firing:
        record_event(incident, EventKind.CANCELLED, now=now, message=message, actor=actor)
        return []
    send_to = channels if incident.notified and not is_muted(incident, now) else ()
    _event, ids = record_event(
        incident, EventKind.RESOLVED, now=now, message=message, actor=actor, channels=send_to
    )
    return ids


def _locked_incident(incident: Incident) -> Incident:
    # Same lock order as rule_evaluate (rule, then incident).
    AlertRule.objects.select_for_update().filter(pk=incident.rule_id).exists()
    return Incident.objects.select_for_update().select_related("rule").get(pk=incident.pk)


@transaction.atomic
def incident_acknowledge(*, incident: Incident, user: User, note: str = "") -> Incident:
    incident = _locked_incident(incident)
    if incident.state == IncidentState.RESOLVED:
        raise ApplicationError("incident: already resolved", field="state", status_code=409)
    if incident.acknowledged_at is None:
        now = timezone.now()
        incident.acknowledged_at = now
        incident.acknowledged_by_id = user_id(user)
        incident.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
        record_event(incident, EventKind.ACKNOWLEDGED, now=now, actor=user, message=note[:2000])
    return incident


@transaction.atomic
def incident_resolve(*, incident: Incident, user: User, message: str = "") -> Incident:
    incident = _locked_incident(incident)
    if incident.state == IncidentState.RESOLVED:
        return incident
    channels = list(incident.rule.channels.all())
    ids = incident_close(
        incident, now=timezone.now(), channels=channels, message=message, actor=user
    )
    enqueue_deliveries(ids)
    return incident


@transaction.atomic
def incident_mute(*, incident: Incident, user: User, duration_s: int) -> Incident:
    """Mute for ``duration_s`` (0 unmutes): events are kept, no messages are sent."""
    if not 0 <= duration_s <= MAX_MUTE.total_seconds():
        raise ApplicationError("duration: between 0 and 30 days", field="duration")
    incident = _locked_incident(incident)
    now = timezone.now()
    incident.muted_until = now + timedelta(seconds=duration_s) if duration_s else None
    incident.save(update_fields=["muted_until", "updated_at"])
    text = f"muted until {incident.muted_until:%Y-%m-%d %H:%M} UTC" if duration_s else "unmuted"
    record_event(incident, EventKind.MUTED, now=now, actor=user, message=text)
    return incident
