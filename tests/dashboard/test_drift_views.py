"""The drift page from stored checks: charts, new-intent groups, rename and pin (roles)."""

from __future__ import annotations

import pytest
from django.test import Client

PASSWORD = "correct horse battery staple"


def login(user: object) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)  # type: ignore[attr-defined]
    return client


@pytest.mark.django_db
def test_drift_page_renders_checks_and_escapes_names(alice, drift_state) -> None:
    body = login(alice).get("/drift/").content.decode()
    assert "drift detected" in body
    assert 'id="chart-detector-combined"' in body
    assert 'id="chart-detector-mean_shift"' in body
    assert 'id="chart-shares"' in body
    assert 'id="chart-map"' in body
    assert "weather / forecast" in body  # the baseline's intents, renamable
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
