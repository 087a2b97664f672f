"""Reads from the rollup tables: time series and window totals, filtered by model, release and
environment, with latency percentiles from the merged log histograms (within ``rollups.ALPHA``
relative error of the exact order statistic).

These mirror ``apps.traces.metrics.overview_call_series`` / ``overview_feedback_series`` /
``overview_totals``: same arguments, same row types, so the overview can switch without touching
views or charts. Two differences, both by design:

* feedback is counted in the bucket of the call it is about (the raw reads bucket it by its own
  ``created_at``), so model/release/environment filters apply to feedback without a join;
* a tag filter is not rolled up (tags are free-form and unbounded): with one set, the raw
  selector answers.

Freshness: a rollup lags the raw table by the follow-up plus one flush (a few seconds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection

from apps.accounts.models import Project
from apps.traces.metrics import (
    CallBucket,
    FeedbackBucket,
    OverviewFilters,
    PeriodTotals,
    TimeWindow,
    overview_call_series,
    overview_feedback_series,
    overview_totals,
)
from apps.traces.models import CallRollup, RollupGrain, RollupLevel
from apps.traces.rollups import EPOCH, histogram_quantiles

ROLLUP = CallRollup._meta.db_table
QUANTILES = (0.5, 0.95, 0.99)

_SUMS = """
    coalesce(sum(calls), 0) AS calls, coalesce(sum(errors), 0) AS errors,
    coalesce(sum(processed), 0) AS processed, coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(total_tokens), 0) AS total_tokens, coalesce(sum(flagged), 0) AS flagged,
    coalesce(sum(refusal), 0) AS refusal, coalesce(sum(injection), 0) AS injection,
    coalesce(sum(toxicity), 0) AS toxicity, coalesce(sum(pii), 0) AS pii,
    coalesce(sum(feedback_count), 0) AS feedback_count,
    coalesce(sum(feedback_negative), 0) AS feedback_negative,
    coalesce(sum(end_user_scored), 0) AS end_user_scored,
    coalesce(sum(end_user_score_sum), 0) AS end_user_score_sum,
    coalesce(sum(reviewer_scored), 0) AS reviewer_scored,
    coalesce(sum(reviewer_score_sum), 0) AS reviewer_score_sum
