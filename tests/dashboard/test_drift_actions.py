"""Drift actions on the drift page: a new-intent group's calls, its name (kept for the same group
in later checks), a review sample, "check now", the plain verdict and one pinned baseline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from celery.signals import before_task_publish
from django.test import Client
from django.utils import timezone

from apps.drift.models import Baseline, DriftCheck, DriftMonitor, IntentCluster
from apps.drift.services.intent_groups import intent_group_call_ids, intent_group_get
from apps.embeddings.models import CallEmbedding
from apps.quality.models import ReviewRequest
from tests.dashboard.factories import make_call

PASSWORD = "correct horse battery staple"


def login(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _embed(project: Any, call: Any, vector: np.ndarray, i: int) -> None:
    CallEmbedding.objects.create(
        project=project,
        call_id=call.id,
        start_time=call.start_time,
        kind="prompt",
        vector=vector.astype(np.float32).tolist(),
        text_hash=f"{i:064d}",
        provider_key="test",
    )


@pytest.fixture
def new_intent(project: Any) -> dict[str, Any]:
    """A baseline with two intents, and a tested window where 30 calls sit far from both: one
    new-intent group (its five examples stored, as a check stores them)."""
    rng = np.random.default_rng(3)
    centres = _unit(rng.normal(size=(3, 384)))
    now = timezone.now()
    baseline = Baseline.objects.create(
        project=project, provider_key="test", status="ready", fitted_at=now, sample_size=400
    )
    for index in range(2):
        IntentCluster.objects.create(
            baseline=baseline,
            project=project,
            index=index,
            centroid=centres[index].astype(np.float32).tolist(),
            size=200,
            share=0.5,
            label=f"intent {index}",
        )
    known, new = [], []
    for i in range(40):
        call = make_call(project, prompt=f"known question {i}", ago=timedelta(hours=1))
        _embed(project, call, _unit(centres[i % 2] + 0.02 * rng.normal(size=384)), i)
        known.append(call)
    for i in range(30):
        call = make_call(project, prompt=f"<i>poem</i> about the sea {i}", ago=timedelta(hours=2))
        _embed(project, call, _unit(centres[2] + 0.02 * rng.normal(size=384)), 100 + i)
        new.append(call)
    monitor = DriftMonitor.objects.create(project=project)
    check = DriftCheck.objects.create(
        monitor=monitor,
        project=project,
        baseline=baseline,
        status="tested",
        window_start=now - timedelta(hours=24),
        window_end=now,
        n=70,
        tested_n=70,
        drifted=True,
        p_value=0.0001,
        threshold=0.01,
        summary="43% of calls are poorly served by every baseline intent.",
        results={"new_intent": {"drifted": True, "details": {"distance_threshold": 0.5}}},
        intent_shares=[],
        new_intents=[
            {
                "size": 30,
                "share": 30 / 70,
                "label": "poem / sea",
                "example_call_ids": [str(c.id) for c in new[:5]],
                "example_texts": [],
                "nearest_cluster_name": "intent 0",
            }
        ],
    )
    return {"check": check, "new": new, "known": known, "baseline": baseline, "monitor": monitor}


@pytest.mark.django_db
def test_the_group_members_are_the_far_calls_nearest_its_centre(project, new_intent) -> None:
    ref = intent_group_get(project=project, check_id=new_intent["check"].pk, index=0)
    ids = intent_group_call_ids(ref=ref)
    assert set(ids) == {c.id for c in new_intent["new"]}
    assert ids[:5] == [c.id for c in new_intent["new"][:5]]  # the examples lead


@pytest.mark.django_db
def test_open_its_calls_lists_exactly_the_group(alice, project, new_intent) -> None:
    client = login(alice)
    page = client.get("/drift/").content.decode()
    link = f"/calls/?drift_group={new_intent['check'].pk}:0"
    assert link in page
    body = client.get(link).content.decode()
    for call in new_intent["new"]:
        assert str(call.id) in body
    for call in new_intent["known"]:
        assert str(call.id) not in body
    assert "<i>poem</i>" not in body
    assert "&lt;i&gt;poem&lt;/i&gt;" in body
    # Another project's check is not reachable.
    assert client.get(f"/calls/?drift_group={new_intent['check'].pk + 999}:0").status_code == 404


@pytest.mark.django_db
def test_send_to_review_queues_a_sample_of_the_group(alice, reviewer_user, project, new_intent):
    client = login(reviewer_user)
    data = {"check_id": new_intent["check"].pk, "index": 0}
    response = client.post("/drift/groups/review/", data)
    assert response.status_code == 302
    assert response["Location"].startswith("/review/?mode=requested&batch=")
    requested = set(ReviewRequest.objects.values_list("call_id", flat=True))
    assert len(requested) == 20
    assert requested <= {c.id for c in new_intent["new"]}
    queue = client.get(response["Location"]).content.decode()
    assert "poem" in queue
    assert "known question" not in queue
    client.post("/drift/groups/review/", data)  # twice: nothing queued twice
    assert ReviewRequest.objects.count() == 20


@pytest.mark.django_db
def test_a_named_group_keeps_its_name_in_a_later_check(alice, project, new_intent) -> None:
    client = login(alice)
    check = new_intent["check"]
    response = client.post(
        "/drift/groups/name/", {"check_id": check.pk, "index": 0, "name": "Sea poems <3"}
    )
    assert response.status_code == 302
    assert "Sea poems &lt;3" in client.get("/drift/").content.decode()
    # A later check finds the same group (other example calls of it).
    later = DriftCheck.objects.create(
        monitor=new_intent["monitor"],
        project=project,
        baseline=new_intent["baseline"],
        status="tested",
        window_start=check.window_start + timedelta(minutes=1),
        window_end=check.window_end + timedelta(minutes=1),
        drifted=True,
        new_intents=[
            {
                "size": 25,
                "share": 0.3,
                "label": "sea / verse",
                "example_call_ids": [str(c.id) for c in new_intent["new"][10:15]],
            }
        ],
    )
    page = client.get("/drift/").content.decode()
    assert f'data-group="{later.pk}:0"' in page
    assert "Sea poems &lt;3" in page
    assert "ask about something new (Sea poems &lt;3)" in page  # the verdict uses the name


@pytest.mark.django_db
def test_the_verdict_opens_with_a_plain_sentence(alice, project, new_intent) -> None:
    page = login(alice).get("/drift/").content.decode()
    verdict = page.split('class="js-verdict">', 1)[1].split("</strong>", 1)[0]
    assert verdict.startswith("Users are asking different things than in the baseline: 43%")
    assert "p =" not in verdict


@pytest.mark.django_db(transaction=True)
def test_check_now_queues_the_drift_check_task(alice, bob, reviewer_user, project) -> None:
    sent: list[tuple[str, Any]] = []

    def seen(sender: str, body: Any, **_: Any) -> None:
        sent.append((sender, body))

    before_task_publish.connect(seen)
    try:
        response = login(bob).post("/drift/check/", follow=True)
    finally:
        before_task_publish.disconnect(seen)
    assert "Drift check queued" in response.content.decode()
    monitor = DriftMonitor.objects.get(project=project)
    assert [s for s, _ in sent] == ["apps.drift.tasks.run_drift_check"]
    assert sent[0][1][0] == [monitor.pk]
    assert login(reviewer_user).post("/drift/check/").status_code == 403


@pytest.mark.django_db
def test_pinning_from_the_page_leaves_one_pinned_baseline(alice, project) -> None:
    now = timezone.now()
    first, second = (
        Baseline.objects.create(project=project, status="ready", fitted_at=now, pinned=True),
        Baseline.objects.create(project=project, status="ready", fitted_at=now),
    )
    client = login(alice)
    assert client.post(f"/drift/baselines/{second.pk}/pin/", {"pinned": "1"}).status_code == 302
    assert list(Baseline.objects.filter(project=project, pinned=True)) == [second]
    assert client.post(f"/drift/baselines/{first.pk}/pin/", {"pinned": "1"}).status_code == 302
    assert list(Baseline.objects.filter(project=project, pinned=True)) == [first]
