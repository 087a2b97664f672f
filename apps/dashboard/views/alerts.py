"""Alerts: rules, incidents (acknowledge, resolve) and the notification log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.alerts.durations import format_duration
from apps.alerts.selectors import (
    channel_list,
    incident_get,
    incident_list,
    notification_list,
    rule_get,
    rule_list,
)
from apps.alerts.services.incidents import (
    incident_acknowledge,
    incident_mute,
    incident_resolve,
)
from apps.alerts.services.rules import rule_create, rule_delete, rule_update
from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, acting_user, project_view
from apps.dashboard.forms import AlertRuleForm
from apps.dashboard.selectors.incidents import incidents_similar_past
from apps.dashboard.views.common import flash_error

STATES = ("open", "pending", "firing", "resolved", "all")


DEFAULT_RULE_VALUES = {"kind": "metric", "metric": "latency_p95", "operator": ">", "window": "15m"}


def _alerts_context(
    request: HttpRequest, access: ProjectAccess, rule_form: AlertRuleForm | None = None
) -> dict[str, Any]:
    project = access.project
    state = request.GET.get("state", "open")
    state = state if state in STATES else "open"
    incidents = incident_list(project=project)
    if state == "open":
        incidents = incidents.filter(state__in=["pending", "firing"])
    elif state != "all":
        incidents = incidents.filter(state=state)
    return {
        "state": state,
        "states": STATES,
        "incidents": list(incidents[:100]),
        "rules": list(rule_list(project=project)),
        "notifications": list(notification_list(project=project)[:50]),
        "can_act": access.allows("admin"),
        "rule_form": rule_form or AlertRuleForm(channel_choices=_channel_choices(access)),
        "rule_values": _submitted(rule_form) if rule_form is not None else DEFAULT_RULE_VALUES,
    }


def _submitted(form: AlertRuleForm) -> dict[str, Any]:
    """What the person typed, to show again beside the error (never a blank form)."""
    values: dict[str, Any] = {name: form.data.get(name, "") for name in form.fields}
    data = form.data
    raw = data.getlist("channels") if isinstance(data, QueryDict) else data.get("channels", [])
    values["channels"] = [int(c) for c in raw if str(c).isdigit()]
    return values


@project_view("read")
def alerts(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    return render(request, "dashboard/alerts.html", _alerts_context(request, access))


MUTE_CHOICES = (("1h", 3600), ("4h", 4 * 3600), ("1d", 86400), ("1w", 7 * 86400))
# Group labels that are call filters of the same name on /calls/.
GROUP_FILTERS = ("model", "release", "environment", "status")


@project_view("read")
def incident_detail(request: HttpRequest, access: ProjectAccess, incident_id: int) -> HttpResponse:
    try:
        incident = incident_get(project=access.project, incident_id=incident_id)
    except ApplicationError as exc:
        flash_error(request, exc)
        raise  # pragma: no cover - flash_error raises 404 for NotFound
    rule = incident.rule
    # The breached window: the rule's window before the first breach, up to the last look
    # (or the resolve), so the calls behind the numbers are one click away.
    end = incident.resolved_at or incident.last_evaluated_at or incident.started_at
    start = incident.started_at - timedelta(seconds=rule.window_s)
    query = {"start": start.isoformat(), "end": (end + timedelta(seconds=1)).isoformat()}
    for name, value in (incident.group or {}).items():
        if name in GROUP_FILTERS and value:
            query[name] = str(value)
    if rule.metric == "error_rate":
        query["status"] = "error"
    context = {
        "incident": incident,
        "rule": rule,
        "events": list(incident.events.all()),
        "calls_url": f"{reverse('dashboard:calls')}?{urlencode(query)}",
        "all_calls_url": f"{reverse('dashboard:calls')}?"
        + urlencode(
            {k: v for k, v in query.items() if k != "status" or "status" in incident.group}
        ),
        "is_muted": bool(incident.muted_until and incident.muted_until > timezone.now()),
        "mute_choices": [label for label, _ in MUTE_CHOICES],
        "can_act": access.allows("admin"),
        "examples": (incident.details or {}).get("examples") or [],
        "similar": incidents_similar_past(incident=incident),
    }
    return render(request, "dashboard/incident.html", context)


@require_POST
@project_view("admin")
def incident_action(
    request: HttpRequest, access: ProjectAccess, incident_id: int, action: str
) -> HttpResponse:
    if action not in ("acknowledge", "resolve", "mute", "unmute"):
        raise Http404("action: not found")
    note = request.POST.get("note", "").strip()[:2000]
    try:
        incident = incident_get(project=access.project, incident_id=incident_id)
        if action == "acknowledge":
            incident_acknowledge(incident=incident, user=acting_user(request), note=note)
            messages.success(request, f"Incident #{incident.pk} acknowledged.")
        elif action == "resolve":
            incident_resolve(incident=incident, user=acting_user(request), message=note)
            messages.success(request, f"Incident #{incident.pk} resolved.")
        else:
            seconds = dict(MUTE_CHOICES).get(request.POST.get("duration", ""), 0)
            if action == "mute" and not seconds:
                raise ApplicationError("duration: choose 1h, 4h, 1d or 1w", field="duration")
            incident_mute(
                incident=incident,
                user=acting_user(request),
                duration_s=seconds if action == "mute" else 0,
            )
            messages.success(
                request, f"Incident #{incident.pk} {'muted' if action == 'mute' else 'unmuted'}."
            )
    except ApplicationError as exc:
        flash_error(request, exc)
    if request.POST.get("next") == "incident":
        return redirect("dashboard:incident", incident_id=incident_id)
    return redirect("dashboard:alerts")


def _channel_choices(access: ProjectAccess) -> list[tuple[int, str]]:
    return [(c.pk, c.name) for c in channel_list(project=access.project)]


@require_POST
@project_view("admin")
def rule_new(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = AlertRuleForm(request.POST, channel_choices=_channel_choices(access))
    if form.is_valid():
        try:
            rule = rule_create(
                project=access.project, user=acting_user(request), **form.rule_data()
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Rule “{rule.name}” created; it is checked every minute.")
            return redirect("dashboard:alerts")
    context = _alerts_context(request, access, rule_form=form)
    return render(request, "dashboard/alerts.html", context, status=400)


@project_view("admin")
def rule_edit(request: HttpRequest, access: ProjectAccess, rule_id: int) -> HttpResponse:
    try:
        rule = rule_get(project=access.project, rule_id=rule_id)
    except ApplicationError as exc:
        flash_error(request, exc)
        raise  # pragma: no cover - flash_error raises 404 for NotFound
    choices = _channel_choices(access)
    if request.method == "POST":
        form = AlertRuleForm(request.POST, channel_choices=choices)
        if form.is_valid():
            data = form.rule_data()
            for name in ("threshold", "critical_threshold"):
                data.setdefault(name, None)  # a cleared box clears the threshold
            try:
                rule_update(rule=rule, **data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Rule “{data['name']}” saved.")
                return redirect("dashboard:alerts")
        values = _submitted(form)
        status = 400
    else:
        form = AlertRuleForm(channel_choices=choices)
        values = {
            "name": rule.name,
            "kind": rule.kind,
            "metric": rule.metric,
            "operator": rule.operator,
            "threshold": "" if rule.threshold is None else rule.threshold,
            "critical_threshold": ""
            if rule.critical_threshold is None
            else rule.critical_threshold,
            "window": format_duration(rule.window_s),
            "channels": [c.pk for c in rule.channels.all()],
        }
        status = 200
    context = {"rule": rule, "rule_form": form, "rule_values": values}
    return render(request, "dashboard/rule_edit.html", context, status=status)


@require_POST
@project_view("admin")
def rule_action(
    request: HttpRequest, access: ProjectAccess, rule_id: int, action: str
) -> HttpResponse:
    if action not in ("enable", "disable", "delete"):
        raise Http404("action: not found")
    try:
        rule = rule_get(project=access.project, rule_id=rule_id)
        if action == "delete":
            rule_delete(rule=rule)
            messages.success(request, f"Rule “{rule.name}” deleted.")
        else:
            rule_update(rule=rule, enabled=action == "enable")
            messages.success(request, f"Rule “{rule.name}” {action}d.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return redirect("dashboard:alerts")
