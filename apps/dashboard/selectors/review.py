"""The review queue (calls waiting for a reviewer label), its progress, and the label export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Project
from apps.quality.models import ReviewRequest
from apps.traces.models import (
    LLM_KINDS,
    NEGATIVE_LABELS,
    NEGATIVE_SCORE_BELOW,
    SIGNAL_CUTOFF,
    Call,
    Feedback,
)

# --- Review queue ------------------------------------------------------------------------------

REVIEW_MODES = ("recent", "negative", "signal", "intent", "random", "requested")
# Requested calls (a drift group's sample) may be older than a week: they wait this long.
REQUESTED_DAYS = 90
# LLM calls only: an @observe'd function (kind "span") or an HTTP span is not an answer to label.
REVIEW_KINDS = LLM_KINDS
REVIEW_SIGNALS = ("flagged", "error", "refusal", "injection", "toxicity", "pii")


@dataclass(frozen=True)
class ReviewFilters:
    mode: str = "recent"
    signal: str = ""
    intent: str = ""
    days: int = 7
    batch: str = ""  # mode "requested": one batch of review requests ("" = all)


def _negative_feedback_exists(project: Project) -> Exists:
    negative = Q(score__lt=NEGATIVE_SCORE_BELOW)
    for label in NEGATIVE_LABELS:
        negative |= Q(label__iexact=label)
    return Exists(
        Feedback.objects.filter(project=project, call_id=OuterRef("id"), source="end_user").filter(
            negative
        )
    )


def _signal_q(signal: str) -> Q:
    return {
        "flagged": Q(flagged=True),
        "error": Q(status="error"),
        "refusal": Q(refusal=True),
        "injection": Q(injection__gte=SIGNAL_CUTOFF),
        "toxicity": Q(toxicity__gte=SIGNAL_CUTOFF),
        "pii": Q(pii__len__gt=0),
    }.get(signal, Q(flagged=True))


def review_queryset(*, project: Project, filters: ReviewFilters) -> QuerySet[Call]:
    """Calls waiting for a reviewer label: LLM calls with text, no reviewer label yet."""
    days = REQUESTED_DAYS if filters.mode == "requested" else filters.days
    since = timezone.now() - timedelta(days=days)
    reviewed = Exists(
        Feedback.objects.filter(project=project, call_id=OuterRef("id"), source="reviewer")
    )
    qs = (
        # Model calls only: a chain span repeats its LLM child's text, tools have none.
        Call.objects.filter(project=project, start_time__gte=since, kind__in=REVIEW_KINDS)
        .exclude(Q(prompt="") & Q(messages__isnull=True))
        .filter(~reviewed)
    )
    if filters.mode == "negative":
        qs = qs.filter(_negative_feedback_exists(project))
    elif filters.mode == "signal":
        qs = qs.filter(_signal_q(filters.signal))
    elif filters.mode == "intent" and filters.intent:
        qs = qs.filter(metadata__intent=filters.intent)
    elif filters.mode == "requested":
        requests = ReviewRequest.objects.filter(project=project, call_id=OuterRef("id"))
        if filters.batch:
            requests = requests.filter(batch=filters.batch)
        qs = qs.filter(Exists(requests))
    return qs


def review_batches(*, project: Project, limit: int = 50) -> list[str]:
    """Batches of review requests, newest first (the "Requested" mode's choices)."""
    rows = (
        ReviewRequest.objects.filter(project=project)
        .order_by("-created_at")
        .values_list("batch", flat=True)[: limit * 50]
    )
    return list(dict.fromkeys(rows))[:limit]


def review_queue(*, project: Project, filters: ReviewFilters, limit: int = 25) -> list[Call]:
    qs = review_queryset(project=project, filters=filters)
    # A random sample: order by random() over the (bounded) window, fine for a queue page.
    ordered = qs.order_by("?") if filters.mode == "random" else qs.order_by("-start_time", "-id")
    return list(ordered[:limit])


@dataclass(frozen=True)
class ReviewProgress:
    remaining: int
    remaining_capped: bool
    labeled_by_you: int
    labeled_total: int

    @property
    def done_share(self) -> float:
        total = self.remaining + self.labeled_total
        return self.labeled_total / total if total else 0.0


def review_progress(
    *,
    project: Project,
    filters: ReviewFilters,
    user: AbstractBaseUser | AnonymousUser,
    cap: int = 1000,
) -> ReviewProgress:
    since = timezone.now() - timedelta(days=filters.days)
    remaining = review_queryset(project=project, filters=filters)[: cap + 1].count()
    labels = Feedback.objects.filter(project=project, source="reviewer", created_at__gte=since)
    return ReviewProgress(
        remaining=min(remaining, cap),
        remaining_capped=remaining > cap,
        labeled_by_you=labels.filter(author_id=user.pk).count(),
        labeled_total=labels.count(),
    )


def review_intents(*, project: Project, limit: int = 50) -> list[str]:
    """Intent names seen on recent calls (``metadata.intent``) for the queue's intent filter."""
    since = timezone.now() - timedelta(days=30)
    values = (
        Call.objects.filter(project=project, start_time__gte=since, metadata__has_key="intent")
        .values_list("metadata__intent", flat=True)
        .distinct()[:limit]
    )
    return sorted(str(v) for v in values if v)


# --- Exports -----------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "feedback_id",
    "call_id",
    "created_at",
    "reviewer",
    "score",
    "label",
    "labels",
    "comment",
    "model",
    "release",
    "environment",
    "prompt",
    "response",
)


def reviewer_label_rows(*, project: Project, chunk: int = 500) -> Iterator[dict[str, Any]]:
    """Every reviewer label of the project with its call's text, in insertion order, read in chunks
    (constant memory, so an export can be streamed)."""
    labels = Feedback.objects.filter(project=project, source="reviewer").select_related("author")
    last_id = 0
    while True:
        batch = list(labels.filter(id__gt=last_id).order_by("id")[:chunk])
        if not batch:
            return
        last_id = batch[-1].id
        calls = {
            c.id: c
            for c in Call.objects.filter(project=project, id__in={f.call_id for f in batch}).only(
                "project_id", "id", "model", "release", "environment", "prompt", "response"
            )
        }
        for f in batch:
            call = calls.get(f.call_id)
            yield {
                "feedback_id": str(f.event_id),
                "call_id": str(f.call_id),
                "created_at": f.created_at.isoformat(),
                "reviewer": f.author.get_username() if f.author else "",
                "score": f.score,
                "label": f.label,
                "labels": list(f.labels),
                "comment": f.comment,
                "model": call.model if call else "",
                "release": call.release if call else "",
                "environment": call.environment if call else "",
                "prompt": call.prompt if call else "",
                "response": call.response if call else "",
            }


# --- Signals -----------------------------------------------------------------------------------
