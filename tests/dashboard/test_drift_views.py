"""The drift page from stored checks: charts, new-intent groups, rename and pin (roles)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.drift.models import Baseline, DriftCheck, DriftMonitor, IntentCluster
from tests.dashboard.factories import make_call

PASSWORD = "correct horse battery staple"


def login(user: object) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)  # type: ignore[attr-defined]
    return client


@pytest.fixture
def drift_state(project):
    now = timezone.now()
    baseline = Baseline.objects.create(
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
    for i in range(4):
        drifted = i >= 2
        DriftCheck.objects.create(
            monitor=monitor,
            project=project,
            baseline=baseline,
            status="tested",
            window_start=now - timedelta(hours=30 - 6 * i),
            window_end=now - timedelta(hours=6 - i),
            n=400,
            tested_n=400,
            drifted=drifted,
            score=3.0 if drifted else 0.4,
            p_value=0.001 if drifted else 0.4,
            threshold=0.01,
            summary="Drift detected" if drifted else "No drift",
            results={
                "mean_shift": {
                    "score": 4.0 if drifted else 1.0,
                    "threshold": 1.5,
                    "drifted": drifted,
                }
            },
            intent_shares=[
                {"cluster_id": weather.pk, "window_share": 0.5, "baseline_share": 0.6},
                {"cluster_id": music.pk, "window_share": 0.5, "baseline_share": 0.4},
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


@pytest.mark.django_db
def test_drift_page_renders_checks_and_escapes_names(alice, drift_state) -> None:
    body = login(alice).get("/drift/").content.decode()
    assert "drift detected" in body
    assert 'id="chart-detector-combined"' in body
    assert 'id="chart-detector-mean_shift"' in body
    assert 'id="chart-shares"' in body
    assert "poem / sea" in body
    assert "find the poem about the sea" in body
    assert "<script>alert(1)</script>" not in body
    assert "<b>music</b>" not in body  # escaped in the table and in the figure JSON


@pytest.mark.django_db
def test_drift_empty_state(alice, project) -> None:
    body = login(alice).get("/drift/").content.decode()
    assert "No drift data yet" in body


@pytest.mark.django_db
def test_rename_intent_reviewer_yes_outsider_no(reviewer_user, charlie, drift_state) -> None:
    _, weather, _ = drift_state
    response = login(reviewer_user).post(
        "/drift/intents/rename/", {"intent_id": weather.pk, "name": "Weather questions"}
    )
    assert response.status_code == 302
    weather.refresh_from_db()
    assert weather.name == "Weather questions"
    response = login(charlie).post("/drift/intents/rename/", {"intent_id": weather.pk, "name": "x"})
    assert response.status_code == 404
    weather.refresh_from_db()
    assert weather.name == "Weather questions"


@pytest.mark.django_db
def test_pin_baseline_needs_admin(alice, reviewer_user, drift_state) -> None:
    baseline, _, _ = drift_state
    assert (
        login(reviewer_user)
        .post(f"/drift/baselines/{baseline.pk}/pin/", {"pinned": "1"})
        .status_code
        == 403
    )
    baseline.refresh_from_db()
    assert not baseline.pinned
    login(alice).post(f"/drift/baselines/{baseline.pk}/pin/", {"pinned": "1"})
    baseline.refresh_from_db()
    assert baseline.pinned
