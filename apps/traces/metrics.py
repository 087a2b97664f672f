"""Metric types and the raw metric queries behind them: time windows, call filters, per-bucket
call and feedback series and period totals.

The data layer of every chart, KPI and metric alert. Each query is ONE SQL statement grouped by a
``date_bin`` bucket over the raw ``traces_call`` / ``traces_feedback`` tables;
``apps.traces.rollup_selectors`` answers the same questions from the rollup tables with the same
arguments and row types. Screens (``apps.dashboard``) and alert evaluators (``apps.alerts``) read
both from here, never the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.accounts.models import Project
from apps.traces.models import (
    LLM_KINDS,
    NEGATIVE_LABELS,
    NEGATIVE_SCORE_BELOW,
    SIGNAL_CUTOFF,
    Call,
    Feedback,
)

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


def call_where(
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


def fetch_rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
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

    @classmethod
    def from_row(
        cls, row: Mapping[str, Any], bucket: datetime, latency: Sequence[float | None] | None
    ) -> CallBucket:
        """A bucket from a row of summed counters (raw or rollup reads name them alike) and its
        (p50, p95, p99) latency."""
        p50, p95, p99 = latency or (None, None, None)
        return cls(
            bucket=bucket,
            calls=int(row["calls"]),
            errors=int(row["errors"]),
            cost_usd=float(row["cost_usd"]),
            input_tokens=int(row["input_tokens"]),
            output_tokens=int(row["output_tokens"]),
            total_tokens=int(row["total_tokens"]),
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            processed=int(row["processed"]),
            flagged=int(row["flagged"]),
            refusal=int(row["refusal"]),
            injection=int(row["injection"]),
            toxicity=int(row["toxicity"]),
            pii=int(row["pii"]),
        )


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


def overview_call_series(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> list[CallBucket]:
    """Per-bucket volume, errors, cost, tokens, latency percentiles and safety counts; one
    query. Every bucket of the window is present (empty ones with zero calls)."""
    where, params = call_where(project=project, filters=filters, start=window.start, end=window.end)
    sql = f"""
        SELECT date_bin(%s::interval, start_time, %s) AS bucket, {_CALL_AGGREGATES}
        FROM {CALL_TABLE} WHERE {where}
        GROUP BY 1 ORDER BY 1
    """  # noqa: S608 - identifiers are ours; values are parameters
    rows = fetch_rows(sql, [window.bucket, window.start, SIGNAL_CUTOFF, SIGNAL_CUTOFF, *params])
    by_bucket = {row["bucket"]: row for row in rows}
    return [
        CallBucket.from_row(by_bucket[b], b, by_bucket[b]["latency"])
        if b in by_bucket
        else CallBucket(bucket=b)
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
    where, call_params = call_where(
        project=project, filters=filters, start=start - timedelta(days=30), end=end, alias="c"
    )
    return (
        f"FROM {FEEDBACK_TABLE} f JOIN {CALL_TABLE} c "
        "ON c.project_id = f.project_id AND c.id = f.call_id "
        f"WHERE f.project_id = %s AND f.created_at >= %s AND f.created_at < %s AND {where}",
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
    rows = fetch_rows(sql, [window.bucket, window.start, *negative_params, *from_params])
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


def overview_totals(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> tuple[PeriodTotals, PeriodTotals]:
    """(current, previous) period totals: one query over calls, one over feedback, each
    grouped by period."""
    where, params = call_where(
        project=project, filters=filters, start=window.previous_start, end=window.end
    )
    sql = f"""
        SELECT (start_time >= %s) AS current, {_CALL_AGGREGATES}
        FROM {CALL_TABLE} WHERE {where} GROUP BY 1
    """  # noqa: S608 - identifiers are ours; values are parameters
    rows = {
        r["current"]: r
        for r in fetch_rows(sql, [window.start, SIGNAL_CUTOFF, SIGNAL_CUTOFF, *params])
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
        r["current"]: r for r in fetch_rows(fb_sql, [window.start, *negative_params, *from_params])
    }

    def period(current: bool) -> PeriodTotals:
        start = window.start if current else window.previous_start
        row = rows.get(current)
        calls = CallBucket.from_row(row, start, row["latency"]) if row else CallBucket(bucket=start)
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
