"""Prompt registry, prompt/session/user/trace reads and their APIs, on real PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Project
from apps.accounts.services import api_key_create
from apps.ingest.services import ingest_events
from apps.traces.services import default_prompt_version


def call_event(minutes_ago: float, **body: Any) -> dict[str, Any]:
    start = timezone.now() - timedelta(minutes=minutes_ago)
    return {
        "type": "call",
        "id": body.pop("id", None) or str(uuid.uuid4()),
        "body": {"start_time": start.isoformat(), "prompt": "hello", **body},
    }


def ingest(project: Project, events: list[dict[str, Any]]) -> None:
    outcome = ingest_events(project=project, events=events)
    assert outcome.accepted == len(events), [r for r in outcome.results if r.status == "error"]


def auth(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.mark.django_db
def test_register_prompt_is_content_addressed(
    api_client: APIClient, project: Project, ingest_key: str, read_key: str
) -> None:
    template = "You are a support agent. Answer: {{question}}"
    first = api_client.post(
        "/api/v1/prompts", {"name": "support", "template": template}, format="json",
        **auth(ingest_key),
    )  # fmt: skip
    assert first.status_code == 201, first.content
    assert first.json()["version"] == default_prompt_version(template)
    again = api_client.post(
        "/api/v1/prompts", {"name": "support", "template": template, "version": "v9"},
        format="json", **auth(ingest_key),
    )  # fmt: skip
    assert again.status_code == 200
    assert again.json() == {"name": "support", "version": first.json()["version"], "created": False}
    named = api_client.post(
        "/api/v1/prompts", {"name": "support", "template": template + "!", "version": "v2"},
        format="json", **auth(ingest_key),
    )  # fmt: skip
    assert named.status_code == 201
    clash = api_client.post(
        "/api/v1/prompts", {"name": "support", "template": "other text", "version": "v2"},
        format="json", **auth(ingest_key),
    )  # fmt: skip
    assert clash.status_code == 409
    assert "registered with another template" in str(clash.json())
    bad = api_client.post(
        "/api/v1/prompts", {"name": "sup\x00port", "template": "x"}, format="json",
        **auth(ingest_key),
    )  # fmt: skip
    assert bad.status_code == 400
    detail = api_client.get("/api/v1/prompts/support", **auth(read_key)).json()
    versions = {v["version"]: v for v in detail["versions"]}
    assert set(versions) == {first.json()["version"], "v2"}
    assert versions["v2"]["template"] == template + "!"
    # A read key cannot register; an ingest key cannot read.
    assert (
        api_client.post(
            "/api/v1/prompts", {"name": "x", "template": "y"}, format="json", **auth(read_key)
        ).status_code
        == 403
    )


@pytest.mark.django_db
def test_prompt_versions_carry_their_metrics(
    api_client: APIClient, project: Project, read_key: str
) -> None:
    events = [
        call_event(i, prompt_name="rag", prompt_version="v1", cost_usd=0.01, latency_ms=100.0)
        for i in range(4)
    ] + [
        call_event(i, prompt_name="rag", prompt_version="v2", cost_usd=0.03, latency_ms=300.0,
                   status="error")
        for i in range(2)
    ] + [call_event(1)]  # fmt: skip
    ingest(project, events)
    listing = api_client.get("/api/v1/prompts", **auth(read_key)).json()["results"]
    assert [p["name"] for p in listing] == ["rag"]
    assert listing[0]["versions"] == 2
    assert listing[0]["metrics"]["calls"] == 6
    versions = {
        v["version"]: v["metrics"]
        for v in api_client.get("/api/v1/prompts/rag", **auth(read_key)).json()["versions"]
    }
    assert versions["v1"]["calls"] == 4
    assert versions["v1"]["cost_usd"] == pytest.approx(0.04)
    assert versions["v2"]["error_rate"] == 1.0
    assert versions["v1"]["latency_p50_ms"] == pytest.approx(100.0)
    calls = api_client.get(
        "/api/v1/calls", {"prompt_name": "rag", "prompt_version": "v2"}, **auth(read_key)
    ).json()["results"]
    assert len(calls) == 2
    assert calls[0]["prompt_version"] == "v2"
    assert api_client.get("/api/v1/prompts/nope", **auth(read_key)).status_code == 404


def _versions(project: Project, rates: dict[str, float], n: int, seed: int) -> None:
    rng = random.Random(seed)
    events = []
    for version, error_rate in rates.items():
        for _ in range(n):
            events.append(
                call_event(
                    rng.uniform(1, 600),
                    prompt_name="answer",
                    prompt_version=version,
                    status="error" if rng.random() < error_rate else "ok",
                    latency_ms=rng.lognormvariate(5, 0.3),
                )
            )
    ingest(project, events)


@pytest.mark.django_db
def test_compare_finds_a_regressed_prompt_version(
    api_client: APIClient, project: Project, read_key: str
) -> None:
    _versions(project, {"v1": 0.02, "v2": 0.15}, 400, seed=1)
    answer = api_client.get(
        "/api/v1/prompts/answer/compare", {"a": "v1", "b": "v2"}, **auth(read_key)
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["n_a"] == body["n_b"] == 400
    assert "error" in body["regressed"]
    assert body["headline"].startswith("v2 is worse than v1 on error")
    error = next(m for m in body["metrics"] if m["metric"] == "error")
    assert error["verdict"] == "worse"
    assert error["q_value"] < 0.01
    assert error["ci_low"] > 0  # the interval of b - a excludes no change


@pytest.mark.django_db
def test_compare_stays_quiet_on_a_null_run(
    api_client: APIClient, project: Project, read_key: str
) -> None:
    _versions(project, {"v1": 0.05, "v2": 0.05}, 400, seed=2)
    body = api_client.get(
        "/api/v1/compare",
        {"dimension": "prompt_version", "prompt": "answer", "a": "v1", "b": "v2"},
        **auth(read_key),
    ).json()
    assert body["regressed"] == []
    bad = api_client.get(
        "/api/v1/compare", {"dimension": "colour", "a": "x", "b": "y"}, **auth(read_key)
    )
    assert bad.status_code == 400
    assert "dimension" in str(bad.json())
    backwards = api_client.get(
        "/api/v1/compare",
        {
            "dimension": "release",
            "a": "v1",
            "b": "v2",
            "start": "2026-01-02T00:00:00Z",
            "end": "2026-01-01T00:00:00Z",
        },
        **auth(read_key),
    )
    assert backwards.status_code == 400
    assert "must be after start" in str(backwards.json())


def _conversation(project: Project, session: str, user: str, turns: int) -> list[str]:
    events, roots = [], []
    for t in range(turns):
        trace, root = uuid.uuid4().hex, str(uuid.uuid4())
        roots.append(root)
        minutes = 30 - t * 5
        events.append(
            call_event(minutes, id=root, trace_id=trace, session_id=session, user_id=user,
                       name="chat", kind="agent", prompt=f"turn {t}", response=f"answer {t}",
                       latency_ms=900.0)
        )  # fmt: skip
        tool = str(uuid.uuid4())
        events.append(
            call_event(minutes - 0.001, id=tool, trace_id=trace, parent_id=root,
                       session_id=session, name="search_docs", kind="tool", latency_ms=200.0)
        )  # fmt: skip
        events.append(
            call_event(minutes - 0.002, trace_id=trace, parent_id=tool, session_id=session,
                       user_id=user, name="llm", kind="llm", model="gpt-4o-mini",
                       cost_usd=0.002, latency_ms=150.0)
        )  # fmt: skip
    ingest(project, events)
    return roots


@pytest.mark.django_db
def test_sessions_users_and_traces(
    api_client: APIClient, project: Project, other_project: Project, read_key: str
) -> None:
    roots = _conversation(project, "sess-1", "user-a", 3)
    _conversation(project, "sess-2", "user-b", 1)
    sessions = api_client.get("/api/v1/sessions", **auth(read_key)).json()["results"]
    assert [s["session_id"] for s in sessions] == ["sess-1", "sess-2"]  # latest activity first
    s1 = next(s for s in sessions if s["session_id"] == "sess-1")
    assert s1["turns"] == 3
    assert s1["user_id"] == "user-a"
    assert s1["calls"] == 9
    detail = api_client.get("/api/v1/sessions/sess-1", **auth(read_key)).json()
    assert [t["id"] for t in detail["turns"]] == roots
    assert [(s["name"], s["depth"]) for s in detail["turns"][0]["spans"]] == [
        ("search_docs", 1),
        ("llm", 2),
    ]
    users = api_client.get("/api/v1/users", **auth(read_key)).json()["results"]
    assert users[0]["user_id"] == "user-a"
    assert users[0]["sessions"] == 1
    trace_id = detail["turns"][0]["trace_id"]
    trace = api_client.get(f"/api/v1/traces/{trace_id}", **auth(read_key)).json()
    assert [s["depth"] for s in trace["spans"]] == [0, 1, 2]
    assert trace["spans"][0]["offset_ms"] == 0
    edges = {(e["source"], e["target"]): e["calls"] for e in trace["graph"]["edges"]}
    assert edges == {("chat", "search_docs"): 1, ("search_docs", "llm"): 1}
    # Another tenant sees none of it.
    other_key = api_key_create(project=other_project, name="r", scopes=["read"]).raw
    assert api_client.get("/api/v1/sessions/sess-1", **auth(other_key)).status_code == 404
    assert api_client.get(f"/api/v1/traces/{trace_id}", **auth(other_key)).status_code == 404
    assert api_client.get("/api/v1/sessions", **auth(other_key)).json()["results"] == []


@pytest.mark.django_db
def test_timeline_of_a_large_trace(project: Project) -> None:
    from apps.traces.trace_selectors import trace_spans, trace_timeline

    trace, root = uuid.uuid4().hex, str(uuid.uuid4())
    events = [call_event(10, id=root, trace_id=trace, name="agent", kind="agent")]
    parent = root
    for i in range(999):
        span = str(uuid.uuid4())
        events.append(
            call_event(10 - (i + 1) / 1000, id=span, trace_id=trace, parent_id=parent,
                       name=f"step{i % 7}", kind="tool", latency_ms=5.0)
        )  # fmt: skip
        if i % 50 == 0:
            parent = span
    ingest(project, events)
    timeline = trace_timeline(trace_spans(project=project, trace_id=trace))
    assert len(timeline.rows) == 1000
    assert timeline.rows[0].call.name == "agent"
    assert timeline.rows[0].depth == 0
    assert max(r.depth for r in timeline.rows) == 21
    assert all(0 <= r.left_pct <= 100 for r in timeline.rows)
