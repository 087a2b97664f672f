"""Rollup maintenance: per project, minute and hour, model x release x environment.

Rollups count LLM calls only (``traces.models.LLM_KINDS``): the other spans of a trace are
stored for the trace tree, never counted in call volume, cost, latency or error rate.

Design (why it is exact and replay-safe):

* A rollup row is **recomputed** from the raw rows of its bucket, never incremented. Applying
  the same calls twice, a Celery replay, a late call or late feedback can therefore never
  double-count: the row is a pure function of what is stored.
* The write path only **marks** the minute of each processed call (or of each call that got
  feedback) in ``traces_rollupdirty``: one small upsert per batch, so ingest pays almost nothing.
* A flush (the ``rollups_flush`` beat task, every few seconds) takes a per-project advisory lock,
  recomputes the dirty minutes from ``traces_call`` (+ ``traces_feedback``), then the hours that
  contain them from the minute rows, and clears only the marks it has seen (``version``), so a
  mark that arrives during the flush is kept for the next one.
* Minute rows are kept ``MINUTE_RETENTION``; an hour older than that is recomputed from raw calls.

Latency is a DDSketch-style log histogram: a value ``x`` ms goes to bin ``ceil(ln x / ln gamma)``
with ``gamma = (1 + ALPHA) / (1 - ALPHA)``; the bin's representative ``2 gamma^i / (gamma + 1)``
is within ``ALPHA`` (relative) of every value in the bin, so every quantile read from the merged
histogram is within ``ALPHA`` of the exact order statistic (Masson et al., VLDB 2019).
"""

from __future__ import annotations

import bisect
import itertools
import math
import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.traces.models import (
    LLM_KINDS,
    NEGATIVE_LABELS,
    NEGATIVE_SCORE_BELOW,
    SIGNAL_CUTOFF,
    Call,
    CallRollup,
    Feedback,
    RollupDirty,
    RollupGrain,
)

# Relative accuracy of latency quantiles (2%): ~115 bins cover 100 ms..10 s, stored sparse.
ALPHA = 0.02
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
# Latencies below this (ms) share one bin: 0 ms is legal and ln(0) is not.
MIN_LATENCY_MS = 1e-3
# Buckets are aligned on this origin in UTC whatever the session time zone (matches the
# dashboard's time windows).
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
MINUTE_RETENTION = timedelta(days=8)
# A flush recomputes at most this many dirty minutes in one transaction.
FLUSH_LIMIT = 2000
# pg_advisory_xact_lock(class, project_id): one flusher per project at a time.
LOCK_CLASS = 0x526F6C6C  # "Roll"

CALL = Call._meta.db_table
FEEDBACK = Feedback._meta.db_table
ROLLUP = CallRollup._meta.db_table
DIRTY = RollupDirty._meta.db_table

_SUM_COLUMNS = (
    "calls",
    "errors",
    "processed",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost_usd",
    "flagged",
    "refusal",
    "injection",
    "toxicity",
    "pii",
    "feedback_count",
    "feedback_negative",
    "end_user_scored",
    "end_user_score_sum",
    "reviewer_scored",
    "reviewer_score_sum",
)
_KEY = "bucket, level, model, release, environment"
# Every bucket is stored at three levels (RollupLevel): full dimensions, per model, project.
_GROUPING_SETS = "GROUPING SETS ((model, release, environment), (model), ())"
_ROLLED_UP = """bucket,
    CASE GROUPING(model, release, environment) WHEN 7 THEN 2 WHEN 3 THEN 1 ELSE 0 END AS level,
    coalesce(model, '') AS model, coalesce(release, '') AS release,
    coalesce(environment, '') AS environment"""
_INSERT_COLUMNS = f"project_id, grain, {_KEY}, {', '.join(_SUM_COLUMNS)}, latency_bins, " + (
    "latency_counts"
)


def latency_bin(ms: float) -> int:
    return math.ceil(math.log(max(ms, MIN_LATENCY_MS)) / LN_GAMMA)


def bin_value(index: int) -> float:
    """The representative of a bin: within ALPHA of every value that falls in it."""
    return 2 * GAMMA**index / (GAMMA + 1)


