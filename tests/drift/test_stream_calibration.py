"""The streaming chart's limit gives the requested in-control run length on fresh traffic, pooled
over references (each reference's own mean error moves its chart's run length; the calibration
targets the average a user gets)."""

from __future__ import annotations

import numpy as np
import pytest

from apps.drift.detectors import MewmaDetector

DIMENSION = 128
SPECTRUM = 2.0 * 0.97 ** np.arange(DIMENSION)


def fresh(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, DIMENSION)) * np.sqrt(SPECTRUM)


def test_run_length_is_the_requested_one_with_a_pool_near_the_charts_memory() -> None:
    """Many directions and a held-out half (200 rows) only a few times the chart's memory: the
    regime where repeated pool rows and the shape of the mean error's draw decide the limit
    (before the repeat-free pairs and sign draws, the run length came out 0.80x)."""
    events, alarms = 0, 0
    for draw in range(4):
        rng = np.random.default_rng(100 + draw)
        chart = MewmaDetector.fit(
            fresh(rng, 400), arl0=300, lam=0.02, n_components=DIMENSION, n_streams=200, seed=draw
        )
        update = chart.clone().update(fresh(rng, 30_000))
        events += 30_000
        alarms += len(update.alarm_positions)
    assert alarms > 300  # enough for the pooled figure to be within a few percent
    assert 0.85 * 300 < events / alarms < 1.2 * 300


def test_path_is_the_statistic_update_reports_and_leaves_the_chart_alone() -> None:
    rng = np.random.default_rng(5)
    chart = MewmaDetector.fit(fresh(rng, 600), arl0=300, lam=0.05, n_streams=50, seed=1)
    chart.limit = float("inf")
    events = fresh(rng, 250)
    path = chart.path(events)
    assert chart.since_reset == 0
    update = chart.clone().update(events)
    assert path[-1] == pytest.approx(update.statistic, rel=1e-9)
    assert np.allclose(chart.path(chart.whiten(events), whitened=True), path)
