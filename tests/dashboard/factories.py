"""Small builders for dashboard tests: calls and feedback with sensible defaults."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.accounts.models import Project
from apps.traces.models import Call, Feedback


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
    return Call.objects.create(project=project, start_time=start, **defaults)


def make_feedback(project: Project, call: Call, **fields: Any) -> Feedback:
    defaults: dict[str, Any] = {"score": 1.0, "source": "end_user"}
    defaults.update(fields)
    return Feedback.objects.create(project=project, call_id=call.id, **defaults)
