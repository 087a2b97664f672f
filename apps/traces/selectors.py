"""Reads of calls and feedback. Every query takes the project first: no read crosses tenants."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from apps.accounts.models import Project
from apps.core.dbtypes import EARLIEST_LOADABLE, LATEST_LOADABLE
from apps.core.errors import ApplicationError, NotFound
from apps.traces.models import Call, Feedback


@dataclass(frozen=True)
class CallFilters:
    start: datetime | None = None
    end: datetime | None = None
    model: str | None = None
    release: str | None = None
    environment: str | None = None
    status: str | None = None
    end_user_id: str | None = None
    session_id: str | None = None
    tag: str | None = None
    trace_id: str | None = None
    search: str | None = None
    flagged: bool | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    call_ids: Sequence[uuid.UUID] | None = None  # only these calls (a drift group's, say)


def call_queryset(*, project: Project, filters: CallFilters | None = None) -> QuerySet[Call]:
    qs = Call.objects.filter(project=project)
    f = filters or CallFilters()
    if f.start:
        qs = qs.filter(start_time__gte=f.start)
    if f.end:
        qs = qs.filter(start_time__lt=f.end)
    if f.call_ids is not None:
        qs = qs.filter(id__in=list(f.call_ids))
    for field, value in (
        ("model", f.model),
        ("release", f.release),
        ("environment", f.environment),
        ("status", f.status),
        ("end_user_id", f.end_user_id),
        ("session_id", f.session_id),
        ("trace_id", f.trace_id),
        ("prompt_name", f.prompt_name),
        ("prompt_version", f.prompt_version),
    ):
        if value:
            qs = qs.filter(**{field: value})
    if f.tag:
        qs = qs.filter(tags__contains=[f.tag])
    if f.flagged is not None:
        qs = qs.filter(flagged=f.flagged)
    if f.search:
        qs = qs.filter(Q(prompt__icontains=f.search) | Q(response__icontains=f.search))
    return qs


def _encode_cursor(call: Call) -> str:
    raw = json.dumps([call.start_time.isoformat(), str(call.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSOR_MAX = 200  # an encoded cursor is ~90 characters


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A crafted cursor (deeply nested, out-of-range time, wrong shape) is a 400 naming it."""
    try:
        if len(cursor) > _CURSOR_MAX:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        start, call_id = json.loads(base64.urlsafe_b64decode(padded))
        moment = datetime.fromisoformat(start)
        if moment.tzinfo is None or not EARLIEST_LOADABLE <= moment <= LATEST_LOADABLE:
            raise ValueError("time out of range")
        return moment, uuid.UUID(call_id)
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise ApplicationError("cursor: invalid", field="cursor") from exc


def call_page(
    *, project: Project, filters: CallFilters, limit: int = 50, cursor: str | None = None
) -> tuple[list[Call], str | None]:
    """Newest first, keyset-paginated on (start_time, id): stable and O(limit) at any depth."""
    qs = call_queryset(project=project, filters=filters)
    if cursor:
        start, call_id = _decode_cursor(cursor)
        qs = qs.filter(Q(start_time__lt=start) | Q(start_time=start, id__lt=call_id))
    rows = list(qs.order_by("-start_time", "-id")[: limit + 1])
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def call_get(*, project: Project, call_id: uuid.UUID | str) -> Call:
    try:
        key = uuid.UUID(str(call_id))
    except ValueError as exc:
        raise NotFound("call: not found") from exc
    call = Call.objects.filter(project=project, id=key).first()
    if call is None:
        raise NotFound("call: not found")
    return call


def feedback_for_call(*, project: Project, call_id: uuid.UUID) -> QuerySet[Feedback]:
    return Feedback.objects.filter(project=project, call_id=call_id).order_by("created_at")


def trace_calls(*, project: Project, trace_id: str) -> list[Call]:
    if not trace_id:
        return []
    return list(
        Call.objects.filter(project=project, trace_id=trace_id)
        .order_by("start_time")
        .only(
            "project_id",
            "id",
            "parent_id",
            "name",
            "kind",
            "model",
            "status",
            "latency_ms",
            "start_time",
        )[:500]
    )


def _finite(value: float | None) -> float | None:
    # A row stored before the edge refused +Inf/NaN must not make the whole page unrenderable.
    return value if value is None or math.isfinite(value) else None


def call_as_dict(call: Call, *, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(call.id),
        "trace_id": call.trace_id,
        "parent_id": str(call.parent_id) if call.parent_id else None,
        "session_id": call.session_id,
        "user_id": call.end_user_id,
        "name": call.name,
        "kind": call.kind,
        "provider": call.provider,
        "model": call.model,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "total_tokens": call.total_tokens,
        "cached_tokens": call.cached_tokens,
        "reasoning_tokens": call.reasoning_tokens,
        "cost_usd": _finite(call.cost_usd),
        "cost_source": call.cost_source,
        "latency_ms": _finite(call.latency_ms),
        "ttft_ms": _finite(call.ttft_ms),
        "status": call.status,
        "error": call.error,
        "error_type": call.error_type,
        "release": call.release,
        "environment": call.environment,
        "prompt_name": call.prompt_name,
        "prompt_version": call.prompt_version,
        "tags": call.tags,
        "start_time": call.start_time.isoformat(),
        "end_time": call.end_time.isoformat() if call.end_time else None,
        "flagged": call.flagged,
        "processed": call.processed_at is not None,
    }
    if full:
        data.update(
            prompt=call.prompt,
            messages=call.messages,
            response=call.response,
            metadata=call.metadata,
            truncated=call.truncated,
            signals=call.signals,
        )
    return data


def feedback_as_dict(feedback: Feedback) -> dict[str, Any]:
    return {
        "id": str(feedback.event_id),
        "call_id": str(feedback.call_id),
        "source": feedback.source,
        "score": feedback.score,
        "label": feedback.label,
        "labels": feedback.labels,
        "comment": feedback.comment,
        "user_id": feedback.user_id,
        "created_at": feedback.created_at.isoformat(),
    }
