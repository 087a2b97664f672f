"""Rollups: exact counts, idempotent under replays, percentiles within the sketch's error."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from apps.accounts.models import Project
from apps.traces.metrics import (
    OverviewFilters,
    overview_call_series,
    overview_totals,
    time_window,
)
from apps.traces.models import (
    Call,
    CallRollup,
    Feedback,
    RollupDirty,
    RollupGrain,
    RollupLevel,
)
from apps.traces.rollup_selectors import (
    rollup_call_series,
    rollup_feedback_series,
    rollup_groups,
    rollup_overview_totals,
    rollup_totals,
)
from apps.traces.rollups import (
    ALPHA,
    bin_value,
    histogram_quantiles,
    latency_bin,
    rollup_add_calls,
    rollup_add_feedback,
    rollup_flush,
    rollup_rebuild,
    rollup_reconcile_recent,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODELS = ("gpt-4o-mini", "claude-haiku")


def make_calls(project: Project, n: int, *, seed: int = 1, hours: float = 3.0) -> list[Call]:
    rng = random.Random(seed)
    calls = [
        Call(
            project=project,
            id=uuid.uuid4(),
            model=MODELS[i % 2],
            release=f"v{i % 3}",
            environment="prod" if i % 5 else "staging",
            start_time=NOW - timedelta(seconds=rng.uniform(0, hours * 3600)),
            latency_ms=rng.lognormvariate(6.0, 0.8),
            input_tokens=100 + i % 7,
            output_tokens=200 + i % 11,
            cost_usd=0.001 * (1 + i % 4),
            status="error" if i % 13 == 0 else "ok",
            flagged=i % 17 == 0,
            refusal=i % 19 == 0,
            processed_at=NOW,
        )
        for i in range(n)
    ]
    return Call.objects.bulk_create(calls)


def rollup_snapshot(project: Project) -> list[tuple[Any, ...]]:
    # Float sums may differ in the last bit with the summation order: rounded.
    return [
        tuple(round(v, 9) if isinstance(v, float) else v for v in row)
        for row in CallRollup.objects.filter(project=project)
        .order_by("grain", "bucket", "level", "model", "release", "environment")
        .values_list(
            "grain",
            "bucket",
            "level",
            "model",
            "release",
            "environment",
            "calls",
            "errors",
            "cost_usd",
            "total_tokens",
            "flagged",
            "feedback_count",
            "latency_bins",
            "latency_counts",
        )
    ]


def add_and_flush(project: Project, calls: list[Call]) -> None:
    rollup_add_calls(project_id=project.pk, call_ids=[c.id for c in calls])
    while rollup_flush(project_id=project.pk, wait=True):
        pass


def test_sketch_bins_bound_the_relative_error() -> None:
    for ms in (0.5, 1.0, 12.3, 480.0, 999.9, 61_000.0):
        assert abs(bin_value(latency_bin(ms)) - ms) <= ALPHA * ms * (1 + 1e-9)
    assert histogram_quantiles([], [], [0.5]) == [None]


def test_counts_match_raw_and_replays_change_nothing(
    project: Project, other_project: Project
) -> None:
    calls = make_calls(project, 600)
    make_calls(other_project, 50, seed=2)
    add_and_flush(project, calls[:300])
    add_and_flush(project, calls[300:])
    first = rollup_snapshot(project)
    # A replay of every batch (Celery redelivery) and a replay of the whole range.
    add_and_flush(project, calls)
    add_and_flush(project, calls[:10])
    assert rollup_snapshot(project) == first
    assert not RollupDirty.objects.filter(project=project).exists()

    full = CallRollup.objects.filter(project=project, level=RollupLevel.FULL)
    minutes = full.filter(grain=RollupGrain.MINUTE)
    hours = full.filter(grain=RollupGrain.HOUR)
    assert sum(r.calls for r in minutes) == sum(r.calls for r in hours) == 600
    # Each level holds the same calls, rolled up further.
    for level in RollupLevel:
        rows = CallRollup.objects.filter(project=project, level=level, grain=RollupGrain.HOUR)
        assert sum(r.calls for r in rows) == 600
        assert sum(sum(r.latency_counts) for r in rows) == 600
    assert sum(r.errors for r in hours) == sum(1 for c in calls if c.status == "error")
    assert sum(r.cost_usd for r in hours) == pytest.approx(sum(c.cost_usd or 0 for c in calls))
    assert sum(r.total_tokens for r in hours) == sum(
        (c.input_tokens or 0) + (c.output_tokens or 0) for c in calls
    )
    assert sum(r.flagged for r in hours) == sum(1 for c in calls if c.flagged)
    # The other tenant was never marked, so nothing of it is rolled up.
    assert not CallRollup.objects.filter(project=other_project).exists()

    # A rebuild from raw rows gives the same rows as the incremental path.
    rollup_rebuild(project_id=project.pk, start=NOW - timedelta(hours=4), end=NOW, now=NOW)
    assert rollup_snapshot(project) == first


def exact_percentiles(project: Project, start: datetime, end: datetime) -> list[float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM traces_call WHERE project_id = %s AND start_time >= %s AND start_time < %s",
            [project.pk, start, end],
        )
        row = cursor.fetchone()
    assert row is not None
    return list(row[0])


def test_percentiles_within_the_sketch_error(project: Project) -> None:
    add_and_flush(project, make_calls(project, 3000, seed=3))
    # A window with ragged ends: whole hours from hour rows, the edges from minute rows.
    start, end = NOW - timedelta(hours=2, minutes=37), NOW - timedelta(minutes=13)
    totals = rollup_totals(project=project, start=start, end=end)
    exact = exact_percentiles(project, start, end)
    got = [totals.calls.p50_ms, totals.calls.p95_ms, totals.calls.p99_ms]
    for estimate, truth in zip(got, exact, strict=True):
        assert estimate is not None
        assert abs(estimate - truth) <= ALPHA * truth, (estimate, truth)
    assert (
        totals.calls.calls
        == Call.objects.filter(project=project, start_time__gte=start, start_time__lt=end).count()
    )


def test_series_and_totals_match_the_raw_selectors(project: Project) -> None:
    add_and_flush(project, make_calls(project, 800, seed=4, hours=20))
    for key in ("24h", "7d"):
        window = time_window(key, now=NOW)
        for filters in (
            OverviewFilters(),
            OverviewFilters(model=MODELS[1]),
            OverviewFilters(model=MODELS[0], environment="prod"),
        ):
            raw = overview_call_series(project=project, window=window, filters=filters)
            rolled = rollup_call_series(project=project, window=window, filters=filters)
            assert [b.bucket for b in raw] == [b.bucket for b in rolled]
            for r, o in zip(raw, rolled, strict=True):
                assert (r.calls, r.errors, r.total_tokens, r.flagged, r.processed) == (
                    o.calls,
                    o.errors,
                    o.total_tokens,
                    o.flagged,
                    o.processed,
                )
                assert o.cost_usd == pytest.approx(r.cost_usd)
                for exact, estimate in ((r.p50_ms, o.p50_ms), (r.p99_ms, o.p99_ms)):
                    if exact is not None:
                        assert estimate == pytest.approx(exact, rel=ALPHA)
            raw_now, raw_before = overview_totals(project=project, window=window, filters=filters)
            now_, before = rollup_overview_totals(project=project, window=window, filters=filters)
            assert now_.calls.calls == raw_now.calls.calls
            assert before.calls.calls == raw_before.calls.calls


def test_late_feedback_lands_in_its_calls_bucket(project: Project) -> None:
    calls = make_calls(project, 40, seed=5, hours=0.5)
    add_and_flush(project, calls)
    target = calls[0]
    Feedback.objects.create(project=project, call_id=target.id, score=0.0, source="end_user")
    Feedback.objects.create(project=project, call_id=target.id, score=1.0, source="reviewer")
    for _ in range(2):  # the second is a replay
        rollup_add_feedback(project_id=project.pk, call_ids=[target.id])
        rollup_flush(project_id=project.pk)
    hour = CallRollup.objects.get(
        project=project,
        grain=RollupGrain.HOUR,
        level=RollupLevel.FULL,
        bucket=target.start_time.replace(minute=0, second=0, microsecond=0),
        model=target.model,
        release=target.release,
        environment=target.environment,
    )
    assert (hour.feedback_count, hour.feedback_negative) == (2, 1)
    assert (hour.end_user_scored, hour.reviewer_scored) == (1, 1)
    window = time_window("24h", now=NOW)
    series = rollup_feedback_series(project=project, window=window, filters=OverviewFilters())
    assert sum(b.total for b in series) == 2
    assert sum(b.negative for b in series) == 1


def test_a_mark_made_during_a_flush_survives_it(project: Project) -> None:
    calls = make_calls(project, 5, seed=6, hours=0.01)
    rollup_add_calls(project_id=project.pk, call_ids=[c.id for c in calls])
    # Another process marks the same minute again after the flush read the marks: simulated by
    # bumping the version the flush will not have seen (the delete matches on version).
    from apps.traces import rollups

    original = rollups._recompute

    def recompute_then_mark(project_id: int, minutes: Any, *, now: datetime) -> None:
        original(project_id, minutes, now=now)
        RollupDirty.objects.filter(project_id=project_id).update(version=99)

    rollups._recompute = recompute_then_mark
    try:
        rollup_flush(project_id=project.pk)
    finally:
        rollups._recompute = original
    assert RollupDirty.objects.filter(project=project).exists()
    rollup_flush(project_id=project.pk)
    assert not RollupDirty.objects.filter(project=project).exists()


def test_reconcile_recovers_a_lost_mark(project: Project) -> None:
    from django.utils import timezone

    now = timezone.now()
    Call.objects.create(project=project, start_time=now - timedelta(minutes=2), latency_ms=5.0)
    assert not CallRollup.objects.filter(project=project).exists()
    assert rollup_reconcile_recent() >= 1
    rollup_flush(project_id=project.pk)
    hour = CallRollup.objects.get(
        project=project, grain=RollupGrain.HOUR, level=RollupLevel.PROJECT
    )
    assert hour.calls == 1


def test_groups_for_alert_rules(project: Project) -> None:
    calls = make_calls(project, 300, seed=8, hours=1)
    add_and_flush(project, calls)
    start, end = NOW - timedelta(minutes=47), NOW
    groups = rollup_groups(
        project_id=project.pk,
        start=start,
        end=end,
        filters={"environment": "prod"},
        group_by=["model"],
    )
    assert groups is not None
    for model in MODELS:
        expected = [
            c
            for c in calls
            if c.model == model and c.environment == "prod" and start <= c.start_time < end
        ]
        got = groups[(model,)].calls
        assert got.calls == len(expected)
        assert got.errors == sum(1 for c in expected if c.status == "error")
    whole = rollup_groups(project_id=project.pk, start=start, end=end)
    assert whole is not None
    assert whole[()].calls.calls == sum(1 for c in calls if start <= c.start_time < end)
    # Not rolled up: the caller must read raw calls.
    assert rollup_groups(project_id=project.pk, start=start, end=end, group_by=["provider"]) is None


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_flushes_through_a_real_worker(
    project: Project, celery_worker_process: object
) -> None:
    from apps.traces.tasks import rollups_flush
    from tests.conftest import wait_for

    calls = make_calls(project, 30, seed=9, hours=0.2)
    rollup_add_calls(project_id=project.pk, call_ids=[c.id for c in calls])
    rollups_flush.delay()  # fans out rollups_flush_project on the ingest queue

    def flushed() -> bool:
        rows = CallRollup.objects.filter(
            project=project, grain=RollupGrain.HOUR, level=RollupLevel.PROJECT
        )
        return sum(r.calls for r in rows) == 30

    assert wait_for(flushed, timeout=60)
    assert wait_for(lambda: not RollupDirty.objects.filter(project=project).exists())
