"""Small builders for dashboard tests: calls, feedback, alert rules and incidents with sensible
defaults."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.accounts.models import Project
from apps.alerts.models import AlertRule, Incident, IncidentEvent
from apps.alerts.services.rules import rule_create
from apps.traces.models import Call, Feedback
from apps.traces.rollups import rollup_add_calls, rollup_flush


def _roll_up(project: Project, call_id: uuid.UUID) -> None:
    """What the follow-up and the next flush do in production: the overview reads rollups."""
    rollup_add_calls(project_id=project.pk, call_ids=[call_id])
    rollup_flush(project_id=project.pk, wait=True)


def make_call(project: Project, *, ago: timedelta = timedelta(minutes=5), **fields: Any) -> Call:
    start: datetime = fields.pop("start_time", timezone.now() - ago)
    defaults: dict[str, Any] = {
        "id": uuid.uuid4(),
        "model": "gpt-4o-mini",
        "release": "v1",
        "environment": "production",
        "prompt": "How do I reset my password?",
        "response": "Open Settings, then Security, then Reset password.",
        "input_tokens": 12,
        "output_tokens": 20,
        "total_tokens": 32,
        "cost_usd": 0.0001,
        "latency_ms": 800.0,
        "status": "ok",
        "trace_id": uuid.uuid4().hex,
    }
    defaults.update(fields)
    call = Call.objects.create(project=project, start_time=start, **defaults)
    _roll_up(project, call.id)
    return call


def make_feedback(project: Project, call: Call, **fields: Any) -> Feedback:
    defaults: dict[str, Any] = {"score": 1.0, "source": "end_user"}
    defaults.update(fields)
    feedback = Feedback.objects.create(project=project, call_id=call.id, **defaults)
    _roll_up(project, call.id)
    return feedback


def make_rule(project: Project, **fields: Any) -> AlertRule:
    """An error-rate rule per model (over 20% in 10 min) unless ``fields`` say otherwise."""
    defaults: dict[str, Any] = {
        "name": "Errors",
        "kind": "metric",
        "metric": "error_rate",
        "operator": ">",
        "threshold": 0.2,
        "window": "10m",
        "group_by": ["model"],
    }
    defaults.update(fields)
    return rule_create(project=project, **defaults)


def make_incident(
    project: Project,
    rule: AlertRule,
    *,
    ago: timedelta = timedelta(minutes=2),
    lasted: timedelta | None = None,
    values: tuple[float, ...] = (),
    **fields: Any,
) -> Incident:
    """An incident of ``rule`` for model gpt-4o that started ``ago``: firing, or resolved after
    ``lasted``; ``values`` become its re-notification events (the peak reads from them)."""
    start = timezone.now() - ago
    defaults: dict[str, Any] = {
        "group_key": '{"model":"gpt-4o"}',
        "group": {"model": "gpt-4o"},
        "state": "resolved" if lasted is not None else "firing",
        "severity": "warning",
        "value": 0.3,
        "threshold": 0.2,
        "summary": "Error rate high",
        "started_at": start,
        "resolved_at": start + lasted if lasted is not None else None,
    }
    defaults.update(fields)
    incident = Incident.objects.create(project=project, rule=rule, **defaults)
    for value in values:
        IncidentEvent.objects.create(incident=incident, kind="renotify", value=value)
    return incident
