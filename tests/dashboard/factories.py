"""Small builders for dashboard tests: calls and feedback with sensible defaults."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.accounts.models import Project
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
