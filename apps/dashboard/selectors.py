"""UI-only reads: the overview's aggregates, filter facets, the review queue and exports.

The overview reads go through :func:`overview_call_series`, :func:`overview_feedback_series`
and :func:`overview_totals`. Each is ONE SQL statement grouped by a ``date_bin`` bucket over the
raw ``traces_call`` / ``traces_feedback`` tables; they are the seam where rollup tables plug in
later (same arguments, same row types), so views and charts never change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Project
from apps.traces.models import LLM_KINDS, NEGATIVE_LABELS, NEGATIVE_SCORE_BELOW, Call, Feedback

CALL_TABLE = Call._meta.db_table
FEEDBACK_TABLE = Feedback._meta.db_table


# --- Time ranges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeWindow:
    """The window shown (``start``..``end``), its bucket width and the period before it."""

    key: str
    start: datetime
    end: datetime
    bucket: timedelta

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def previous_start(self) -> datetime:
        return self.start - self.span

    def buckets(self) -> list[datetime]:
        count = int(self.span / self.bucket)
        return [self.start + i * self.bucket for i in range(count)]


# key -> (span, bucket width): 30-60 points per chart.
RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=2)),
    "24h": (timedelta(hours=24), timedelta(minutes=30)),
    "7d": (timedelta(days=7), timedelta(hours=3)),
    "30d": (timedelta(days=30), timedelta(hours=12)),
}
DEFAULT_RANGE = "24h"


def time_window(key: str | None, *, now: datetime | None = None) -> TimeWindow:
    """The window for a range key (unknown keys fall back to 24h), ending at the next bucket
    boundary so the last bucket is the current, partial one and buckets are stable."""
    key = key if key in RANGES else DEFAULT_RANGE
    span, bucket = RANGES[key]
    now = now or timezone.now()
    epoch = datetime(2000, 1, 1, tzinfo=now.tzinfo)
    end = epoch + ((now - epoch) // bucket + 1) * bucket
    return TimeWindow(key=key, start=end - span, end=end, bucket=bucket)


# --- Filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverviewFilters:
    model: str = ""
    release: str = ""
    environment: str = ""
    tag: str = ""

    @property
    def active(self) -> bool:
        return bool(self.model or self.release or self.environment or self.tag)


def _call_where(
    *, project: Project, filters: OverviewFilters, start: datetime, end: datetime, alias: str = ""
) -> tuple[str, list[Any]]:
    a = f"{alias}." if alias else ""
    # LLM calls only (traces.models.LLM_KINDS): other spans are trace context, not metrics.
    clauses = [
        f"{a}project_id = %s",
        f"{a}start_time >= %s",
        f"{a}start_time < %s",
        f"{a}kind = ANY(%s)",
    ]
    params: list[Any] = [project.pk, start, end, list(LLM_KINDS)]
    for column, value in (
        ("model", filters.model),
        ("release", filters.release),
        ("environment", filters.environment),
    ):
        if value:
            clauses.append(f"{a}{column} = %s")
            params.append(value)
    if filters.tag:
        clauses.append(f"{a}tags @> ARRAY[%s]::varchar[]")
        params.append(filters.tag)
    return " AND ".join(clauses), params


def _fetch(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c.name for c in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


# --- Overview series ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallBucket:
    bucket: datetime
    calls: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    processed: int = 0
    flagged: int = 0
    refusal: int = 0
    injection: int = 0
    toxicity: int = 0
    pii: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    def rate(self, name: str) -> float | None:
        count: int = getattr(self, name)
        return count / self.processed if self.processed else None


# A score at or above this is a positive for injection/toxicity (the scorers' own cut-off).
SIGNAL_CUTOFF = 0.5

_CALL_AGGREGATES = """
    count(*) AS calls,
    count(*) FILTER (WHERE status = 'error') AS errors,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(coalesce(total_tokens, coalesce(input_tokens, 0) + coalesce(output_tokens, 0))), 0)
        AS total_tokens,
    percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) AS latency,
    count(*) FILTER (WHERE processed_at IS NOT NULL) AS processed,
    count(*) FILTER (WHERE flagged) AS flagged,
    count(*) FILTER (WHERE refusal) AS refusal,
    count(*) FILTER (WHERE injection >= %s) AS injection,
    count(*) FILTER (WHERE toxicity >= %s) AS toxicity,
    count(*) FILTER (WHERE cardinality(pii) > 0) AS pii
