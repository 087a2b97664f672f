"""The decoded streaming chart is cached per process: a check decodes the baseline's state once,
a rewritten state is never served stale, and the cache changes no result."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from apps.accounts.models import Project
from apps.drift.models import Baseline, DriftMonitor
from apps.drift.services import state, stream
from tests.drift.factories import seed_calls


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    stream.stream_chart_cache_clear()


def rewrite_state(baseline: Baseline, change: Any) -> Baseline:
    """Store ``change(decoded state)`` as the baseline's state, as a refit in place would."""
    decoded = state.state_decode(baseline.state)
    change(decoded)
    Baseline.objects.filter(pk=baseline.pk).update(state=state.state_encode(decoded))
    return Baseline.objects.get(pk=baseline.pk)


@pytest.mark.django_db
def test_the_chart_is_decoded_once_and_the_cache_changes_no_result(
    project: Project, now: Any, fitted: Baseline
) -> None:
    monitor = DriftMonitor.objects.get_or_create(project=project)[0]
    seed_calls(project, {"weather": 30, "refund": 20}, start=now - timedelta(hours=20), end=now)
    stream.stream_feed(monitor=monitor, baseline=fitted)
    saved = {
        field: getattr(DriftMonitor.objects.get(pk=monitor.pk), field)
        for field in ("stream_state", "stream_cursor", "stream_baseline_id")
    }
    seed_calls(project, {"refund": 40}, start=now, end=now + timedelta(minutes=30), seed=7)
    monitor.refresh_from_db()
    cached = stream.stream_feed(monitor=monitor, baseline=Baseline.objects.get(pk=fitted.pk))
    info = stream.stream_chart_cache_info()
    assert (info.misses, info.hits) == (1, 1)
    after_cached = DriftMonitor.objects.get(pk=monitor.pk).stream_state

    # The same check again from the same stored running part, with nothing cached.
    DriftMonitor.objects.filter(pk=monitor.pk).update(**saved)
    stream.stream_chart_cache_clear()
    monitor.refresh_from_db()
    uncached = stream.stream_feed(monitor=monitor, baseline=Baseline.objects.get(pk=fitted.pk))
    assert stream.stream_chart_cache_info().misses == 1
    assert cached["events"] == 40
    assert cached == uncached
    assert DriftMonitor.objects.get(pk=monitor.pk).stream_state == after_cached


@pytest.mark.django_db
def test_a_rewritten_chart_is_not_served_stale(
    project: Project, now: Any, fitted: Baseline
) -> None:
    monitor = DriftMonitor.objects.get_or_create(project=project)[0]
    mix = {"weather": 10, "restaurant": 10, "music": 10}
    seed_calls(project, mix, start=now - timedelta(hours=20), end=now)
    first = stream.stream_feed(monitor=monitor, baseline=fitted)
    assert first["since_reset"] == 30

    # The window part rewritten (a calibration saved for later checks), the chart kept:
    # decoded again, and the running statistic resumes on the same chart.
    kept = rewrite_state(fitted, lambda s: s["detector"].update(rewritten=True))
    seed_calls(project, mix, start=now, end=now + timedelta(minutes=10), seed=3)
    monitor.refresh_from_db()
    second = stream.stream_feed(monitor=monitor, baseline=kept)
    assert stream.stream_chart_cache_info().misses == 2
    assert (second["limit"], second["since_reset"]) == (first["limit"], 60)

    # A new chart in the same baseline row: its limit is used and the statistic restarts.
    refit = rewrite_state(kept, lambda s: s["stream"].update(limit=s["stream"]["limit"] * 2))
    seed_calls(
        project,
        mix,
        start=now + timedelta(minutes=20),
        end=now + timedelta(minutes=30),
        seed=4,
    )
    monitor.refresh_from_db()
    third = stream.stream_feed(monitor=monitor, baseline=refit)
    assert stream.stream_chart_cache_info().misses == 3
    assert third["limit"] == pytest.approx(2 * first["limit"])
    assert third["since_reset"] == third["events"]
