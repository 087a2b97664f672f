"""Reads of the alerts app, always scoped to a project (another project's id is a 404)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from apps.accounts.models import Project
from apps.alerts.models import (
    OPEN_STATES,
    AlertRule,
    Channel,
    Incident,
    IncidentEvent,
    Notification,
)
from apps.core.errors import NotFound


def channel_list(*, project: Project) -> QuerySet[Channel]:
    return Channel.objects.filter(project=project).order_by("id")


def channel_get(*, project: Project, channel_id: int) -> Channel:
    channel = Channel.objects.filter(project=project, pk=channel_id).first()
    if channel is None:
        raise NotFound("channel: not found")
    return channel


def rule_list(*, project: Project, enabled: bool | None = None) -> QuerySet[AlertRule]:
    """Rules with their channels and ``open_incident_count`` (pending or firing)."""
    qs = (
        AlertRule.objects.filter(project=project)
        .prefetch_related(Prefetch("channels", queryset=Channel.objects.order_by("id")))
        .annotate(
            open_incident_count=Count("incidents", filter=Q(incidents__state__in=OPEN_STATES))
        )
        .order_by("id")
    )
    if enabled is not None:
        qs = qs.filter(enabled=enabled)
    return qs


def rule_get(*, project: Project, rule_id: int) -> AlertRule:
    rule = rule_list(project=project).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("alert rule: not found")
    return rule


def incident_list(
    *,
    project: Project,
    state: str | None = None,
    rule_id: int | None = None,
    since: datetime | None = None,
) -> QuerySet[Incident]:
    """Incidents, newest first, each with ``latest_event_kind`` / ``latest_event_at``."""
    latest = IncidentEvent.objects.filter(incident=OuterRef("pk")).order_by("-created_at", "-id")
    qs = (
        Incident.objects.filter(project=project)
        .select_related("rule", "acknowledged_by", "resolved_by")
        .annotate(
            latest_event_kind=Subquery(latest.values("kind")[:1]),
            latest_event_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("-started_at", "-id")
    )
    if state:
        qs = qs.filter(state=state)
    if rule_id is not None:
        qs = qs.filter(rule_id=rule_id)
    if since is not None:
        qs = qs.filter(started_at__gte=since)
    return qs


def incident_get(*, project: Project, incident_id: int) -> Incident:
    """One incident with its whole history (``events``, oldest first)."""
    incident = (
        incident_list(project=project)
        .prefetch_related(
            Prefetch(
                "events",
                queryset=IncidentEvent.objects.select_related("actor").order_by("created_at", "id"),
            )
        )
        .filter(pk=incident_id)
        .first()
    )
    if incident is None:
        raise NotFound("incident: not found")
    return incident


def incident_events(*, incident: Incident) -> QuerySet[IncidentEvent]:
    return IncidentEvent.objects.filter(incident=incident).select_related("actor")


def notification_list(
    *,
    project: Project,
    channel_id: int | None = None,
    incident_id: int | None = None,
    status: str | None = None,
) -> QuerySet[Notification]:
    """The delivery log, newest first."""
    qs = (
        Notification.objects.filter(project=project)
        .select_related("channel", "event__incident__rule")
        .order_by("-created_at", "-id")
    )
    if channel_id is not None:
        qs = qs.filter(channel_id=channel_id)
    if incident_id is not None:
        qs = qs.filter(event__incident_id=incident_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def open_incident_count(*, project: Project) -> int:
    """Pending and firing incidents of a project (the sidebar's badge)."""
    return Incident.objects.filter(project=project, state__in=OPEN_STATES).count()
