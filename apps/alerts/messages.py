"""Turn a notification row into the transport-neutral :class:`AlertMessage`, and UI links."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

from django.conf import settings

from apps.alerts.durations import format_duration
from apps.alerts.evaluators import METRIC_LABELS, format_value
from apps.alerts.models import AlertRule, EventKind, Incident, IncidentEvent, Notification
from apps.alerts.transports.base import AlertMessage, ExampleCall


def ui_url(path: str, *, project_slug: str, query: str = "", fragment: str = "") -> str:
    """An absolute link into the web UI (``DRIFTLINE_BASE_URL`` + path, project named)."""
    base = str(getattr(settings, "DRIFTLINE_BASE_URL", "")).rstrip("/")
    url = f"{base}{path}?project={quote(project_slug)}"
    if query:
        url += f"&{query}"
    return f"{url}#{fragment}" if fragment else url


def incident_url(incident: Incident, *, project_slug: str) -> str:
    # The incident's own page: its numbers, timeline, the calls of the window, mute/resolve.
    return ui_url(f"/alerts/incidents/{incident.pk}/", project_slug=project_slug)


def call_url(call_id: str, *, project_slug: str) -> str:
    return ui_url(f"/calls/{quote(call_id)}/", project_slug=project_slug)


_TITLES = {
    EventKind.FIRING: "{severity}: {rule}",
    EventKind.ESCALATED: "Escalated to CRITICAL: {rule}",
    EventKind.RENOTIFY: "Still firing ({severity}): {rule}",
    EventKind.RESOLVED: "Resolved: {rule}",
}


def compare_url(incident: Incident, *, project_slug: str) -> str:
    """The comparison page behind a prompt-version regression ("" for other incidents)."""
    details = incident.details
    if details.get("metric") != "prompt_regression" or not (details.get("a") and details.get("b")):
        return ""
    query = urlencode(
        {
            "dimension": "prompt_version",
            "prompt": str(details.get("prompt", "")),
            "a": str(details["a"]),
            "b": str(details["b"]),
        }
    )
    return ui_url("/compare/", project_slug=project_slug, query=query)


def _figures(rule: AlertRule, incident: Incident) -> tuple[tuple[str, str], ...]:
    metric = str(incident.details.get("metric") or rule.metric)
    figures: list[tuple[str, str]] = [("Current", format_value(metric, incident.value))]
    if incident.threshold is not None:
        figures.append(("Threshold", f"{rule.operator} {format_value(metric, incident.threshold)}"))
    if incident.baseline is not None:
        figures.append(("Baseline", format_value(metric, incident.baseline)))
    figures.append(("Samples", f"{incident.sample_count:,}"))
    figures.append(("Window", format_duration(rule.window_s)))
    figures.append(("Severity", incident.severity))
    return tuple(figures)


def message_for_event(
    *, event: IncidentEvent, incident: Incident, rule: AlertRule, delivery_id: str
) -> AlertMessage:
    project = rule.project
    kind = EventKind(event.kind)
    title = _TITLES.get(kind, "{rule}").format(
        severity=(event.severity or incident.severity).upper(), rule=rule.name
    )
    if kind == EventKind.RESOLVED:
        metric = str(incident.details.get("metric") or rule.metric)
        if event.actor_id is not None and event.actor is not None:
            summary = f"Resolved by {event.actor.get_username()}."
        elif event.message:
            summary = event.message
        else:
            label = METRIC_LABELS.get(metric, metric or rule.kind)
            summary = f"{label} is back to {format_value(metric, event.value)}."
        if incident.fired_at is not None:
            lasted = int((event.created_at - incident.fired_at).total_seconds())
            summary += f" Firing for {format_duration(max(lasted, 0))}."
        confidence = ""
    else:
        summary = event.message or incident.summary
        confidence = str(incident.details.get("confidence", ""))
    examples = tuple(
        ExampleCall(
            call_id=str(e.get("call_id", "")),
            text=str(e.get("text", "")),
            url=call_url(str(e.get("call_id", "")), project_slug=project.slug),
        )
        for e in incident.details.get("examples", [])
        if isinstance(e, dict)
    )
    return AlertMessage(
        event=kind.value,
        severity=event.severity or incident.severity,
        title=title,
        rule_name=rule.name,
        project_name=project.name,
        summary=summary,
        confidence=confidence,
        figures=_figures(rule, incident),
        labels=tuple((k, str(v) or "(none)") for k, v in incident.group.items()),
        examples=examples if kind != EventKind.RESOLVED else (),
        url=incident_url(incident, project_slug=project.slug),
        compare_url=compare_url(incident, project_slug=project.slug),
        occurred_at=event.created_at,
        delivery_id=delivery_id,
        incident_id=incident.pk,
        rule_id=rule.pk,
    )


def test_message(
    *, channel_name: str, project_name: str, project_slug: str, now: datetime, delivery_id: str
) -> AlertMessage:
    return AlertMessage(
        event="test",
        severity="info",
        title="Test message from Driftline",
        rule_name="(test)",
        project_name=project_name,
        summary=f"Channel {channel_name!r} is set up: alerts of {project_name} will arrive here.",
        confidence="",
        figures=(),
        labels=(),
        examples=(),
        url=ui_url("/alerts/", project_slug=project_slug),
        occurred_at=now,
        delivery_id=delivery_id,
    )


def message_for_notification(notification: Notification) -> AlertMessage:
    """The message a notification row stands for (its event, incident and rule)."""
    delivery_id = f"dl-{notification.pk}"
    channel = notification.channel
    project = channel.project
    if notification.event_id is None:
        return test_message(
            channel_name=channel.name,
            project_name=project.name,
            project_slug=project.slug,
            now=notification.created_at,
            delivery_id=delivery_id,
        )
    event = notification.event
    assert event is not None
    incident = event.incident
    return message_for_event(
        event=event, incident=incident, rule=incident.rule, delivery_id=delivery_id
    )
