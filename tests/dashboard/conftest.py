"""Dashboard fixtures: stored drift state (a baseline with intents and a run of checks)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from apps.drift import detectors
from apps.drift.models import Baseline, DriftCheck, DriftMonitor, IntentCluster
from apps.drift.services.state import state_encode
from apps.embeddings.models import CallEmbedding
from tests.dashboard.factories import make_call


@pytest.fixture
def drift_state(project: Any) -> tuple[Baseline, IntentCluster, IntentCluster]:
    """A ready baseline with two intents and eight tested 6-hourly checks; the last four drift
    (a new intent appears and music questions grow)."""
    now = timezone.now()
    # A real detector state (two intents of random 384-d vectors) so the map can be drawn.
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 384))
    vectors = np.concatenate(
        [
            centres[0] + 0.3 * rng.normal(size=(120, 384)),
            centres[1] + 0.3 * rng.normal(size=(80, 384)),
        ]
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    model = detectors.Baseline.fit(
        vectors,
        texts=["q"] * len(vectors),
        k=2,
        n_calibration=100,
        max_reference=200,
        key="test",
        seed=1,
    )
    baseline = Baseline.objects.create(
        state=state_encode({"detector": model.to_state(), "stream": None}),
        project=project,
        provider_key="test",
        status="ready",
        fitted_at=now,
        sample_size=500,
        start=now - timedelta(days=7),
        end=now - timedelta(days=3),
    )
    weather = IntentCluster.objects.create(
        baseline=baseline,
        project=project,
        index=0,
        centroid=[0.0] * 384,
        size=300,
        share=0.6,
        label="weather / forecast",
    )
    music = IntentCluster.objects.create(
        baseline=baseline,
        project=project,
        index=1,
        centroid=[0.0] * 384,
        size=200,
        share=0.4,
        label="<b>music</b>",
    )
    monitor = DriftMonitor.objects.create(project=project)
    example = make_call(project, prompt="<script>alert(1)</script> find the poem about the sea")
    # Vectors in the latest window (the map's filled points), one of them the example call.
    for i, vector in enumerate(vectors[:30]):
        call = example if i == 0 else make_call(project, prompt=f"question {i}")
        CallEmbedding.objects.create(
            project=project,
            call_id=call.id,
            start_time=call.start_time,
            kind="prompt",
            vector=vector.tolist(),
            text_hash=f"{i:064d}",
            provider_key="test",
        )
    for i in range(8):
        drifted = i >= 4
        music_share = 0.4 + 0.05 * max(0, i - 3)
        DriftCheck.objects.create(
            monitor=monitor,
            project=project,
            baseline=baseline,
            status="tested",
            window_start=now - timedelta(hours=24 + 6 * (7 - i)),
            window_end=now - timedelta(hours=6 * (7 - i)),
            n=400,
            tested_n=400,
            drifted=drifted,
            score=3.0 if drifted else 0.2 + 0.1 * i,
            p_value=0.001 if drifted else 0.4,
            threshold=0.01,
            summary="Drift detected in 400 calls" if drifted else "No drift in 400 calls",
            results={
                "mean_shift": {"score": 1.0 + 0.5 * i, "threshold": 2.5, "drifted": i >= 3},
                "new_intent_share": {"score": 0.02 * i, "threshold": 0.08, "drifted": i >= 4},
            },
            intent_shares=[
                {"cluster_id": weather.pk, "window_share": 1 - music_share, "baseline_share": 0.6},
                {"cluster_id": music.pk, "window_share": music_share, "baseline_share": 0.4},
            ],
            new_intents=[
                {
                    "size": 40,
                    "share": 0.1,
                    "label": "poem / sea",
                    "example_call_ids": [str(example.id)],
                    "nearest_cluster_name": "music",
                }
            ]
            if drifted
            else [],
        )
    return baseline, weather, music
