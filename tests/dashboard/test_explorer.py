"""The calls explorer: sorting with stable keyset pages, range filters, filters in links, saved
views (per person, per project)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from apps.dashboard.models import SavedView
from apps.dashboard.selectors.calls import call_query_from_params, explorer_page
from apps.traces.models import Call
from tests.dashboard.factories import make_call

PASSWORD = "correct horse battery staple"


def login(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _bulk(project: Any, rows: list[dict[str, Any]]) -> list[Call]:
    now = timezone.now()
    calls = [
        Call(
            project=project,
            id=uuid.uuid4(),
            start_time=now - timedelta(minutes=1 + i),
            model="m",
            prompt=f"prompt {i}",
            trace_id=uuid.uuid4().hex,
            **row,
        )
        for i, row in enumerate(rows)
    ]
    return Call.objects.bulk_create(calls)


def _walk(project: Any, params: dict[str, Any], *, limit: int) -> list[Call]:
    query = call_query_from_params(params)
    seen: list[Call] = []
    cursor = None
    while True:
        page, cursor = explorer_page(project=project, query=query, limit=limit, cursor=cursor)
        seen += page
        if not cursor:
            return seen


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["-latency", "latency", "-cost", "cost", "-tokens", "time"])
def test_sorted_pages_cover_every_call_once_in_order(project: Any, sort: str) -> None:
    # Many ties (5 distinct values) and NULLs: a page boundary falls inside both.
    rows = [
        {
            "latency_ms": None if i % 7 == 0 else float(100 * (i % 5)),
            "cost_usd": None if i % 6 == 0 else 0.001 * (i % 4),
            "total_tokens": None if i % 9 == 0 else 10 * (i % 3),
        }
        for i in range(53)
    ]
    made = _bulk(project, rows)
    seen = _walk(project, {"sort": sort}, limit=7)
    assert len(seen) == len(made)
    assert len({c.id for c in seen}) == len(made)
    column = {"latency": "latency_ms", "cost": "cost_usd", "tokens": "total_tokens"}.get(
        sort.lstrip("-"), "start_time"
    )
    values = [getattr(c, column) for c in seen]
    present = [v for v in values if v is not None]
    # NULLs last in both directions, the rest monotone.
    assert values[: len(present)] == present
    assert present == sorted(present, reverse=sort.startswith("-"))


@pytest.mark.django_db
def test_range_filters_are_inclusive_and_combine(project: Any) -> None:
    _bulk(
        project,
        [
            {"latency_ms": 100.0, "cost_usd": 0.01, "total_tokens": 10},
            {"latency_ms": 2000.0, "cost_usd": 0.02, "total_tokens": 500},
            {"latency_ms": 3000.0, "cost_usd": 0.5, "total_tokens": 900},
            {"latency_ms": None, "cost_usd": None, "total_tokens": None},
        ],
    )
    got = _walk(project, {"latency_min": 2000, "latency_max": 3000}, limit=50)
    assert sorted(c.latency_ms for c in got) == [2000.0, 3000.0]
    got = _walk(project, {"latency_min": 1000, "cost_max": 0.1, "tokens_min": 400}, limit=50)
    assert [c.latency_ms for c in got] == [2000.0]


@pytest.mark.django_db
def test_calls_page_sorts_and_links_keep_the_filters(project: Any, alice: Any) -> None:
    for latency in (300.0, 5000.0, 1200.0):
        make_call(project, latency_ms=latency, model="gpt-4o")
    make_call(project, latency_ms=9000.0, model="other")
    client = login(alice)
    page = client.get("/calls/", {"sort": "-latency", "model": "gpt-4o", "latency_min": "500"})
    assert page.status_code == 200
    html = page.content.decode()
    latencies = re.findall(r'data-latency="([0-9.]+)"', html)
    assert [float(v) for v in latencies] == [5000.0, 1200.0]
    # The header of the active sort says so, and flips the direction.
    assert re.search(r'aria-sort="descending"><a class="sort-link" href="\?[^"]*sort=latency', html)
    # Every call link carries the list's filters back (and nothing else).
    links = re.findall(r'href="/calls/([0-9a-f-]{36})/\?back=([^"]+)"', html)
    assert len(links) == 2
    detail = client.get(f"/calls/{links[0][0]}/", {"back": unquote(links[0][1])}).content.decode()
    target = re.search(r'href="(/calls/\?[^"]*)" data-back-to-calls', detail)
    assert target is not None
    params = parse_qs(urlsplit(target.group(1).replace("&amp;", "&")).query)
    assert params == {"sort": ["-latency"], "model": ["gpt-4o"], "latency_min": ["500"]}


@pytest.mark.django_db
def test_a_bad_range_is_a_form_error_and_the_other_filters_still_apply(
    project: Any, alice: Any
) -> None:
    make_call(project, latency_ms=100.0, model="gpt-4o")
    make_call(project, latency_ms=200.0, model="other")
    client = login(alice)
    html = client.get(
        "/calls/", {"model": "gpt-4o", "latency_min": "abc", "cost_min": "5", "cost_max": "1"}
    ).content.decode()
    assert 'role="alert"' in html
    assert "Latency from (ms): Enter a number." in html
    assert "Cost to ($): must be at least the lower bound" in html
    assert 'value="abc"' in html  # the typed value stays in its box
    assert [float(v) for v in re.findall(r'data-latency="([0-9.]+)"', html)] == [100.0]


@pytest.mark.django_db
def test_a_cursor_of_another_sort_starts_over(project: Any, alice: Any) -> None:
    _bulk(project, [{"latency_ms": float(i)} for i in range(60)])
    client = login(alice)
    first = client.get("/calls/", {"sort": "-latency"}).content.decode()
    cursor = re.search(r"cursor=([^\"&]+)", first)
    assert cursor is not None
    other = client.get("/calls/", {"sort": "cost", "cursor": cursor.group(1)})
    assert other.status_code == 200
    assert "cursor: invalid" in other.content.decode()


@pytest.mark.django_db
def test_saved_views_are_per_person_and_project(
    project: Any, other_project: Any, alice: Any, bob: Any
) -> None:
    make_call(project)
    client = login(alice)
    response = client.post(
        "/calls/views/",
        {"name": "slow ones", "query": "sort=-latency&latency_min=1000&cursor=x&evil=1"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/calls/?sort=-latency&latency_min=1000"
    view = SavedView.objects.get(project=project)
    assert view.query == "sort=-latency&latency_min=1000"
    html = client.get("/calls/").content.decode()
    assert 'data-saved-view="slow ones"' in html
    # Saving under the same name replaces the query.
    client.post("/calls/views/", {"name": "slow ones", "query": "sort=-cost"})
    assert SavedView.objects.get(project=project).query == "sort=-cost"
    # Bob (same project) sees none of Alice's views and cannot delete them.
    bob_client = login(bob)
    assert 'data-saved-view="slow ones"' not in bob_client.get("/calls/").content.decode()
    bob_client.post(f"/calls/views/{view.id}/delete/")
    assert SavedView.objects.filter(id=view.id).exists()
    client.post(f"/calls/views/{view.id}/delete/")
    assert not SavedView.objects.filter(id=view.id).exists()


@pytest.mark.django_db
def test_hostile_saved_view_names_are_escaped(project: Any, alice: Any) -> None:
    make_call(project)
    client = login(alice)
    client.post("/calls/views/", {"name": "<img src=x onerror=alert(1)>", "query": ""})
    html = client.get("/calls/").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.django_db
def test_overview_kpis_open_the_calls_behind_them(project: Any, alice: Any) -> None:
    for latency in (100.0, 200.0, 300.0, 7000.0):
        make_call(project, latency_ms=latency, model="gpt-4o")
    # A chain span around them is slower still, but the overview does not count spans.
    make_call(project, latency_ms=9000.0, model="gpt-4o", kind="chain")
    client = login(alice)
    html = client.get("/", {"range": "24h", "model": "gpt-4o"}).content.decode()
    link = re.search(r'href="(/calls/\?[^"]+)" data-kpi-link="p99"', html)
    assert link is not None
    url = link.group(1).replace("&amp;", "&")
    params = parse_qs(urlsplit(url).query)
    assert params["sort"] == ["-latency"]
    assert params["model"] == ["gpt-4o"]
    assert params["kind"] == ["metrics"]
    calls_html = client.get(url).content.decode()
    assert "Not applied" not in calls_html
    latencies = [float(v) for v in re.findall(r'data-latency="([0-9.]+)"', calls_html)]
    assert latencies
    assert latencies[0] == 7000.0
    errors = re.search(r'href="(/calls/\?[^"]+)" data-kpi-link="errors"', html)
    assert errors is not None
    assert "status=error" in errors.group(1)


@pytest.mark.django_db
def test_chart_points_carry_the_calls_of_their_bucket(project: Any, alice: Any) -> None:
    make_call(project, latency_ms=1500.0)
    client = login(alice)
    response = client.get("/", {"range": "24h"})
    latency = response.context["charts"]["latency"]
    p99 = next(t for t in latency["data"] if t["name"] == "p99")
    queries = [q for q, y in zip(p99["customdata"], p99["y"], strict=True) if y is not None]
    assert len(queries) == 1
    params = parse_qs(queries[0])
    start = timezone.datetime.fromisoformat(params["start"][0])
    end = timezone.datetime.fromisoformat(params["end"][0])
    assert end - start == timedelta(minutes=30)
    assert params["sort"] == ["-latency"]
    assert float(params["latency_min"][0]) <= 1500.0
    page = client.get("/calls/?" + queries[0]).content.decode()
    assert [float(v) for v in re.findall(r'data-latency="([0-9.]+)"', page)] == [1500.0]


def test_one_cost_spike_is_clipped_and_marked() -> None:
    from apps.dashboard.charts import cost_outliers

    values = [0.1, 0.12, 0.09, 0.11, 0.1, 40.0, 0.13, 0.0]
    out, top = cost_outliers(values)
    assert out == {5}
    assert 0.13 < top < 1.0
    assert cost_outliers([0.1, 0.2, 0.3, 0.4, 0.5]) == (set(), 0.0)  # a trend is not a spike


@pytest.mark.django_db
def test_overview_percentiles_match_percentile_cont(project: Any, alice: Any) -> None:
    """The p50/p95/p99 cards (rollup histograms) against PostgreSQL's percentile_cont over the
    same calls: within the sketch's 2%, and distinct when the latencies are."""
    import random

    from django.db import connection

    from apps.traces.rollups import rollup_add_calls, rollup_flush

    rng = random.Random(3)
    rows = [{"latency_ms": round(rng.lognormvariate(7.0, 0.6), 1)} for _ in range(400)]
    made = _bulk(project, rows)
    rollup_add_calls(project_id=project.pk, call_ids=[c.id for c in made])
    rollup_flush(project_id=project.pk, wait=True)
    response = login(alice).get("/", {"range": "24h"})
    current = response.context["current"].calls
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM traces_call WHERE project_id = %s",
            [project.pk],
        )
        exact = cursor.fetchone()[0]
    for got, want in zip((current.p50_ms, current.p95_ms, current.p99_ms), exact, strict=True):
        assert got == pytest.approx(want, rel=0.02)
    assert current.p50_ms < current.p95_ms < current.p99_ms
    assert "of 400 LLM calls" in response.content.decode()


