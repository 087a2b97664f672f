"""REST API of evaluators: admin scope, tenancy, write-only keys, 400s naming the field,
paused status visible, scores in the call detail, preview and backfill; the backfill command."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.evaluators import services
from apps.evaluators.models import EvalJob, Evaluator, Score
from tests.evaluators.conftest import make_call, openai_connection
from tests.evaluators.fakes import FakeLLM, error_answer, openai_answer

pytestmark = pytest.mark.django_db


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _connection(client: APIClient, llm: FakeLLM, **kw: Any) -> dict[str, Any]:
    body = {
        "name": "judge",
        "provider": "openai",
        "base_url": llm.base_url + "/v1",
        "api_key": "sk-very-secret-key-1234",
        "default_model": "gpt-4o-mini",
    }
    body.update(kw)
    response = client.post("/api/v1/llm-connections", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_connection_and_evaluator_crud(admin_key: str, llm: FakeLLM, allow_private: None) -> None:
    client = _client(admin_key)
    conn = _connection(client, llm)
    assert "api_key" not in conn
    assert conn["api_key_hint"] == "…1234"
    listed = client.get("/api/v1/llm-connections").json()["results"]
    assert "sk-very-secret" not in str(listed)
    created = client.post(
        "/api/v1/evaluators",
        {
            "name": "helpful",
            "template": "helpfulness",
            "connection": conn["id"],
            "sampling_rate": 0.25,
            "filters": {"environment": ["prod"]},
            "daily_budget_usd": 2.5,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    ev = created.json()
    assert (ev["kind"], ev["score_type"], ev["status"], ev["version"]) == (
        "llm_judge",
        "numeric",
        "active",
        1,
    )
    assert "{{response}}" in ev["prompt_template"]
    assert ev["instruction"]
    patched = client.patch(f"/api/v1/evaluators/{ev['id']}", {"model": "gpt-4o"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["version"] == 2
    paused = client.patch(f"/api/v1/evaluators/{ev['id']}", {"status": "paused"}, format="json")
    assert (paused.json()["status"], paused.json()["paused_reason"]) == (
        "paused",
        "paused by a user",
    )
    # The connection is in use.
    assert client.delete(f"/api/v1/llm-connections/{conn['id']}").status_code == 409
    assert client.delete(f"/api/v1/evaluators/{ev['id']}").status_code == 204
    assert client.delete(f"/api/v1/llm-connections/{conn['id']}").status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a\x00b", "kind": "python", "scorer": "language_mismatch"}, "name"),
        (
            {
                "name": "x",
                "template": "helpfulness",
                "instruction": "be \x00 fair",
                "connection": None,
            },
            "instruction",
        ),
        (
            {
                "name": "x",
                "kind": "python",
                "scorer": "language_mismatch",
                "filters": {"model": ["a\x00"]},
            },
            "filters",
        ),
        (
            {
                "name": "x",
                "kind": "python",
                "scorer": "language_mismatch",
                "filters": {"colour": ["red"]},
            },
            "filters",
        ),
        (
            {"name": "x", "kind": "python", "scorer": "language_mismatch", "sampling_rate": 2},
            "sampling_rate",
        ),
        (
            {
                "name": "x",
                "kind": "llm_judge",
                "prompt_template": "{{response}}",
                "instruction": "i",
            },
            "connection",
        ),
        ({"name": "x", "kind": "python", "scorer": "nope"}, "scorer"),
        ({"name": "x", "kind": "embedding", "scorer": "language_mismatch"}, "scorer"),
    ],
)
def test_invalid_evaluator_input_names_the_field(
    admin_key: str, body: dict[str, Any], field: str
) -> None:
    response = _client(admin_key).post("/api/v1/evaluators", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field


def test_bad_template_variable_and_categorical_labels(
    admin_key: str, project: Any, llm: FakeLLM, allow_private: None
) -> None:
    client = _client(admin_key)
    conn = _connection(client, llm)
    bad = client.post(
        "/api/v1/evaluators",
        {
            "name": "x",
            "connection": conn["id"],
            "kind": "llm_judge",
            "instruction": "i",
            "prompt_template": "{{answer}}",
        },
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["field"] == "prompt_template"
    assert "{{answer}}" in bad.json()["error"]
    cat = client.post(
        "/api/v1/evaluators",
        {
            "name": "x",
            "connection": conn["id"],
            "kind": "llm_judge",
            "instruction": "i",
            "prompt_template": "{{response}}",
            "score_type": "categorical",
            "labels": ["only"],
        },
        format="json",
    )
    assert cat.status_code == 400
    assert cat.json()["field"] == "labels"


def test_private_base_url_refused_by_default(admin_key: str, llm: FakeLLM) -> None:
    response = _client(admin_key).post(
        "/api/v1/llm-connections",
        {
            "name": "local",
            "provider": "openai",
            "base_url": llm.base_url,
            "api_key": "k" * 20,
            "default_model": "m",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["field"] == "base_url"
    assert "DRIFTLINE_LLM_ALLOW_PRIVATE" in response.json()["error"]


def test_scope_and_tenancy(
    read_key: str, admin_key: str, other_project: Any, llm: FakeLLM, allow_private: None
) -> None:
    assert _client(read_key).get("/api/v1/evaluators").status_code == 403
    other_conn = openai_connection(other_project, llm)
    other = services.evaluator_create(
        project=other_project, name="theirs", kind="python", scorer="language_mismatch"
    )
    client = _client(admin_key)
    assert client.get(f"/api/v1/evaluators/{other.pk}").status_code == 404
    assert (
        client.post(f"/api/v1/evaluators/{other.pk}/preview", {}, format="json").status_code == 404
    )
    assert client.delete(f"/api/v1/llm-connections/{other_conn.pk}").status_code == 404
    # Another tenant's connection cannot be attached.
    body = {"name": "x", "template": "helpfulness", "connection": other_conn.pk}
    assert client.post("/api/v1/evaluators", body, format="json").status_code == 404


def test_paused_evaluator_visible_and_scores_in_call_detail(
    admin_key: str,
    read_key: str,
    project: Any,
    llm: FakeLLM,
    allow_private: None,
    no_enqueue: list[int],
) -> None:
    client = _client(admin_key)
    conn = _connection(client, llm)
    ev_id = client.post(
        "/api/v1/evaluators",
        {"name": "helpful", "template": "helpfulness", "connection": conn["id"]},
        format="json",
    ).json()["id"]
    call, call2 = make_call(project), make_call(project)
    services.evaluations_select(project_id=project.pk, call_ids=[str(call.id), str(call2.id)])
    first, second = EvalJob.objects.filter(evaluator_id=ev_id).order_by("id")
    job_for = {first.call_id: first.pk, second.call_id: second.pk}
    llm.answer(openai_answer({"reason": "Clear <b>steps</b>.", "score": 0.75}))
    services.evaluation_run(job_id=job_for[call.id])
    detail = _client(read_key).get(f"/api/v1/calls/{call.id}").json()
    assert detail["scores"] == [
        {"evaluator": "helpful", "value": 0.75, "label": "", "reason": "Clear <b>steps</b>."}
    ]
    llm.answer(error_answer(401, "invalid x-api-key"))
    services.evaluation_run(job_id=job_for[call2.id])
    ev = client.get(f"/api/v1/evaluators/{ev_id}").json()
    assert ev["status"] == "paused"
    assert "401" in ev["paused_reason"]
    assert _client(read_key).get(f"/api/v1/calls/{call2.id}").json()["scores"] == []


def test_preview_and_backfill_api(
    admin_key: str,
    project: Any,
    llm: FakeLLM,
    allow_private: None,
    no_enqueue: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = _client(admin_key)
    conn = _connection(client, llm)
    ev_id = client.post(
        "/api/v1/evaluators",
        {"name": "helpful", "template": "helpfulness", "connection": conn["id"]},
        format="json",
    ).json()["id"]
    calls = [make_call(project, prompt=f"q{i}") for i in range(4)]
    llm.answer(openai_answer({"reason": "a", "score": 1.0}), openai_answer("garbage"))
    rows = client.post(f"/api/v1/evaluators/{ev_id}/preview", {"limit": 2}, format="json").json()[
        "results"
    ]
    assert len(rows) == 2
    assert rows[0]["value"] == 1.0
    assert rows[1]["error"].startswith("malformed")
    assert not Score.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        queued = client.post(f"/api/v1/evaluators/{ev_id}/backfill", {}, format="json")
    assert queued.status_code == 202
    assert queued.json() == {"queued": 4}
    assert len(no_enqueue) == 4
    again = client.post(f"/api/v1/evaluators/{ev_id}/backfill", {}, format="json")
    assert again.json() == {"queued": 0}
    assert {j.call_id for j in EvalJob.objects.filter(evaluator_id=ev_id)} == {c.id for c in calls}


def test_backfill_command_runs_inline_with_progress(
    project: Any, llm: FakeLLM, allow_private: None
) -> None:
    conn = openai_connection(project, llm)
    services.evaluator_create(
        project=project,
        name="helpful",
        template="helpfulness",
        connection=conn,
        daily_budget_usd=0.03,
    )
    for _ in range(5):
        make_call(project)
    for _ in range(5):
        llm.answer(
            openai_answer(
                {"reason": "ok", "score": 0.9}, prompt_tokens=100_000, completion_tokens=10_000
            )
        )
    out, err = StringIO(), StringIO()
    call_command(
        "evaluator_backfill",
        "--project",
        project.slug,
        "--evaluator",
        "helpful",
        stdout=out,
        stderr=err,
    )
    # $0.021 a call: the second reaches the $0.03 cap, the third is not sent.
    assert len(llm.requests) == 2
    assert "2 done" in out.getvalue()
    assert "daily budget reached" in err.getvalue()
    assert "helpful" in err.getvalue()  # tqdm's bar (on stderr)
    assert Evaluator.objects.get(name="helpful").status == "paused"