def histogram_quantiles(
    bins: Sequence[int], counts: Sequence[int], quantiles: Sequence[float]
) -> list[float | None]:
    """Quantiles of a merged histogram (``bins`` ascending), defined as ``percentile_cont``
    defines them: rank ``q * (n - 1)``, interpolated between the two order statistics around it.
    Each order statistic is replaced by its bin's representative, so the answer is within ALPHA
    (relative) of ``percentile_cont`` over the raw values."""
    cumulative = list(itertools.accumulate(counts))
    total = cumulative[-1] if cumulative else 0
    if total == 0:
        return [None for _ in quantiles]

    def order_statistic(k: int) -> float:
        # The k-th value (0-based) lies in the first bin whose running count exceeds k.
        return bin_value(bins[bisect.bisect_right(cumulative, k)])

    out: list[float | None] = []
    for q in quantiles:
        rank = q * (total - 1)
        low = math.floor(rank)
        value = order_statistic(low)
        if rank > low:
            value += (rank - low) * (order_statistic(low + 1) - value)
        out.append(value)
    return out


def bucket_floor(moment: datetime, grain: int) -> datetime:
    seconds = int((moment - EPOCH).total_seconds()) // grain * grain
    return EPOCH + timedelta(seconds=seconds)


# --- The write path: marks ---------------------------------------------------------------------


def _mark_sql() -> str:
    # ORDER BY: concurrent markers lock the same minutes in the same order (no deadlock).
    return f"""
        INSERT INTO {DIRTY} (project_id, minute, version)
        SELECT %s, m, 1 FROM (
            SELECT DISTINCT date_bin('1 minute', start_time, %s) AS m
            FROM {CALL} WHERE project_id = %s AND id = ANY(%s::uuid[])
        ) s ORDER BY m
        ON CONFLICT (project_id, minute) DO UPDATE SET version = {DIRTY}.version + 1
    """  # noqa: S608 - identifiers are ours; values are parameters


def rollup_add_calls(*, project_id: int, call_ids: Collection[uuid.UUID | str]) -> int:
    """Mark the minutes of calls just processed for a rollup recompute; returns the minutes
    marked. Safe to call any number of times for the same calls (a mark is a set member)."""
    if not call_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_mark_sql(), [project_id, EPOCH, project_id, [str(i) for i in call_ids]])
        return int(cursor.rowcount)


def rollup_add_feedback(*, project_id: int, call_ids: Collection[uuid.UUID | str]) -> int:
    """Feedback arrived for these calls: their buckets' feedback counts must be recomputed."""
    return rollup_add_calls(project_id=project_id, call_ids=call_ids)


def rollup_mark_range(*, project_id: int, start: datetime, end: datetime) -> int:
    """Mark every minute in [start, end) that has calls (a backfill, or after a bulk COPY)."""
    sql = f"""
        INSERT INTO {DIRTY} (project_id, minute, version)
        SELECT %s, m, 1 FROM (
            SELECT DISTINCT date_bin('1 minute', start_time, %s) AS m FROM {CALL}
            WHERE project_id = %s AND start_time >= %s AND start_time < %s
        ) s ORDER BY m
        ON CONFLICT (project_id, minute) DO UPDATE SET version = {DIRTY}.version + 1
    """  # noqa: S608 - identifiers are ours; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [project_id, EPOCH, project_id, start, end])
        return int(cursor.rowcount)


def rollup_reconcile_recent(*, window: timedelta = timedelta(minutes=15)) -> int:
    """Safety net for a mark lost between the follow-up's commit and its mark (a worker killed
    in between): re-mark every minute of the last ``window`` that has calls. Cheap (an index
    range scan per project) and harmless (a recompute of a correct bucket changes nothing)."""
    from apps.accounts.models import Project

    end = timezone.now() + timedelta(minutes=1)
    return sum(
        rollup_mark_range(project_id=pid, start=end - window, end=end)
        for pid in Project.objects.values_list("pk", flat=True)
    )


# --- Recompute ---------------------------------------------------------------------------------


