"""Per-project operating points of the learned safety flags: the service, the embed worker's
scoring (a project's point changes which of its calls are flagged), the API and the UI section.

The vectors here are built from the shipped injection probe's own weights so that their logit
lies between the thresholds of two operating points: a call that the 1% point leaves alone and
the 5% point flags. That tests the wiring (setting -> worker -> stored flags) exactly; the
real model's figures are the bench's job (``python -m bench.quality.signals``).
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.embeddings.models import CallEmbedding
from apps.embeddings.services import call_injection_update
from apps.quality.models import SafetySettings
from apps.quality.safety import compute_signals
from apps.quality.scorers import learned
from apps.quality.selectors import safety_fpr_for_project, safety_settings_get
from apps.quality.services import safety_settings_set
from apps.traces.models import Call

KEY = "sentence-transformers:all-MiniLM-L6-v2:384"
PROMPT = "What is the weather like in Lisbon tomorrow?"  # no injection marker: heuristic 0


pytestmark = pytest.mark.usefixtures("fresh_scorers")


def _between(signal: str, loose: float, strict: float) -> np.ndarray:
    """A vector whose logit (heuristic 0) lies halfway between the thresholds for FPR ``strict``
    and ``loose``: flagged at ``loose``, not at ``strict``."""
    probe = learned.probe(signal)
    assert probe is not None
    target = (probe.threshold(loose) + probe.threshold(strict)) / 2
    w = probe.weights.astype(np.float64)
    vector = w / np.linalg.norm(w) * (target - probe.bias) / np.linalg.norm(w)
    assert probe.threshold(loose) < probe.logit(vector, 0.0) < probe.threshold(strict)
    return vector.astype(np.float32)


def test_the_chosen_point_decides_the_flag_of_one_call() -> None:
    vector = _between("injection", 0.05, 0.01)
    default = compute_signals(prompt=PROMPT, response="", prompt_embedding=vector, provider_key=KEY)
    assert default["injection_source"] == "embedding+heuristic"
    assert default["injection"] < 0.5
    assert "injection" not in default["flags"]
    loose = compute_signals(
        prompt=PROMPT,
        response="",
        prompt_embedding=vector,
        provider_key=KEY,
        safety_fpr={"injection": 0.05},
    )
    assert loose["injection"] > 0.5
    assert "injection" in loose["flags"]
    # Another signal's choice does not move injection's point.
    other = compute_signals(
        prompt=PROMPT,
        response="",
        prompt_embedding=vector,
        provider_key=KEY,
        safety_fpr={"toxicity": 0.05},
    )
    assert other["injection"] == default["injection"]


@pytest.mark.django_db
def test_service_validates_and_the_selector_reads(project: Project) -> None:
    assert safety_fpr_for_project(project_id=project.pk) == {}
    safety_settings_set(project=project, injection_fpr=0.005, toxicity_fpr=0.02)
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.005, "toxicity": 0.02}
    safety_settings_set(project=project, injection_fpr=None)  # back to the default
    assert safety_fpr_for_project(project_id=project.pk) == {"toxicity": 0.02}
    with pytest.raises(ApplicationError) as caught:
        safety_settings_set(project=project, refusal_fpr=0.03)
    assert caught.value.field == "refusal_fpr"
    with pytest.raises(ApplicationError) as caught:
        safety_settings_set(project=project, pii_fpr=0.01)
    assert caught.value.field == "pii_fpr"
    assert SafetySettings.objects.get(project=project).refusal_fpr is None
    rows = {r.signal: r for r in safety_settings_get(project=project)}
    assert rows["toxicity"].chosen_fpr == 0.02
    assert rows["toxicity"].point.target_fpr == 0.02
    assert rows["injection"].chosen_fpr is None
    assert rows["injection"].point.target_fpr == learned.DEFAULT_FPR
    for row in rows.values():  # the shipped leave-one-source-out figures at each point
        assert 0.0 <= row.point.expected_fpr <= 0.05
        assert row.point.heldout_recall is not None
        assert 0.0 < row.point.heldout_recall <= 1.0
        assert row.point.heldout_worst_family


def _embedded_call(project: Project, vector: np.ndarray) -> Call:
    call = Call.objects.create(
        project=project,
        id=uuid.uuid4(),
        start_time=timezone.now(),
        model="gpt-4o-mini",
        prompt=PROMPT,
        response="",
        status="ok",
    )
    CallEmbedding.objects.create(
        project=project,
        call_id=call.id,
        start_time=call.start_time,
        kind="prompt",
        vector=vector.tolist(),
        text_hash=uuid.uuid4().hex,
        provider_key=KEY,
    )
    return call


@pytest.mark.django_db
def test_the_embed_worker_flags_by_the_projects_point(
    project: Project, other_project: Project
) -> None:
    vector = _between("injection", 0.05, 0.01)
    mine = [_embedded_call(project, vector) for _ in range(3)]
    theirs = _embedded_call(other_project, vector)

    def rescore() -> dict[uuid.UUID, Call]:
        call_injection_update(project_id=project.pk, call_ids=[c.id for c in mine])
        call_injection_update(project_id=other_project.pk, call_ids=[theirs.id])
        return {c.id: c for c in Call.objects.filter(id__in=[*(c.id for c in mine), theirs.id])}

    calls = rescore()
    assert not any("injection" in c.signals["flags"] for c in calls.values())

    safety_settings_set(project=project, injection_fpr=0.05)
    with CaptureQueriesContext(connection) as queries:
        call_injection_update(project_id=project.pk, call_ids=[c.id for c in mine])
    reads = [q for q in queries.captured_queries if "quality_safetysettings" in q["sql"]]
    assert len(reads) == 1  # once per batch, not per call
    calls = rescore()
    for call in mine:
        stored = calls[call.id]
        assert "injection" in stored.signals["flags"]
        assert stored.flagged
        assert stored.injection is not None
        assert stored.injection >= 0.5
    # The other tenant's identical call keeps its own (default) point.
    assert "injection" not in calls[theirs.id].signals["flags"]

    # A stricter point than the default unflags what the default would flag.
    strict = _embedded_call(project, _between("injection", 0.01, 0.001))
    call_injection_update(project_id=project.pk, call_ids=[strict.id])
    strict.refresh_from_db()
    assert "injection" in strict.signals["flags"]
    safety_settings_set(project=project, injection_fpr=0.001)
    call_injection_update(project_id=project.pk, call_ids=[strict.id])
    strict.refresh_from_db()
    assert "injection" not in strict.signals["flags"]


@pytest.mark.django_db
def test_api_reads_with_read_scope_and_writes_with_admin_scope(
    api_client: APIClient, project: Project, read_key: str, admin_key: str, ingest_key: str
) -> None:
    url = "/api/v1/safety-settings"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    answer = api_client.get(url)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["choices"] == list(learned.FPR_CHOICES)
    rows = {r["signal"]: r for r in body["results"]}
    assert set(rows) == set(learned.SIGNALS)
    assert rows["injection"]["chosen_fpr"] is None
    assert rows["injection"]["target_fpr"] == learned.DEFAULT_FPR
    assert rows["injection"]["heldout_recall"] > 0
    assert api_client.patch(url, {"injection_fpr": 0.05}, format="json").status_code == 403

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    assert api_client.get(url).status_code == 403

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    answer = api_client.patch(url, {"injection_fpr": 0.05}, format="json")
    assert answer.status_code == 200, answer.content
    rows = {r["signal"]: r for r in answer.json()["results"]}
    assert rows["injection"]["chosen_fpr"] == 0.05
    assert rows["injection"]["target_fpr"] == 0.05
    assert rows["injection"]["expected_fpr"] > 0.01
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}

    bad = api_client.patch(url, {"toxicity_fpr": 0.3}, format="json")
    assert bad.status_code == 400
    assert "toxicity_fpr" in str(bad.json())
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}

    # PUT replaces: what it does not name goes back to the default.
    answer = api_client.put(url, {"refusal_fpr": 0.02}, format="json")
    assert answer.status_code == 200, answer.content
    assert safety_fpr_for_project(project_id=project.pk) == {"refusal": 0.02}


@pytest.mark.django_db
def test_api_is_project_scoped(
    api_client: APIClient, project: Project, other_project: Project, charlie: object
) -> None:
    safety_settings_set(project=project, injection_fpr=0.05)
    api_client.force_login(charlie)  # type: ignore[arg-type]
    assert api_client.get(f"/api/v1/safety-settings?project={project.slug}").status_code == 404
    answer = api_client.patch(
        f"/api/v1/safety-settings?project={project.slug}", {"injection_fpr": 0.001}, format="json"
    )
    assert answer.status_code == 404
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}
    mine = api_client.get(f"/api/v1/safety-settings?project={other_project.slug}")
    assert mine.status_code == 200
    assert {r["signal"]: r["chosen_fpr"] for r in mine.json()["results"]}["injection"] is None


def _login(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


@pytest.mark.django_db
def test_settings_page_shows_and_saves_the_points(
    alice: object, reviewer_user: object, project: Project
) -> None:
    client = _login(alice)
    page = client.get("/settings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="safety"' in html
    assert 'name="injection_fpr"' in html
    assert "Held-out recall" in html
    point = {r.signal: r.point for r in safety_settings_get(project=project)}["injection"]
    assert f"{point.expected_fpr * 100:.2g}%" in html  # the expected benign FPR of the point

    saved = client.post("/settings/safety/", {"injection_fpr": "0.05", "toxicity_fpr": ""})
    assert saved.status_code == 302
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}
    html = client.get("/settings/").content.decode()
    assert '<option value="0.05" selected>' in html

    assert client.post("/settings/safety/", {"injection_fpr": "0.3"}).status_code == 302
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}

    rita = _login(reviewer_user)
    assert rita.post("/settings/safety/", {"injection_fpr": "0.001"}).status_code == 403
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}


def test_a_learned_score_records_its_operating_point() -> None:
    vector = _between("injection", 0.05, 0.01)
    signals = compute_signals(
        prompt=PROMPT,
        response="Sunny.",
        prompt_embedding=vector,
        response_embedding=vector,
        provider_key=KEY,
        safety_fpr={"injection": 0.05},
    )
    assert signals["safety_fpr"] == {"injection": 0.05, "toxicity": 0.01, "refusal": 0.01}
    assert "safety_fpr" not in compute_signals(prompt=PROMPT, response="Sunny.")


@pytest.mark.django_db
def test_overview_and_call_page_say_the_fpr_of_their_flags(alice: object, project: Project) -> None:
    from tests.dashboard.factories import make_call

    safety_settings_set(project=project, toxicity_fpr=0.02)
    vector = _between("injection", 0.05, 0.01)
    signals = compute_signals(
        prompt=PROMPT,
        response="",
        prompt_embedding=vector,
        provider_key=KEY,
        safety_fpr={"injection": 0.05},
    )
    call = make_call(
        project,
        prompt=PROMPT,
        signals=signals,
        injection=signals["injection"],
        flagged=signals["flagged"],
        processed_at=timezone.now(),
    )
    client = _login(alice)
    overview = client.get("/").content.decode()
    assert 'id="safety-fpr-caption"' in overview
    assert "toxicity 2%" in overview
    assert "injection 1%" in overview
    page = client.get(f"/calls/{call.id}/").content.decode()
    assert 'id="flag-fpr-legend"' in page
    assert "operating point for a 5% benign false-positive rate" in page  # injection, as stored
    heuristic = make_call(
        project, prompt="hello", signals={"flags": []}, processed_at=timezone.now()
    )
    page = client.get(f"/calls/{heuristic.id}/").content.decode()
    assert "Scored by the heuristics" in page
