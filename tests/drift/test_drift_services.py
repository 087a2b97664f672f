"""Baselines and checks stored in PostgreSQL, the monitor loop, the drift API and command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Project
from apps.accounts.services import api_key_create
from apps.core.errors import ApplicationError
from apps.drift import selectors, tasks
from apps.drift.models import Baseline, BaselineStatus, CheckStatus, DriftCheck, DriftMonitor
from apps.drift.services import baselines, checks, monitors, state, windows
from apps.embeddings.models import CallEmbedding
from tests.drift.factories import seed_calls

BASE_MIX = {"weather": 70, "restaurant": 70, "music": 70}


@pytest.fixture
def now() -> Any:
    return windows.floor_to_interval(timezone.now(), 60)


@pytest.fixture
def history(project: Project, now: Any) -> dict[str, Any]:
    """A week of three intents before the current 24-hour window."""
    return seed_calls(project, BASE_MIX, start=now - timedelta(days=7), end=now - timedelta(days=1))


def fit(project: Project, now: Any, **kwargs: Any) -> Baseline:
    return baselines.baseline_fit(
        project=project, start=now - timedelta(days=8), end=now - timedelta(days=1), k=3, **kwargs
    )


@pytest.mark.django_db
def test_baseline_fit_stores_clusters_labels_and_state(
    project: Project, now: Any, history: dict[str, Any]
) -> None:
    baseline = fit(project, now)
    assert baseline.status == BaselineStatus.READY
    assert baseline.sample_size == 210
    clusters = list(baseline.clusters.order_by("index"))
    assert len(clusters) == 3
    assert abs(sum(c.share for c in clusters) - 1) < 1e-6
    labels = " ".join(c.label for c in clusters)
    for word in ("weather", "restaurant", "playlist"):
        assert word in labels or any(w in labels for w in ("forecast", "table", "song"))
    for cluster in clusters:
        assert len(cluster.example_call_ids) == 5
        intents = {i for i, ids in history.items() if set(cluster.example_call_ids) <= set(ids)}
        assert len(intents) == 1  # every example of a cluster is of one intent
    model = state.baseline_model(baseline=baseline)
    assert model.key == baseline.provider_key
    assert model.intents.k == 3
    assert selectors.baseline_current(project=project)["id"] == baseline.pk  # type: ignore[index]


@pytest.mark.django_db
def test_baseline_fit_refuses_a_thin_range(project: Project, now: Any) -> None:
    seed_calls(project, {"weather": 10}, start=now - timedelta(days=3), end=now - timedelta(days=2))
    with pytest.raises(ApplicationError, match="at least 80"):
        fit(project, now)
    assert Baseline.objects.get(project=project).status == BaselineStatus.FAILED


@pytest.mark.django_db
def test_check_finds_the_intent_that_grew_and_stores_once(
    project: Project, now: Any, history: dict[str, Any]
) -> None:
    fit(project, now)
    current = seed_calls(
        project,
        {"weather": 70, "restaurant": 15, "music": 15},
        start=now - timedelta(hours=20),
        end=now,
        seed=1,
    )
    check = checks.drift_check_run(project=project, window_end=now)
    assert check.status == CheckStatus.TESTED
    assert check.drifted, check.summary
    assert check.n == 100
    assert check.tested_n == 100
    assert check.p_value is not None
    assert check.threshold is not None
    assert check.p_value <= check.threshold
    grew = [s for s in check.intent_shares if s["moved"] == "grew"]
    assert len(grew) == 1
    assert set(grew[0]["example_call_ids"]) <= {str(i) for i in current["weather"]}
    assert grew[0]["window_share"] > 0.6 > grew[0]["baseline_share"]
    assert set(check.results) == {
        "kernel_mmd_classifier",
        "mean_shift",
        "intent_share",
        "new_intent",
    }
    # Re-running the same window returns the stored check.
    assert checks.drift_check_run(project=project, window_end=now).pk == check.pk
    assert DriftCheck.objects.filter(project=project).count() == 1
    # The streaming detector was fed the window's vectors.
    assert check.stream["events"] == 100


@pytest.mark.django_db
def test_check_names_a_new_intent_with_examples(
    project: Project, now: Any, history: dict[str, Any]
) -> None:
    fit(project, now)
    current = seed_calls(
        project,
        {"weather": 25, "restaurant": 25, "music": 25, "refund": 25},
        start=now - timedelta(hours=20),
        end=now,
        seed=2,
    )
    check = checks.drift_check_run(project=project, window_end=now)
    assert check.drifted
    assert check.new_intents, check.summary
    group = check.new_intents[0]
    assert set(group["example_call_ids"]) <= {str(i) for i in current["refund"]}
    assert any(w in group["label"] for w in ("refund", "invoice", "charge", "payment", "money"))
    # The refund calls are also unlike any single baseline call.
    assert check.out_of_domain["drifted"]
    assert check.out_of_domain["flagged"] >= 20
    assert set(check.out_of_domain["example_call_ids"]) <= {str(i) for i in current["refund"]}
    groups = selectors.new_intent_groups(project=project)
    assert groups[0]["examples"][0][1].split()[0] in {
        "refund",
        "invoice",
        "charge",
        "payment",
        "money",
    }


@pytest.mark.django_db
def test_same_mix_is_not_drift(project: Project, now: Any, history: dict[str, Any]) -> None:
    fit(project, now)
    seed_calls(
        project,
        {"weather": 34, "restaurant": 33, "music": 33},
        start=now - timedelta(hours=20),
        end=now,
        seed=3,
    )
    check = checks.drift_check_run(project=project, window_end=now)
    assert check.status == CheckStatus.TESTED
    assert not check.drifted, check.summary
    assert not check.out_of_domain["drifted"], check.out_of_domain


@pytest.mark.django_db
def test_a_model_change_is_reported_as_needing_a_refit_not_as_drift(
    project: Project, now: Any, history: dict[str, Any]
) -> None:
    fit(project, now)
    seed_calls(
        project,
        {"refund": 100},
        start=now - timedelta(hours=20),
        end=now,
        seed=4,
        provider_key="openai:text-embedding-3-small:384",
    )
    check = checks.drift_check_run(project=project, window_end=now)
    assert check.status == CheckStatus.NEEDS_REFIT
    assert not check.drifted
    assert "refit" in check.summary


@pytest.mark.django_db
def test_first_check_fits_a_baseline_or_says_why_not(project: Project, now: Any) -> None:
    seed_calls(project, {"weather": 30}, start=now - timedelta(hours=5), end=now)
    check = checks.drift_check_run(project=project, window_end=now)
    assert check.status == CheckStatus.NO_BASELINE
    assert "at least 80" in check.summary
    # History arrives: the next window fits a baseline from the 7 days before it.
    seed_calls(
        project, BASE_MIX, start=now - timedelta(days=6), end=now - timedelta(days=2), seed=5
    )
    Baseline.objects.filter(project=project).delete()
    check = checks.drift_check_run(project=project, window_end=now + timedelta(hours=1), fit_k=3)
    assert check.baseline is not None
    assert check.baseline.status == BaselineStatus.READY
    assert check.status == CheckStatus.TESTED


@pytest.mark.django_db
def test_monitor_loop_claims_once_and_the_janitor_frees_stuck_monitors(
    project: Project,
    other_project: Project,
    now: Any,
    history: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.run_drift_check, "apply_async", lambda args, **kw: sent.append(args))
    # A monitor appears for the project with vectors, not for the empty one.
    assert tasks.schedule_due_checks() == 1
    monitor = DriftMonitor.objects.get(project=project)
    assert not DriftMonitor.objects.filter(project=other_project).exists()
    assert sent == [(monitor.pk,)]

    assert monitors.drift_monitor_claim(monitor_id=monitor.pk)
    assert not monitors.drift_monitor_claim(monitor_id=monitor.pk)  # already running
    assert checks.drift_monitor_check(monitor_id=monitor.pk) is None
    assert monitors.drift_monitors_due() == []
    DriftMonitor.objects.filter(pk=monitor.pk).update(
        running_since=timezone.now() - timedelta(hours=1)
    )
    assert tasks.reset_stuck_checks() == 1

    fit(project, now)
    check = tasks.run_drift_check(monitor.pk)
    assert check is not None
    monitor.refresh_from_db()
    assert monitor.running_since is None
    assert monitor.next_check_at > timezone.now()
    assert monitors.drift_monitors_due() == []


@pytest.mark.django_db
def test_refit_keeps_reviewer_names(project: Project, now: Any, history: dict[str, Any]) -> None:
    first = fit(project, now)
    weather = next(
        c for c in first.clusters.all() if set(c.example_call_ids) <= set(history["weather"])
    )
    baselines.intent_rename(cluster=weather, name="  Weather   questions ")
    weather.refresh_from_db()
    assert weather.display_name == "Weather questions"
    second = fit(project, now)
    assert "Weather questions" in {c.name for c in second.clusters.all()}
    assert baselines.baseline_active(project_id=project.id) == second
    baselines.baseline_pin(baseline=first, pinned=True)
    assert baselines.baseline_active(project_id=project.id) == first


@pytest.mark.django_db
def test_drift_api(
    api_client: APIClient,
    project: Project,
    other_project: Project,
    read_key: str,
    admin_key: str,
    now: Any,
    history: dict[str, Any],
) -> None:
    baseline = fit(project, now)
    seed_calls(
        project,
        {"weather": 70, "restaurant": 15, "music": 15},
        start=now - timedelta(hours=20),
        end=now,
        seed=1,
    )
    checks.drift_check_run(project=project, window_end=now)
    read = APIClient()
    read.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")

    listed = read.get("/api/v1/drift/checks")
    assert listed.status_code == 200
    [latest] = listed.json()["results"]
    assert latest["drifted"] is True
    assert latest["intent_shares"]

    current = read.get("/api/v1/drift/baselines").json()["current"]
    assert current["id"] == baseline.pk
    assert len(current["clusters"]) == 3
    assert current["clusters"][0]["example_texts"][0]

    cluster_id = current["clusters"][0]["id"]
    renamed = read.patch(
        f"/api/v1/drift/intents/{cluster_id}", {"name": "Forecasts"}, format="json"
    )
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["name"] == "Forecasts"
    other_key = api_key_create(project=other_project, name="r", scopes=["read", "admin"]).raw
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    elsewhere = api_client.patch(
        f"/api/v1/drift/intents/{cluster_id}", {"name": "x"}, format="json"
    )
    assert elsewhere.status_code == 404

    body = {
        "start": (now - timedelta(days=8)).isoformat(),
        "end": (now - timedelta(days=1)).isoformat(),
    }
    assert read.post("/api/v1/drift/baselines", body, format="json").status_code == 403
    requested = admin.post("/api/v1/drift/baselines", body, format="json")
    assert requested.status_code == 202, requested.content
    assert requested.json()["status"] == "fitting"
    assert tasks.fit_baseline(requested.json()["id"]) == "ready"
    assert tasks.fit_baseline(requested.json()["id"]) == "skipped"
    pinned = admin.post(
        "/api/v1/drift/baselines", {"baseline_id": baseline.pk, "pin": True}, format="json"
    )
    assert pinned.status_code == 200
    assert pinned.json()["pinned"] is True
    # The API applies the same rule as the UI: one pinned baseline, and only a fitted one.
    again = admin.post(
        "/api/v1/drift/baselines",
        {"baseline_id": requested.json()["id"], "pin": True},
        format="json",
    )
    assert again.status_code == 200
    assert list(Baseline.objects.filter(project=project, pinned=True)) == [
        Baseline.objects.get(pk=requested.json()["id"])
    ]
    failed = Baseline.objects.create(
        project=project, provider_key="k", status=BaselineStatus.FAILED, error="too few"
    )
    refused = admin.post(
        "/api/v1/drift/baselines", {"baseline_id": failed.pk, "pin": True}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "baseline"
    bad = admin.post("/api/v1/drift/baselines", {"start": "yesterday"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["field"] == "start"


@pytest.mark.django_db
def test_ui_selectors(project: Project, now: Any, history: dict[str, Any]) -> None:
    fit(project, now)
    seed_calls(
        project,
        {"weather": 70, "restaurant": 15, "music": 15},
        start=now - timedelta(hours=20),
        end=now,
        seed=1,
    )
    checks.drift_check_run(project=project, window_end=now - timedelta(hours=1))
    checks.drift_check_run(project=project, window_end=now)
    series = selectors.drift_score_series(project=project)
    assert len(series) == 2
    assert series[-1]["score"] >= series[-1]["score_threshold"]
    assert set(series[-1]["detectors"]) == {
        "kernel_mmd_classifier",
        "mean_shift",
        "intent_share",
        "new_intent",
    }
    shares = selectors.intent_share_series(project=project)
    assert len(shares["intents"]) == 3
    assert len(shares["points"]) == 2
    assert abs(sum(shares["points"][-1]["shares"].values()) - 1) < 1e-6
    projection = selectors.drift_projection(project=project, per_side=50)
    sides = [p["side"] for p in projection["points"]]
    assert sides.count("baseline") == 50
    assert sides.count("current") == 50
    assert {p["cluster"] for p in projection["points"]} == {0, 1, 2}


@pytest.mark.django_db
def test_drift_check_command(project: Project, now: Any, history: dict[str, Any]) -> None:
    seed_calls(
        project,
        {"weather": 70, "restaurant": 15, "music": 15},
        start=now - timedelta(hours=20),
        end=now,
        seed=1,
    )
    out = StringIO()
    call_command("drift_check", "--project", project.slug, stdout=out)
    text = out.getvalue()
    assert "status: tested" in text
    assert "verdict: DRIFT" in text
    assert "grew" in text
    assert CallEmbedding.objects.filter(project=project).count() == 310


@pytest.mark.django_db
def test_daily_refit_moves_the_trailing_baseline_and_prunes_old_states(
    project: Project, now: Any, history: dict[str, Any]
) -> None:
    old = [fit(project, now) for _ in range(2)]
    pinned = fit(project, now, pin=True)
    monitors.drift_monitor_ensure(project=project)
    Baseline.objects.filter(pk__in=[b.pk for b in old]).update(
        fitted_at=timezone.now() - timedelta(days=2)
    )
    # A pinned baseline is kept: nothing is due.
    assert baselines.baselines_refit_due() == []
    baselines.baseline_pin(baseline=pinned, pinned=False)
    Baseline.objects.filter(pk=pinned.pk).update(fitted_at=timezone.now() - timedelta(days=2))
    assert baselines.baselines_refit_due() == [project.id]

    fresh = baselines.baseline_refit_trailing(project_id=project.id)
    assert fresh is not None
    assert fresh.status == BaselineStatus.READY
    assert baselines.baselines_prune(project_id=project.id, keep=2) == 2
    assert baselines.baseline_active(project_id=project.id) == fresh
    assert Baseline.objects.filter(project=project, state=None).count() == 2


@pytest.mark.django_db
def test_a_failing_check_is_stored_as_failed(
    project: Project, now: Any, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = monitors.drift_monitor_ensure(project=project)

    def broken(**_: Any) -> Any:
        raise ValueError("window must be (n, 384)")

    monkeypatch.setattr(checks, "_check_outcome", broken)
    check = checks.drift_monitor_check(monitor_id=monitor.pk)
    assert check is not None
    assert check.status == CheckStatus.FAILED
    assert "window must be" in check.summary
    monitor.refresh_from_db()
    assert monitor.running_since is None