def _recompute_from_calls(project_id: int, grain: int, buckets: Sequence[datetime]) -> None:
    """Replace the rollup rows of ``buckets`` (of ``grain`` seconds) by aggregates of the raw
    calls and their feedback."""
    if not buckets:
        return
    lo, hi = min(buckets), max(buckets) + timedelta(seconds=grain)
    interval = timedelta(seconds=grain)
    labels = sorted(NEGATIVE_LABELS)
    sums = ", ".join(_SUM_COLUMNS)
    sql = f"""
        WITH c AS (
            SELECT c.id, date_bin(%(interval)s, c.start_time, %(epoch)s) AS bucket, c.model,
                c.release, c.environment, c.status, c.processed_at, c.input_tokens,
                c.output_tokens, c.total_tokens, c.cost_usd, c.flagged, c.refusal, c.injection,
                c.toxicity, c.pii, c.latency_ms
            FROM {CALL} c
            WHERE c.project_id = %(project)s AND c.start_time >= %(lo)s AND c.start_time < %(hi)s
              AND date_bin(%(interval)s, c.start_time, %(epoch)s) = ANY(%(buckets)s)
              AND c.kind = ANY(%(llm_kinds)s)
        ), f AS (
            SELECT f.call_id, count(*) AS n,
                count(*) FILTER (WHERE f.score < %(neg)s OR lower(btrim(f.label)) = ANY(%(labels)s))
                    AS negative,
                count(f.score) FILTER (WHERE f.source = 'end_user') AS eu_n,
                coalesce(sum(f.score) FILTER (WHERE f.source = 'end_user'), 0) AS eu_sum,
                count(f.score) FILTER (WHERE f.source = 'reviewer') AS rv_n,
                coalesce(sum(f.score) FILTER (WHERE f.source = 'reviewer'), 0) AS rv_sum
            FROM {FEEDBACK} f
            WHERE f.project_id = %(project)s AND f.call_id IN (SELECT id FROM c)
            GROUP BY 1
        ), agg AS (
            SELECT {_ROLLED_UP},
                count(*) AS calls,
                count(*) FILTER (WHERE status = 'error') AS errors,
                count(*) FILTER (WHERE processed_at IS NOT NULL) AS processed,
                coalesce(sum(input_tokens), 0) AS input_tokens,
                coalesce(sum(output_tokens), 0) AS output_tokens,
                coalesce(sum(coalesce(total_tokens,
                    coalesce(input_tokens, 0) + coalesce(output_tokens, 0))), 0) AS total_tokens,
                coalesce(sum(cost_usd), 0) AS cost_usd,
                count(*) FILTER (WHERE flagged) AS flagged,
                count(*) FILTER (WHERE refusal) AS refusal,
                count(*) FILTER (WHERE injection >= %(cut)s) AS injection,
                count(*) FILTER (WHERE toxicity >= %(cut)s) AS toxicity,
                count(*) FILTER (WHERE cardinality(pii) > 0) AS pii,
                coalesce(sum(f.n), 0) AS feedback_count,
                coalesce(sum(f.negative), 0) AS feedback_negative,
                coalesce(sum(f.eu_n), 0) AS end_user_scored,
                coalesce(sum(f.eu_sum), 0) AS end_user_score_sum,
                coalesce(sum(f.rv_n), 0) AS reviewer_scored,
                coalesce(sum(f.rv_sum), 0) AS reviewer_score_sum
            FROM c LEFT JOIN f ON f.call_id = c.id
            GROUP BY bucket, {_GROUPING_SETS}
        ), h AS (
            SELECT {_KEY}, array_agg(bin ORDER BY bin) AS bins, array_agg(n ORDER BY bin) AS counts
            FROM (
                SELECT {_ROLLED_UP}, bin, count(*)::int AS n
                FROM (
                    SELECT *, ceil(ln(greatest(latency_ms, %(min_ms)s)) / %(ln_gamma)s)::int AS bin
                    FROM c WHERE latency_ms >= 0
                ) b GROUP BY bucket, bin, {_GROUPING_SETS}
            ) x GROUP BY {_KEY}
        )
        INSERT INTO {ROLLUP} ({_INSERT_COLUMNS})
        SELECT %(project)s, %(grain)s, {_KEY}, {sums},
            coalesce(h.bins, '{{}}'), coalesce(h.counts, '{{}}')
        FROM agg LEFT JOIN h USING (bucket, level, model, release, environment)
    """  # noqa: S608 - identifiers are ours; values are parameters
    _execute(
        sql,
        {
            "interval": interval,
            "epoch": EPOCH,
            "project": project_id,
            "grain": grain,
            "lo": lo,
            "hi": hi,
            "buckets": list(buckets),
            "llm_kinds": list(LLM_KINDS),
            "neg": NEGATIVE_SCORE_BELOW,
            "labels": labels,
            "cut": SIGNAL_CUTOFF,
            "min_ms": MIN_LATENCY_MS,
            "ln_gamma": LN_GAMMA,
        },
    )


