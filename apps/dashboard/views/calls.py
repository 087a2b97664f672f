"""The calls explorer (filters, text and semantic search) and one call's page."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.forms import CallFilterForm, cleaned
from apps.dashboard.selectors.calls import call_signal_badges, dedupe_hits, trace_tree
from apps.dashboard.selectors.overview import call_facets, project_has_calls
from apps.dashboard.views.common import flash_error, onboarding_context, query_without
from apps.drift.services.intent_groups import intent_group_call_ids, intent_group_get
from apps.embeddings.selectors import call_similar, calls_search
from apps.evaluators.selectors import scores_for_call
from apps.traces.metrics import RANGES, time_window
from apps.traces.selectors import (
    CallFilters,
    call_get,
    call_page,
    feedback_for_call,
    trace_calls,
)
from apps.traces.trace_selectors import trace_spans, trace_timeline

PAGE_SIZE = 50


def _drift_group_call_ids(
    request: HttpRequest, access: ProjectAccess, value: str
) -> list[uuid.UUID] | None:
    """``?drift_group=<check>:<index>``: the calls of a new-intent group (drift page link)."""
    if not value:
        return None
    check_id, index = (int(part) for part in value.split(":"))
    try:
        ref = intent_group_get(project=access.project, check_id=check_id, index=index)
    except ApplicationError as exc:
        flash_error(request, exc)
        return []
    return intent_group_call_ids(ref=ref)


@project_view("read")
def call_list(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    project = access.project
    if not project_has_calls(project=project):
        return render(request, "dashboard/calls_empty.html", onboarding_context(access))
    data = cleaned(CallFilterForm(request.GET))
    window = time_window(data["range"]) if data["range"] else None
    context: dict[str, Any] = {
        "form_data": data,
        "ranges": list(RANGES),
        "facets": call_facets(project=project, since=time_window("30d").start),
        "base_query": query_without(request, "cursor"),
    }
    filters = CallFilters(
        start=data["start"] or (window.start if window else None),
        end=data["end"] or None,
        model=data["model"] or None,
        release=data["release"] or None,
        environment=data["environment"] or None,
        status=data["status"] or None,
        tag=data["tag"] or None,
        trace_id=data["trace"] or None,
        search=data["q"] or None,
        flagged={"1": True, "0": False}.get(data["flagged"]),
        call_ids=_drift_group_call_ids(request, access, data["drift_group"]),
    )
    if data["semantic"]:
        try:
            hits = calls_search(
                project=project,
                query=data["semantic"],
                k=PAGE_SIZE,
                filters=filters,
            )
        except ApplicationError as exc:
            flash_error(request, exc)
            hits = []
        context.update(mode="semantic", hits=dedupe_hits(hits))
        return render(request, "dashboard/calls.html", context)
    try:
        calls, next_cursor = call_page(
            project=project, filters=filters, limit=PAGE_SIZE, cursor=data["cursor"] or None
        )
    except ApplicationError as exc:  # a tampered cursor: start over
        flash_error(request, exc)
        calls, next_cursor = call_page(project=project, filters=filters, limit=PAGE_SIZE)
    context.update(mode="list", calls=calls, next_cursor=next_cursor, is_first=not data["cursor"])
    return render(request, "dashboard/calls.html", context)


@project_view("read")
def call_detail(request: HttpRequest, access: ProjectAccess, call_id: str) -> HttpResponse:
    project = access.project
    try:
        call = call_get(project=project, call_id=call_id)
    except ApplicationError as exc:
        flash_error(request, exc)
        raise  # pragma: no cover - flash_error raises 404 for NotFound
    similar: list[Any] = []
    similar_note = ""
    try:
        similar = dedupe_hits(call_similar(project=project, call_id=call.id, k=12))[:8]
    except ApplicationError as exc:
        similar_note = (
            "This call has no embedding yet (the embed worker may be behind, or the call was "
            "sampled out)."
            if exc.status_code == 409
            else exc.message
        )
    context = {
        "call": call,
        "messages_pretty": _messages(call.messages),
        "metadata_pretty": json.dumps(call.metadata, indent=2, sort_keys=True, default=str)
        if call.metadata
        else "",
        "signals_pretty": json.dumps(call.signals, indent=2, sort_keys=True, default=str)
        if call.signals
        else "",
        "badges": call_signal_badges(call),
        "feedback": list(
            feedback_for_call(project=project, call_id=call.id).select_related("author")
        ),
        "scores": scores_for_call(project=project, call_id=call.id),
        "trace": trace_tree(trace_calls(project=project, trace_id=call.trace_id)),
        "timeline": trace_timeline(trace_spans(project=project, trace_id=call.trace_id)),
        "similar": similar,
        "similar_note": similar_note,
        "can_review": access.allows("review"),
    }
    return render(request, "dashboard/call_detail.html", context)


def _messages(messages: Any) -> list[dict[str, str]]:
    """Chat messages as (role, text) pairs for display; content parts are joined, other
    shapes are shown as JSON. Everything stays text: the template escapes it."""
    if not isinstance(messages, list):
        return []
    out = []
    for message in messages:
        if not isinstance(message, dict):
            out.append({"role": "", "content": json.dumps(message, default=str)})
            continue
        content = message.get("content")
        if isinstance(content, list):
            parts = [str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content]
            text = "\n".join(p for p in parts if p)
        elif isinstance(content, str):
            text = content
        else:
            text = json.dumps(content, indent=2, default=str) if content is not None else ""
        if message.get("tool_calls"):
            text = (text + "\n" if text else "") + json.dumps(
                message["tool_calls"], indent=2, default=str
            )
        out.append({"role": str(message.get("role", "")), "content": text})
    return out
