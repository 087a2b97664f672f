"""The streaming detector's stored state: the fitted chart stays with the baseline, a monitor
rewrites only the running statistic, and monitors stored before that split still resume."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.db import connection

from apps.accounts.models import Project
from apps.drift.detectors import MewmaDetector
from apps.drift.models import Baseline, DriftMonitor
from apps.drift.services import checks, state, stream
from tests.drift.factories import BASE_MIX, intent_vectors, seed_calls


def stored_bytes(monitor: DriftMonitor) -> int:
    """What PostgreSQL holds for the monitor's stream state (the bytes a check rewrites)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT octet_length(stream_state::text) FROM drift_driftmonitor WHERE id = %s",
            [monitor.pk],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.django_db
def test_a_check_rewrites_only_the_running_statistic(
    project: Project, now: Any, fitted: Baseline
) -> None:
    seed_calls(project, BASE_MIX, start=now - timedelta(hours=20), end=now, seed=1)
    check = checks.drift_check_run(project=project, window_end=now)
    monitor = DriftMonitor.objects.get(project=project)
    chart = state.state_decode(fitted.state)["stream"]
    dimension = len(MewmaDetector.from_state(chart).z)
    # The running part: z (float64, base64) and three counters, whatever the whitening's size.
    assert stored_bytes(monitor) < 8 * dimension * 4 / 3 + 400
    assert stored_bytes(monitor) * 20 < len(json.dumps(chart))
    assert "whitening" not in (monitor.stream_state or {})
    assert check.stream["events"] == 210
    assert check.stream["test"] == "mewma"
    assert check.stream["limit"] > 0
    assert check.stream["statistic"] >= 0
    assert check.stream["state_bytes"] < 8 * dimension * 4 / 3 + 400


@pytest.mark.django_db
def test_the_running_statistic_resumes_across_checks(
    project: Project, now: Any, fitted: Baseline
) -> None:
    """Feeding a stream in two checks ends where feeding it at once does."""
    monitor = DriftMonitor.objects.get_or_create(project=project)[0]
    seed_calls(project, {"weather": 40, "refund": 20}, start=now - timedelta(hours=20), end=now)
    first = stream.stream_feed(monitor=monitor, baseline=fitted)
    seed_calls(project, {"refund": 30}, start=now, end=now + timedelta(minutes=30), seed=7)
    monitor.refresh_from_db()
    second = stream.stream_feed(monitor=monitor, baseline=fitted)
    assert (first["events"], second["events"]) == (60, 30)

    from apps.embeddings.models import CallEmbedding

    vectors = np.stack(
        [
            np.asarray(v, dtype=np.float64)
            for v in CallEmbedding.objects.filter(project=project, start_time__gte=fitted.end)
            .order_by("created_at", "id")
            .values_list("vector", flat=True)
        ]
    )
    whole = MewmaDetector.from_state(state.state_decode(fitted.state)["stream"])
    result = whole.update(vectors)
    assert second["statistic"] == pytest.approx(result.statistic)
    assert second["since_reset"] == result.since_reset


@pytest.mark.django_db
def test_a_monitor_stored_with_the_whole_detector_still_resumes(
    project: Project, now: Any, fitted: Baseline
) -> None:
    """Before the split a monitor held the fitted chart and its statistic (version 1)."""
    chart = MewmaDetector.from_state(state.state_decode(fitted.state)["stream"])
    rng = np.random.default_rng(3)
    mixed = np.vstack([intent_vectors(name, 17, rng) for name in BASE_MIX])
    chart.update(mixed[rng.permutation(len(mixed))])
    legacy = chart.to_state()
    monitor = DriftMonitor.objects.get_or_create(project=project)[0]
    monitor.stream_state = legacy
    monitor.stream_baseline = fitted
    monitor.stream_cursor = now - timedelta(hours=1)
    monitor.save()
    before = stored_bytes(monitor)
    mix = {"weather": 7, "restaurant": 7, "music": 6}
    seed_calls(project, mix, start=now - timedelta(minutes=30), end=now, seed=9)
    update = stream.stream_feed(monitor=monitor, baseline=fitted)
    monitor.refresh_from_db()
    assert update["events"] == 20
    assert not update["alarm"]
    assert update["since_reset"] == 71  # resumed from the stored statistic, not from zero
    assert (monitor.stream_state or {})["version"] == 2
    assert stored_bytes(monitor) * 20 < before
    # An unreadable running part restarts the chart instead of failing the check.
    monitor.stream_state = {"version": 99}
    monitor.save(update_fields=["stream_state"])
    seed_calls(project, mix, start=now, end=now + timedelta(minutes=5), seed=10)
    assert stream.stream_feed(monitor=monitor, baseline=fitted)["since_reset"] == 20