"""


def _call_bucket(row: dict[str, Any], bucket: datetime) -> CallBucket:
    latency = row.get("latency") or [None, None, None]
    return CallBucket(
        bucket=bucket,
        calls=int(row["calls"]),
        errors=int(row["errors"]),
        cost_usd=float(row["cost_usd"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        total_tokens=int(row["total_tokens"]),
        p50_ms=latency[0],
        p95_ms=latency[1],
        p99_ms=latency[2],
        processed=int(row["processed"]),
        flagged=int(row["flagged"]),
        refusal=int(row["refusal"]),
        injection=int(row["injection"]),
        toxicity=int(row["toxicity"]),
        pii=int(row["pii"]),
    )


def overview_call_series(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> list[CallBucket]:
    """Per-bucket volume, errors, cost, tokens, latency percentiles and safety counts; one
    query. Every bucket of the window is present (empty ones with zero calls)."""
    where, params = _call_where(
        project=project, filters=filters, start=window.start, end=window.end
    )
    sql = f"""
        SELECT date_bin(%s::interval, start_time, %s) AS bucket, {_CALL_AGGREGATES}
        FROM {CALL_TABLE} WHERE {where}
        GROUP BY 1 ORDER BY 1
    """  # noqa: S608 - identifiers are ours; values are parameters
    rows = _fetch(sql, [window.bucket, window.start, SIGNAL_CUTOFF, SIGNAL_CUTOFF, *params])
    by_bucket = {row["bucket"]: row for row in rows}
    return [
        _call_bucket(by_bucket[b], b) if b in by_bucket else CallBucket(bucket=b)
        for b in window.buckets()
    ]


@dataclass(frozen=True)
class FeedbackBucket:
    bucket: datetime
    end_user_count: int = 0
    end_user_score: float | None = None
    reviewer_count: int = 0
    reviewer_score: float | None = None
    negative: int = 0
    total: int = 0

    @property
    def negative_rate(self) -> float | None:
        return self.negative / self.total if self.total else None


def _negative_sql(alias: str) -> tuple[str, list[Any]]:
    labels = sorted(NEGATIVE_LABELS)
    return (
        f"({alias}.score < %s OR lower(btrim({alias}.label)) = ANY(%s))",
        [NEGATIVE_SCORE_BELOW, labels],
    )


def _feedback_from(
    *, project: Project, filters: OverviewFilters, start: datetime, end: datetime
) -> tuple[str, list[Any]]:
    """FROM/WHERE for feedback in [start, end); joins the calls only when a call filter is set."""
    if not filters.active:
        return (
            f"FROM {FEEDBACK_TABLE} f WHERE f.project_id = %s AND f.created_at >= %s "
            "AND f.created_at < %s",
            [project.pk, start, end],
        )
    # Feedback arrives after its call: the call may start before the feedback window.
    call_where, call_params = _call_where(
        project=project, filters=filters, start=start - timedelta(days=30), end=end, alias="c"
    )
    return (
        f"FROM {FEEDBACK_TABLE} f JOIN {CALL_TABLE} c "
        "ON c.project_id = f.project_id AND c.id = f.call_id "
        f"WHERE f.project_id = %s AND f.created_at >= %s AND f.created_at < %s AND {call_where}",
        [project.pk, start, end, *call_params],
    )


def overview_feedback_series(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> list[FeedbackBucket]:
    """Mean feedback score per bucket (end users and reviewers apart) and the negative share;
    one query."""
    negative, negative_params = _negative_sql("f")
    from_sql, from_params = _feedback_from(
        project=project, filters=filters, start=window.start, end=window.end
    )
    sql = f"""
        SELECT date_bin(%s::interval, f.created_at, %s) AS bucket,
            count(f.score) FILTER (WHERE f.source = 'end_user') AS end_user_count,
            avg(f.score) FILTER (WHERE f.source = 'end_user') AS end_user_score,
            count(f.score) FILTER (WHERE f.source = 'reviewer') AS reviewer_count,
            avg(f.score) FILTER (WHERE f.source = 'reviewer') AS reviewer_score,
            count(*) FILTER (WHERE {negative}) AS negative,
            count(*) AS total
        {from_sql}
        GROUP BY 1 ORDER BY 1
    """
    rows = _fetch(sql, [window.bucket, window.start, *negative_params, *from_params])
    by_bucket = {row.pop("bucket"): row for row in rows}
    out = []
    for b in window.buckets():
        row = by_bucket.get(b)
        out.append(FeedbackBucket(bucket=b, **row) if row else FeedbackBucket(bucket=b))
    return out


# --- KPI totals --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodTotals:
    calls: CallBucket
    feedback_count: int = 0
    feedback_score: float | None = None
    negative: int = 0


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | None
    previous: float | None
    fmt: str  # "int" | "usd" | "ms" | "pct" | "score"
    # True when a rise is good news (volume, score); False when it is bad (cost, errors).
    higher_is_better: bool | None = None

    @property
    def delta(self) -> float | None:
        """Relative change against the previous period; None when it cannot be computed."""
        if self.value is None or self.previous in (None, 0):
            return None
        assert self.previous is not None
        return (self.value - self.previous) / abs(self.previous)

    @property
    def tone(self) -> str:
        d = self.delta
        if d is None or abs(d) < 0.005 or self.higher_is_better is None:
            return "neutral"
        return "good" if (d > 0) == self.higher_is_better else "bad"


def overview_totals(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> tuple[PeriodTotals, PeriodTotals]:
    """(current, previous) period totals: one query over calls, one over feedback, each
    grouped by period."""
    where, params = _call_where(
        project=project, filters=filters, start=window.previous_start, end=window.end
    )
    sql = f"""
        SELECT (start_time >= %s) AS current, {_CALL_AGGREGATES}
        FROM {CALL_TABLE} WHERE {where} GROUP BY 1
    """  # noqa: S608 - identifiers are ours; values are parameters
    rows = {
        r["current"]: r for r in _fetch(sql, [window.start, SIGNAL_CUTOFF, SIGNAL_CUTOFF, *params])
    }
    negative, negative_params = _negative_sql("f")
    from_sql, from_params = _feedback_from(
        project=project, filters=filters, start=window.previous_start, end=window.end
    )
    fb_sql = f"""
        SELECT (f.created_at >= %s) AS current, count(*) AS total, avg(f.score) AS score,
            count(*) FILTER (WHERE {negative}) AS negative
        {from_sql} GROUP BY 1
    """
    fb_rows = {
        r["current"]: r for r in _fetch(fb_sql, [window.start, *negative_params, *from_params])
    }

    def period(current: bool) -> PeriodTotals:
        start = window.start if current else window.previous_start
        calls = _call_bucket(rows[current], start) if current in rows else CallBucket(bucket=start)
        fb = fb_rows.get(current)
        if fb is None:
            return PeriodTotals(calls=calls)
        return PeriodTotals(
            calls=calls,
            feedback_count=int(fb["total"]),
            feedback_score=fb["score"],
            negative=int(fb["negative"]),
        )

    return period(True), period(False)


def overview_kpis(current: PeriodTotals, previous: PeriodTotals) -> list[Kpi]:
    c, p = current.calls, previous.calls
    return [
        Kpi("calls", "LLM calls", c.calls, p.calls, "int", None),
        Kpi("cost", "Cost", c.cost_usd, p.cost_usd, "usd", False),
        Kpi("tokens", "Tokens", c.total_tokens, p.total_tokens, "int", None),
        Kpi("p50", "Latency p50", c.p50_ms, p.p50_ms, "ms", False),
        Kpi("p95", "Latency p95", c.p95_ms, p.p95_ms, "ms", False),
        Kpi("p99", "Latency p99", c.p99_ms, p.p99_ms, "ms", False),
        Kpi("errors", "Error rate", c.error_rate, p.error_rate, "pct", False),
        Kpi(
            "feedback",
            "Feedback score",
            current.feedback_score,
            previous.feedback_score,
            "score",
            True,
        ),
        Kpi("flagged", "Flagged", c.rate("flagged"), p.rate("flagged"), "pct", False),
    ]


# --- Facets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facets:
    models: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def call_facets(*, project: Project, since: datetime, limit: int = 100) -> Facets:
    """Distinct models, releases, environments and tags seen since ``since`` (for filters)."""
    where = "project_id = %s AND start_time >= %s"
    sql = f"""
        SELECT
          ARRAY(SELECT DISTINCT model FROM {CALL_TABLE} WHERE {where} AND model <> ''
                ORDER BY 1 LIMIT %s) AS models,
          ARRAY(SELECT DISTINCT release FROM {CALL_TABLE} WHERE {where} AND release <> ''
                ORDER BY 1 LIMIT %s) AS releases,
          ARRAY(SELECT DISTINCT environment FROM {CALL_TABLE} WHERE {where}
                AND environment <> '' ORDER BY 1 LIMIT %s) AS environments,
          ARRAY(SELECT DISTINCT tag FROM {CALL_TABLE}, unnest(tags) AS tag WHERE {where}
                ORDER BY 1 LIMIT %s) AS tags
    """  # noqa: S608 - identifiers are ours; values are parameters
    args: list[Any] = []
    for _ in range(4):
        args += [project.pk, since, limit]
    row = _fetch(sql, args)[0]
    return Facets(
        models=list(row["models"]),
        releases=list(row["releases"]),
        environments=list(row["environments"]),
        tags=list(row["tags"]),
    )


def project_has_calls(*, project: Project) -> bool:
    return Call.objects.filter(project=project).exists()


# --- Trace tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceNode:
    call: Call
    depth: int


def trace_tree(calls: list[Call]) -> list[TraceNode]:
    """Calls of one trace in depth-first order with their nesting depth (orphans at the root)."""
    ids = {c.id for c in calls}
    children: dict[uuid.UUID | None, list[Call]] = {}
    for c in calls:
        parent = c.parent_id if c.parent_id in ids else None
        children.setdefault(parent, []).append(c)
    out: list[TraceNode] = []
    seen: set[uuid.UUID] = set()

    def walk(parent: uuid.UUID | None, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda c: c.start_time):
            if child.id in seen:  # a cycle in client-sent parent ids
                continue
            seen.add(child.id)
            out.append(TraceNode(call=child, depth=depth))
            walk(child.id, depth + 1)

    walk(None, 0)
    return out


# --- Review queue ------------------------------------------------------------------------------

REVIEW_MODES = ("recent", "negative", "signal", "intent", "random")
# "span" is the SDK's default kind for @observe'd functions.
REVIEW_KINDS = LLM_KINDS
REVIEW_SIGNALS = ("flagged", "error", "refusal", "injection", "toxicity", "pii")


@dataclass(frozen=True)
class ReviewFilters:
    mode: str = "recent"
    signal: str = ""
    intent: str = ""
    days: int = 7


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
    since = timezone.now() - timedelta(days=filters.days)
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
    return qs


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


@dataclass(frozen=True)
class Badge:
    label: str
    tone: str  # "bad" | "warn" | "info"


def call_signal_badges(call: Call) -> list[Badge]:
    """The safety/quality signals of a call as short badges (for tables and the call page)."""
    badges = []
    if call.status == "error":
        badges.append(Badge("error", "bad"))
    if call.flagged:
        badges.append(Badge("flagged", "bad"))
    if call.injection is not None and call.injection >= SIGNAL_CUTOFF:
        badges.append(Badge(f"injection {call.injection:.2f}", "bad"))
    if call.toxicity is not None and call.toxicity >= SIGNAL_CUTOFF:
        badges.append(Badge(f"toxicity {call.toxicity:.2f}", "bad"))
    if call.refusal:
        badges.append(Badge("refusal", "warn"))
    for kind in call.pii or []:
        badges.append(Badge(f"PII: {kind}", "warn"))
    return badges


# --- Neighbours --------------------------------------------------------------------------------

H = TypeVar("H", bound="_HitLike")


class _HitLike(Protocol):
    @property
    def prompt(self) -> str: ...
    @property
    def response(self) -> str: ...
    @property
    def start_time(self) -> datetime: ...


def dedupe_hits(hits: Sequence[H]) -> list[H]:
    """Nearest-neighbour hits minus repeats of one exchange: a chain span and its LLM child
    carry the same text at the same moment. The first (closest) of each is kept."""
    seen: set[tuple[str, str, datetime]] = set()
    out = []
    for hit in hits:
        key = (hit.prompt, hit.response, hit.start_time.replace(second=0, microsecond=0))
        if key in seen:
            continue
        seen.add(key)
        out.append(hit)
    return out