@pytest.mark.django_db
def test_semantic_search_keeps_the_ranges_kinds_and_a_call_set(project: Any, alice: Any) -> None:
    """Meaning search under the explorer's own filters: a latency range and the kind narrow it
    (as a call set), the order stays nearest first; a drift group's ids narrow it too."""
    from apps.embeddings.providers import get_provider
    from apps.embeddings.selectors import calls_search
    from apps.embeddings.services import call_embeddings_create

    provider = get_provider()
    refund = "I want a refund for my broken headphones"
    slow = make_call(project, prompt=refund, latency_ms=4000.0)
    fast = make_call(project, prompt=refund + " please", latency_ms=100.0)
    tool = make_call(project, prompt=refund + " now", latency_ms=4200.0, kind="tool")
    other = make_call(project, prompt="weather in Lyon tomorrow", latency_ms=5000.0)
    calls = [slow, fast, tool, other]
    call_embeddings_create(
        project_id=project.id,
        call_ids=[str(c.id) for c in calls],
        provider=provider,
        score_injection=False,
    )
    body = (
        login(alice)
        .get("/calls/", {"semantic": "refund my headphones", "latency_min": "1000", "kind": "llm"})
        .content.decode()
    )
    listed = re.findall(r"/calls/([0-9a-f-]{36})/", body)
    assert str(slow.id) in listed
    assert str(other.id) in listed  # inside the range; ranked after the refund
    assert listed.index(str(slow.id)) < listed.index(str(other.id))
    assert str(fast.id) not in listed  # below the latency range
    assert str(tool.id) not in listed  # another kind

    # A call set (what ``?drift_group=`` resolves to) narrows the search alone, too.
    query = call_query_from_params({"range": "24h"})
    from dataclasses import replace

    only = replace(query.filters, call_ids=[fast.id, other.id])
    hits = calls_search(project=project, query=refund, k=10, filters=only)
    assert [h.call_id for h in hits] == [fast.id, other.id]
