"""The calls explorer (filters, ranges, sorting, saved views, text and semantic search) and one
call's page."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.forms import CALL_SORT_CHOICES, CallFilterForm, SavedViewForm, cleaned
from apps.dashboard.selectors.calls import (
    SORTS,
    call_no_embedding_note,
    call_query_from_params,
    call_signal_badges,
    dedupe_hits,
    explorer_page,
    explorer_queryset,
    saved_views_for,
    trace_tree,
)
from apps.dashboard.selectors.overview import call_facets, project_has_calls
from apps.dashboard.services import saved_view_delete, saved_view_query, saved_view_save
from apps.dashboard.views.common import flash_error, onboarding_context, query_without
from apps.drift.services.intent_groups import intent_group_call_ids, intent_group_get
from apps.embeddings.selectors import call_similar, calls_search
from apps.evaluators.selectors import scores_for_call
from apps.traces.metrics import RANGES, time_window
from apps.traces.selectors import call_get, feedback_for_call, trace_calls
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
    form = CallFilterForm(request.GET)
    data = cleaned(form)
    query = call_query_from_params(data)
    list_query = query_without(request, "cursor")
    context: dict[str, Any] = {
        "form_data": data,
        "form_errors": form.errors,
        "error_list": [
            f"{form.fields[name].label or name}: {' '.join(str(e) for e in errors)}"
            for name, errors in form.errors.items()
            if name in form.fields
        ],
        "range_fields": _range_fields(request, form),
        "sort": query.sort,
        "sort_choices": CALL_SORT_CHOICES[1:],
        "kind_choices": form.fields["kind"].choices,  # type: ignore[attr-defined]
        "sort_links": _sort_links(request, query.sort),
        "ranges": list(RANGES),
        "facets": call_facets(project=project, since=time_window("30d").start),
        "base_query": list_query,
        "query_without_window": query_without(request, "cursor", "start", "end"),
        "back_query": saved_view_query(list_query),
        # Back to the overview under the same dimension filters.
        "overview_query": urlencode(
            {k: data[k] for k in ("model", "release", "environment", "tag") if data[k]}
        ),
        "saved_views": saved_views_for(project=project, user=request.user),
        "saved_view_query": saved_view_query(list_query),
    }
    if data["drift_group"]:
        call_ids = _drift_group_call_ids(request, access, data["drift_group"])
        query = replace(query, filters=replace(query.filters, call_ids=call_ids))
    if data["semantic"]:
        try:
            # Value ranges and kinds are the explorer's own: they narrow the search as a call
            # set; the order is by meaning (nearest first), not the list's sort.
            within = (
                explorer_queryset(project=project, query=query)
                if query.ranges or query.kinds
                else None
            )
            hits = calls_search(
                project=project,
                query=data["semantic"],
                k=PAGE_SIZE,
                filters=query.filters,
                within=within,
            )
        except ApplicationError as exc:
            flash_error(request, exc)
            hits = []
        context.update(mode="semantic", hits=dedupe_hits(hits))
        return render(request, "dashboard/calls.html", context)
    try:
        calls, next_cursor = explorer_page(
            project=project, query=query, limit=PAGE_SIZE, cursor=data["cursor"] or None
        )
    except ApplicationError as exc:  # a tampered cursor, or one of another sort: start over
        flash_error(request, exc)
        calls, next_cursor = explorer_page(project=project, query=query, limit=PAGE_SIZE)
    context.update(mode="list", calls=calls, next_cursor=next_cursor, is_first=not data["cursor"])
    return render(request, "dashboard/calls.html", context)


_RANGE_LABELS = (
    ("latency", "Latency (ms)", "1"),
    ("cost", "Cost ($)", "any"),
    ("tokens", "Tokens", "1"),
)


def _range_fields(request: HttpRequest, form: CallFilterForm) -> list[dict[str, str]]:
    """The range inputs as typed (a rejected value stays in its box, beside its error)."""
    out = []
    for stem, label, step in _RANGE_LABELS:
        low, high = f"{stem}_min", f"{stem}_max"
        out.append(
            {
                "stem": stem,
                "label": label,
                "step": step,
                "low": request.GET.get(low, "")[:40],
                "high": request.GET.get(high, "")[:40],
                "low_error": " ".join(str(e) for e in form.errors.get(low, [])),
                "high_error": " ".join(str(e) for e in form.errors.get(high, [])),
            }
        )
    return out


def _sort_links(request: HttpRequest, current: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the link that sorts by it (descending first, then flipping) and
    the state to show (``aria-sort``)."""
    out = {}
    for key in SORTS:
        params = request.GET.copy()
        params.pop("cursor", None)
        active = current.lstrip("-") == key
        params["sort"] = key if current == f"-{key}" else f"-{key}"
        state = "none"
        if active:
            state = "descending" if current.startswith("-") else "ascending"
        out[key] = {"url": "?" + params.urlencode(), "state": state}
    return out


@project_view("read")
def saved_view_create(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = SavedViewForm(request.POST)
    query = request.POST.get("query", "")
    if not form.is_valid():
        messages.error(request, "Name the view to save it.")
        return redirect(_calls_url(query))
    try:
        view = saved_view_save(
            project=access.project,
            user=request.user,  # type: ignore[arg-type]  # project_view requires a login
            name=form.cleaned_data["name"],
            query=query,
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        return redirect(_calls_url(query))
    messages.success(request, f"Saved view “{view.name}”.")
    return redirect(_calls_url(view.query))


@project_view("read")
def saved_view_remove(request: HttpRequest, access: ProjectAccess, view_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        saved_view_delete(
            project=access.project,
            user=request.user,  # type: ignore[arg-type]
            view_id=view_id,
        )
    except ApplicationError as exc:
        flash_error(request, exc)
    else:
        messages.success(request, "Saved view deleted.")
    return redirect(_calls_url(request.POST.get("query", "")))


def _calls_url(query: str) -> str:
    clean = saved_view_query(query)
    return reverse("dashboard:calls") + (f"?{clean}" if clean else "")


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
        similar_note = call_no_embedding_note(call) if exc.status_code == 409 else exc.message
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
        # The explorer's filters this call was opened from (only its own parameters), so
        # "back to calls" lands on the same sorted, filtered list.
        "back_query": saved_view_query(request.GET.get("back", "")),
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
