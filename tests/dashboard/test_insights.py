"""Cost insight (page and ``GET /api/v1/insights/cost``): per intent and model, cache savings,
a cheaper model that is not worse, project-scoped."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.traces.models import Call, Feedback

PASSWORD = "correct horse battery staple"


def auth(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _seed(project: Any, *, n: int = 80) -> None:
    """Weather questions on an expensive and a cheap model with the same ~10% negative rate;
    jokes on the cheap model are clearly worse (40%); one prompt repeated five times."""
    rng = random.Random(7)
    now = timezone.now()
    calls, feedback = [], []

    def add(intent: str, model: str, cost: float, negative_rate: float, prompt: str) -> None:
        call = Call(
            project=project,
            id=uuid.uuid4(),
            start_time=now - timedelta(minutes=rng.randint(1, 600)),
            model=model,
            prompt=prompt,
            cost_usd=cost,
            latency_ms=500.0,
            metadata={"intent": intent},
            trace_id=uuid.uuid4().hex,
        )
        calls.append(call)
        feedback.append(
            Feedback(
                project=project,
                call_id=call.id,
                score=0.0 if rng.random() < negative_rate else 1.0,
                source="end_user",
            )
        )

    for i in range(n):
        add("weather", "big-model", 0.01, 0.10, f"weather in town {i}?")
        add("weather", "small-model", 0.001, 0.10, f"forecast for city {i}?")
        add("jokes", "big-model", 0.01, 0.05, f"tell me joke {i}")
        add("jokes", "small-model", 0.001, 0.40, f"a joke about {i}")
    for _ in range(5):
        add("weather", "big-model", 0.02, 0.0, "  What is the WEATHER in Paris?  ")
    Call.objects.bulk_create(calls)
    Feedback.objects.bulk_create(feedback)


@pytest.mark.django_db
def test_cost_insights_api(
    project: Any, other_project: Any, read_key: str, api_client: APIClient
) -> None:
    _seed(project, n=200)
    _seed(other_project, n=5)
    body = api_client.get("/api/v1/insights/cost", {"margin": 0.1}, **auth(read_key)).json()
    assert body["calls"] == 4 * 200 + 5  # this project's calls only
    segments = {(s["intent"], s["model"]): s for s in body["segments"]}
    assert segments[("weather", "big-model")]["calls"] == 205
    assert segments[("jokes", "small-model")]["cost_per_call"] == pytest.approx(0.001)
    # The repeated prompt: four of five calls a cache would have served.
    top = body["cache"]["groups"][0]
    assert top["count"] == 5
    assert top["avoidable_cost"] == pytest.approx(0.08)
    assert body["cache"]["saving_usd"] == pytest.approx(0.08)
    # Weather can move to the cheaper model; jokes cannot (clearly worse there).
    routing = {(r["intent"], r["current_model"]): r for r in body["routing"]["suggestions"]}
    assert ("weather", "big-model") in routing
    assert ("jokes", "big-model") not in routing
    weather = routing[("weather", "big-model")]
    assert weather["cheaper_model"] == "small-model"
    assert weather["ci_high"] < weather["margin"] == 0.1
    assert weather["monthly_saving_estimate"] > 0
    assert body["routing"]["saving_usd"] == pytest.approx(weather["monthly_saving_estimate"])


@pytest.mark.django_db
def test_cost_insights_api_validates_the_window(
    project: Any, read_key: str, api_client: APIClient
) -> None:
    now = timezone.now()
    bad = api_client.get(
        "/api/v1/insights/cost",
        {"start": now.isoformat(), "end": (now - timedelta(hours=1)).isoformat()},
        **auth(read_key),
    )
    assert bad.status_code == 400
    assert "end" in str(bad.json())
    assert api_client.get("/api/v1/insights/cost").status_code in (401, 403)


@pytest.mark.django_db
def test_cost_insights_in_the_openapi_schema(api_client: APIClient) -> None:
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    op = schema["paths"]["/api/v1/insights/cost"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"start", "end"}
    assert "CostInsights" in schema["components"]["schemas"]


@pytest.mark.django_db
def test_cost_insight_page_escapes_prompts(project: Any, alice: Any) -> None:
    _seed(project, n=40)
    for _ in range(2):
        Call.objects.create(
            project=project,
            id=uuid.uuid4(),
            start_time=timezone.now() - timedelta(minutes=3),
            model="<b>m</b>",
            prompt="<script>alert(1)</script>",
            cost_usd=0.5,
            trace_id="t",
        )
    client = Client()
    assert client.login(username=alice.username, password=PASSWORD)
    html = client.get("/insights/").content.decode()
    assert "Cost insight" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>m</b>" not in html
    assert 'href="/insights/"' in html  # in the sidebar