def _recompute_from_rollups(
    project_id: int, grain: int, source_grain: int, buckets: Sequence[datetime]
) -> None:
    """Replace the rows of ``buckets`` by the sum of the finer ``source_grain`` rows inside."""
    if not buckets:
        return
    lo, hi = min(buckets), max(buckets) + timedelta(seconds=grain)
    sums = ", ".join(f"sum({c}) AS {c}" for c in _SUM_COLUMNS)
    sql = f"""
        WITH src AS (
            SELECT r.*, date_bin(%(interval)s, r.bucket, %(epoch)s) AS coarse FROM {ROLLUP} r
            WHERE r.project_id = %(project)s AND r.grain = %(source)s
              AND r.bucket >= %(lo)s AND r.bucket < %(hi)s
              AND date_bin(%(interval)s, r.bucket, %(epoch)s) = ANY(%(buckets)s)
        ), agg AS (
            SELECT coarse AS bucket, level, model, release, environment, {sums}
            FROM src GROUP BY 1, 2, 3, 4, 5
        ), h AS (
            SELECT bucket, level, model, release, environment, array_agg(bin ORDER BY bin) AS bins,
                array_agg(n ORDER BY bin) AS counts
            FROM (
                SELECT coarse AS bucket, level, model, release, environment, u.bin,
                    sum(u.n)::int AS n
                FROM src, unnest(src.latency_bins, src.latency_counts) AS u(bin, n)
                GROUP BY 1, 2, 3, 4, 5, 6
            ) x GROUP BY 1, 2, 3, 4, 5
        )
        INSERT INTO {ROLLUP} ({_INSERT_COLUMNS})
        SELECT %(project)s, %(grain)s, {_KEY}, {", ".join(_SUM_COLUMNS)},
            coalesce(h.bins, '{{}}'), coalesce(h.counts, '{{}}')
        FROM agg LEFT JOIN h USING (bucket, level, model, release, environment)
    """  # noqa: S608 - identifiers are ours; values are parameters
    _execute(
        sql,
        {
            "interval": timedelta(seconds=grain),
            "epoch": EPOCH,
            "project": project_id,
            "grain": grain,
            "source": source_grain,
            "lo": lo,
            "hi": hi,
            "buckets": list(buckets),
        },
    )


def _execute(sql: str, params: dict[str, Any]) -> None:
    """Delete the buckets' rows, then insert their recomputed rows (callers hold a transaction
    and the project's lock). Two statements: a DELETE in a CTE runs concurrently with the INSERT
    and the unique key would see both versions."""
    delete = f"""
        DELETE FROM {ROLLUP}
        WHERE project_id = %(project)s AND grain = %(grain)s AND bucket = ANY(%(buckets)s)
    """  # noqa: S608 - identifiers are ours; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(delete, params)
        cursor.execute(sql, params)


def _recompute(project_id: int, minutes: Iterable[datetime], *, now: datetime) -> None:
    """Minutes from raw calls; their hours from minute rows while those are kept, else raw."""
    minutes = sorted(set(minutes))
    _recompute_from_calls(project_id, RollupGrain.MINUTE, minutes)
    hours = sorted({bucket_floor(m, RollupGrain.HOUR) for m in minutes})
    # An hour is summed from minutes only if all of its minutes are still kept.
    kept_from = bucket_floor(now - MINUTE_RETENTION, RollupGrain.HOUR) + timedelta(hours=1)
    _recompute_from_rollups(
        project_id, RollupGrain.HOUR, RollupGrain.MINUTE, [h for h in hours if h >= kept_from]
    )
    _recompute_from_calls(project_id, RollupGrain.HOUR, [h for h in hours if h < kept_from])


