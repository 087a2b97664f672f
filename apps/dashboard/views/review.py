"""The reviewer queue, labeling, and the export of reviewer labels."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, acting_user, project_view
from apps.dashboard.exports import csv_lines, jsonl_lines
from apps.dashboard.forms import ReviewFilterForm, ReviewLabelForm, cleaned
from apps.dashboard.selectors.calls import call_signal_badges
from apps.dashboard.selectors.review import (
    EXPORT_FIELDS,
    REVIEW_MODES,
    REVIEW_SIGNALS,
    ReviewFilters,
    review_batches,
    review_intents,
    review_progress,
    review_queue,
    reviewer_label_rows,
)
from apps.dashboard.services import reviewer_label_create, saved_view_query
from apps.dashboard.views.calls import _messages
from apps.dashboard.views.common import flash_error, query_without

SUGGESTED_LABELS = ("hallucination", "off-topic", "unsafe", "incomplete", "wrong-tone", "great")


def _filters(request: HttpRequest) -> ReviewFilters:
    data = cleaned(ReviewFilterForm(request.GET))
    return ReviewFilters(
        mode=data["mode"] or "recent",
        signal=data["signal"],
        intent=data["intent"],
        batch=data["batch"],
    )


@project_view("review")
def review(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    project = access.project
    filters = _filters(request)
    queue = review_queue(project=project, filters=filters)
    items = []
    for call in queue:
        messages_ = _messages(call.messages)
        preview = call.prompt or next(
            (m["content"] for m in reversed(messages_) if m["role"] == "user"), ""
        )
        items.append(
            {
                "call": call,
                "messages": messages_,
                "badges": call_signal_badges(call),
                "preview": preview,
            }
        )
    context = {
        "filters": filters,
        "modes": REVIEW_MODES,
        "signals": REVIEW_SIGNALS,
        "intents": review_intents(project=project),
        "batches": review_batches(project=project) if filters.mode == "requested" else [],
        "items": items,
        "progress": review_progress(project=project, filters=filters, user=request.user),
        "suggested_labels": SUGGESTED_LABELS,
        "query": query_without(request),
        # The calls list this review was opened from (its filters only): "← Calls" returns.
        "back_query": saved_view_query(request.GET.get("back", "")),
    }
    return render(request, "dashboard/review.html", context)


@require_POST
@project_view("review")
def review_label(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = ReviewLabelForm(request.POST)
    back = request.POST.get("next_query", "")
    target = redirect("dashboard:review")
    if not form.is_valid():
        messages.error(request, "Pick a score (1 good, 0 bad) before submitting.")
    else:
        try:
            reviewer_label_create(
                project=access.project,
                call_id=form.cleaned_data["call_id"],
                author=acting_user(request),
                score=form.cleaned_data["score"],
                labels=form.cleaned_data["labels"],
                comment=form.cleaned_data["comment"],
            )
            messages.success(request, "Label saved.")
        except ApplicationError as exc:
            flash_error(request, exc)
    # Back to the same queue: only the queue's own filter parameters are carried over.
    params = QueryDict(back.lstrip("?"))
    kept = QueryDict(mutable=True)
    for name in ("mode", "signal", "intent", "batch"):
        value = params.get(name)
        if value:
            kept[name] = value
    if kept:
        target["Location"] += "?" + kept.urlencode()
    return target


@project_view("review")
def review_export(request: HttpRequest, access: ProjectAccess) -> StreamingHttpResponse:
    fmt = request.GET.get("format", "csv")
    rows = reviewer_label_rows(project=access.project)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    name = f"{access.project.slug}-reviewer-labels-{stamp}"
    if fmt == "jsonl":
        response = StreamingHttpResponse(jsonl_lines(rows), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{name}.jsonl"'
    else:
        response = StreamingHttpResponse(
            csv_lines(rows, EXPORT_FIELDS), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    response["Cache-Control"] = "no-store"
    return response