"""


def _on_grain(moment: datetime, grain: int) -> bool:
    """Whether ``moment`` is a bucket boundary of ``grain`` (seconds)."""
    return (moment - EPOCH).total_seconds() % grain == 0


def series_grain(*, bucket: timedelta, start: datetime) -> int:
    """The coarsest stored grain whose buckets tile the requested ones."""
    for grain in (RollupGrain.HOUR, RollupGrain.MINUTE):
        if bucket.total_seconds() % grain == 0 and _on_grain(start, grain):
            return int(grain)
    return int(RollupGrain.MINUTE)


def _range_where(start: datetime, end: datetime) -> tuple[str, list[Any]]:
    """Rows covering [start, end): whole hours from hour rows, the ragged edges from minute
    rows (a 24 h total reads ~24 hour rows + <= 118 minute rows per key, not 1,440)."""
    hour = timedelta(hours=1)
    first_hour = EPOCH + -((EPOCH - start) // hour) * hour  # ceil to the hour
    last_hour = EPOCH + ((end - EPOCH) // hour) * hour
    if first_hour >= last_hour:
        return "(grain = %s AND bucket >= %s AND bucket < %s)", [RollupGrain.MINUTE, start, end]
    hours: list[Any] = [RollupGrain.HOUR, first_hour, last_hour]
    edges: list[Any] = [RollupGrain.MINUTE, start, first_hour, last_hour, end]
    return (
        "((grain = %s AND bucket >= %s AND bucket < %s) OR (grain = %s AND ("
        "(bucket >= %s AND bucket < %s) OR (bucket >= %s AND bucket < %s))))",
        [*hours, *edges],
    )


def _filters_where(filters: OverviewFilters) -> tuple[str, list[Any]]:
    """The filters, and the most rolled-up level that can answer them."""
    if not (filters.release or filters.environment):
        level = RollupLevel.MODEL if filters.model else RollupLevel.PROJECT
    else:
        level = RollupLevel.FULL
    clauses: list[str] = ["level = %s"]
    params: list[Any] = [level]
    for column, value in (
        ("model", filters.model),
        ("release", filters.release),
        ("environment", filters.environment),
    ):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    return "".join(f" AND {c}" for c in clauses), params


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _fetch_dicts(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c.name for c in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _grouped(
    *,
    project_id: int,
    group_sql: str,
    group_params: list[Any],
    where_sql: str,
    where_params: list[Any],
) -> tuple[dict[Any, dict[str, Any]], dict[Any, list[float | None]]]:
    """Sums and latency quantiles per group key: two statements over the same rows."""
    base = f"FROM {ROLLUP} WHERE project_id = %s AND {where_sql}"
    sums = _fetch_dicts(
        f"SELECT {group_sql} AS g, {_SUMS} {base} GROUP BY 1",
        [*group_params, project_id, *where_params],
    )
    hist_rows = _fetch(
        f"SELECT {group_sql} AS g, u.bin, sum(u.n) "  # noqa: S608
        f"FROM {ROLLUP} r, unnest(r.latency_bins, r.latency_counts) AS u(bin, n) "
        f"WHERE r.project_id = %s AND {where_sql} GROUP BY 1, 2 ORDER BY 1, 2",
        [*group_params, project_id, *where_params],
    )
    hists: dict[Any, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for key, index, count in hist_rows:
        hists[key][0].append(int(index))
        hists[key][1].append(int(count))
    quantiles = {k: histogram_quantiles(b, c, QUANTILES) for k, (b, c) in hists.items()}
    return {row.pop("g"): row for row in sums}, quantiles


def _call_bucket(
    row: dict[str, Any] | None, latency: list[float | None] | None, b: datetime
) -> CallBucket:
    if row is None or not row["calls"]:
        return CallBucket(bucket=b)
    return CallBucket.from_row(row, b, latency)


def _series(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> tuple[dict[Any, dict[str, Any]], dict[Any, list[float | None]]]:
    grain = series_grain(bucket=window.bucket, start=window.start)
    fwhere, fparams = _filters_where(filters)
    return _grouped(
        project_id=project.pk,
        group_sql="date_bin(%s::interval, bucket, %s)",
        group_params=[window.bucket, window.start],
        where_sql=f"grain = %s AND bucket >= %s AND bucket < %s{fwhere}",
        where_params=[grain, window.start, window.end, *fparams],
    )


def rollup_call_series(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> list[CallBucket]:
    """``overview_call_series`` from rollups: every bucket of the window, empty ones zero."""
    if filters.tag:
        return overview_call_series(project=project, window=window, filters=filters)
    sums, quantiles = _series(project=project, window=window, filters=filters)
    return [_call_bucket(sums.get(b), quantiles.get(b), b) for b in window.buckets()]


def _feedback_bucket(row: dict[str, Any] | None, b: datetime) -> FeedbackBucket:
    if row is None:
        return FeedbackBucket(bucket=b)
    eu_n, rv_n = int(row["end_user_scored"]), int(row["reviewer_scored"])
    return FeedbackBucket(
        bucket=b,
        end_user_count=eu_n,
        end_user_score=float(row["end_user_score_sum"]) / eu_n if eu_n else None,
        reviewer_count=rv_n,
        reviewer_score=float(row["reviewer_score_sum"]) / rv_n if rv_n else None,
        negative=int(row["feedback_negative"]),
        total=int(row["feedback_count"]),
    )


def rollup_feedback_series(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> list[FeedbackBucket]:
    """``overview_feedback_series`` from rollups (feedback in its call's bucket)."""
    if filters.tag:
        return overview_feedback_series(project=project, window=window, filters=filters)
    grain = series_grain(bucket=window.bucket, start=window.start)
    fwhere, fparams = _filters_where(filters)
    rows = _fetch_dicts(
        f"SELECT date_bin(%s::interval, bucket, %s) AS g, {_SUMS} FROM {ROLLUP} "  # noqa: S608
        f"WHERE project_id = %s AND grain = %s AND bucket >= %s AND bucket < %s{fwhere} "
        "GROUP BY 1",
        [window.bucket, window.start, project.pk, grain, window.start, window.end, *fparams],
    )
    by_bucket = {row.pop("g"): row for row in rows}
    return [_feedback_bucket(by_bucket.get(b), b) for b in window.buckets()]


def _period_totals(
    row: dict[str, Any] | None, latency: list[float | None] | None, start: datetime
) -> PeriodTotals:
    calls = _call_bucket(row, latency, start)
    if row is None or not row["feedback_count"]:
        return PeriodTotals(calls=calls)
    scored = int(row["end_user_scored"]) + int(row["reviewer_scored"])
    score_sum = float(row["end_user_score_sum"]) + float(row["reviewer_score_sum"])
    return PeriodTotals(
        calls=calls,
        feedback_count=int(row["feedback_count"]),
        feedback_score=score_sum / scored if scored else None,
        negative=int(row["feedback_negative"]),
    )


def rollup_totals(
    *, project: Project, start: datetime, end: datetime, filters: OverviewFilters | None = None
) -> PeriodTotals:
    """Totals and latency percentiles of any window (metric alerts read this)."""
    filters = filters or OverviewFilters()
    rwhere, rparams = _range_where(start, end)
    fwhere, fparams = _filters_where(filters)
    sums, quantiles = _grouped(
        project_id=project.pk,
        group_sql="true",
        group_params=[],
        where_sql=f"{rwhere}{fwhere}",
        where_params=[*rparams, *fparams],
    )
    return _period_totals(sums.get(True), quantiles.get(True), start)


def rollup_overview_totals(
    *, project: Project, window: TimeWindow, filters: OverviewFilters
) -> tuple[PeriodTotals, PeriodTotals]:
    """``overview_totals`` from rollups: (current, previous) period. Each period is read on its
    own: an hour row may straddle a half-hour period boundary."""
    if filters.tag:
        return overview_totals(project=project, window=window, filters=filters)
    return (
        rollup_totals(project=project, start=window.start, end=window.end, filters=filters),
        rollup_totals(
            project=project, start=window.previous_start, end=window.start, filters=filters
        ),
    )


ROLLED_UP_FIELDS = ("model", "release", "environment")


def rollup_groups(
    *,
    project_id: int,
    start: datetime,
    end: datetime,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    group_by: Sequence[str] = (),
) -> dict[tuple[str, ...], PeriodTotals] | None:
    """Window totals per group for metric alerts: ``{(model, ...): totals}`` keyed in
    ``group_by`` order. ``None`` when the rollups cannot answer (a filter or group on a field
    that is not rolled up: provider, end user, kind...): the caller reads raw calls then.
    Minute-aligned windows are exact; others are widened to whole minutes."""
    filters = filters or {}
    fields = set(filters) | set(group_by)
    if not fields <= set(ROLLED_UP_FIELDS):
        return None
    if fields <= {"model"}:
        level = RollupLevel.MODEL if fields else RollupLevel.PROJECT
    else:
        level = RollupLevel.FULL
    # Field names are checked against ROLLED_UP_FIELDS above; values are parameters.
    clauses: list[str] = ["level = %s"]
    params: list[Any] = [level]
    for name, wanted in filters.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        clauses.append(f"{name} = ANY(%s)")
        params.append([str(v) for v in values])
    rwhere, rparams = _range_where(start, end)
    group_sql = f"ROW({', '.join(group_by)})::text" if group_by else "''"
    sums, quantiles = _grouped(
        project_id=project_id,
        group_sql=group_sql,
        group_params=[],
        where_sql=f"{rwhere} AND {' AND '.join(clauses)}",
        where_params=[*rparams, *params],
    )
    keys = _group_keys(project_id, group_by, rwhere, [*rparams, *params], clauses)
    return {
        keys.get(g, ()): _period_totals(row, quantiles.get(g), start) for g, row in sums.items()
    }


def _group_keys(
    project_id: int, group_by: Sequence[str], rwhere: str, params: list[Any], clauses: list[str]
) -> dict[str, tuple[str, ...]]:
    """The ROW(...)::text label of each group mapped back to its column values."""
    if not group_by:
        return {"": ()}
    columns = ", ".join(group_by)
    rows = _fetch(
        f"SELECT DISTINCT ROW({columns})::text, {columns} FROM {ROLLUP} "  # noqa: S608
        f"WHERE project_id = %s AND {rwhere} AND {' AND '.join(clauses)}",
        [project_id, *params],
    )
    return {row[0]: tuple(str(v) for v in row[1:]) for row in rows}