# --- Flush -------------------------------------------------------------------------------------


def rollup_flush(*, project_id: int, limit: int = FLUSH_LIMIT, wait: bool = False) -> int:
    """Recompute up to ``limit`` dirty minutes of a project (and their hours); returns how many.

    Another flusher busy with the same project makes this return 0 at once (``wait=False``):
    its flush, or the next beat, covers the marks.
    """
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        cursor.execute(f"SELECT {lock}(%s, %s)", [LOCK_CLASS, project_id])
        row = cursor.fetchone()
        if not wait and not (row and row[0]):
            return 0
        cursor.execute(
            f"SELECT minute, version FROM {DIRTY} WHERE project_id = %s "  # noqa: S608
            "ORDER BY minute LIMIT %s",
            [project_id, limit],
        )
        seen = cursor.fetchall()
        if not seen:
            return 0
        _recompute(project_id, [m for m, _ in seen], now=now)
        # Only the marks seen: one made during this flush has a higher version and stays.
        cursor.execute(
            f"""DELETE FROM {DIRTY} d WHERE d.id IN (
                SELECT d2.id FROM {DIRTY} d2
                JOIN unnest(%s::timestamptz[], %s::bigint[]) AS s(minute, version)
                  ON d2.minute = s.minute AND d2.version = s.version
                WHERE d2.project_id = %s ORDER BY d2.minute FOR UPDATE OF d2)
            """,  # noqa: S608 - identifiers are ours; values are parameters
            [[m for m, _ in seen], [v for _, v in seen], project_id],
        )
    return len(seen)


def rollup_projects_due() -> list[int]:
    """Projects with minutes waiting for a flush."""
    return list(RollupDirty.objects.values_list("project_id", flat=True).distinct())


def rollup_flush_all(*, limit: int = FLUSH_LIMIT) -> int:
    """Flush every project until nothing is dirty or a project is busy elsewhere."""
    done = 0
    for project_id in rollup_projects_due():
        while n := rollup_flush(project_id=project_id, limit=limit):
            done += n
            if n < limit:
                break
    return done


def rollup_rebuild(
    *, project_id: int, start: datetime, end: datetime, now: datetime | None = None
) -> int:
    """Recompute [start, end) from raw calls, a day at a time (backfill after a bulk load or a
    repair). Minutes inside the minute retention get minute rows; older days get hour rows
    straight from raw calls. Returns the number of rollup rows now in the range."""
    now = now or timezone.now()
    kept_from = bucket_floor(now - MINUTE_RETENTION, RollupGrain.HOUR) + timedelta(hours=1)
    day = bucket_floor(start, RollupGrain.HOUR)
    while day < end:
        stop = min(day + timedelta(days=1), end)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, project_id])
            hours = _range(day, stop, RollupGrain.HOUR)
            old = [h for h in hours if h < kept_from]
            recent = [h for h in hours if h >= kept_from]
            _recompute_from_calls(project_id, RollupGrain.HOUR, old)
            if recent:
                minutes = _range(recent[0], recent[-1] + timedelta(hours=1), RollupGrain.MINUTE)
                _recompute_from_calls(project_id, RollupGrain.MINUTE, minutes)
                _recompute_from_rollups(project_id, RollupGrain.HOUR, RollupGrain.MINUTE, recent)
        day = stop
    return CallRollup.objects.filter(
        project_id=project_id, bucket__gte=start, bucket__lt=end
    ).count()


def _range(start: datetime, end: datetime, grain: int) -> list[datetime]:
    first = bucket_floor(start, grain)
    count = max(0, math.ceil((end - first).total_seconds() / grain))
    return [first + timedelta(seconds=grain * i) for i in range(count)]


def rollup_prune_minutes(*, now: datetime | None = None) -> int:
    """Drop minute rows older than the minute retention (hour rows stay)."""
    cutoff = bucket_floor((now or timezone.now()) - MINUTE_RETENTION, RollupGrain.HOUR)
    deleted, _ = CallRollup.objects.filter(grain=RollupGrain.MINUTE, bucket__lt=cutoff).delete()
    return deleted
