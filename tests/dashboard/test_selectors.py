"""The overview aggregates against hand-computed figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.dashboard import charts
from apps.dashboard.selectors.calls import trace_tree
from apps.dashboard.selectors.overview import overview_kpis
from apps.traces.metrics import (
    OverviewFilters,
    overview_call_series,
    overview_feedback_series,
    overview_totals,
    time_window,
)
from tests.dashboard.factories import make_call, make_feedback


@pytest.mark.django_db
def test_series_totals_and_previous_period(project, other_project) -> None:
    now = timezone.now()
    window = time_window("1h", now=now)
    for latency in (100.0, 200.0, 300.0, 400.0):
        make_call(project, start_time=now - timedelta(minutes=5), latency_ms=latency, cost_usd=0.5)
    make_call(
        project,
        start_time=now - timedelta(minutes=5),
        status="error",
        latency_ms=None,
        flagged=True,
        processed_at=now,
    )
    # The previous hour: 2 calls; another tenant's calls never count.
    prev = [make_call(project, start_time=window.start - timedelta(minutes=10)) for _ in range(2)]
    make_call(other_project, start_time=now - timedelta(minutes=5))
    make_call(project, start_time=now - timedelta(minutes=5), model="other", release="v2")

    filters = OverviewFilters(model="gpt-4o-mini")
    series = overview_call_series(project=project, window=window, filters=filters)
    assert len(series) == 30
    assert sum(b.calls for b in series) == 5
    bucket = next(b for b in series if b.calls)
    assert bucket.errors == 1
    assert bucket.p50_ms == pytest.approx(250.0)
    assert bucket.cost_usd == pytest.approx(2.0001)
    assert bucket.rate("flagged") == 1.0  # of the processed calls

    make_feedback(project, prev[0], score=0.0, created_at=now - timedelta(minutes=3))
    make_feedback(
        project, prev[1], score=1.0, source="reviewer", created_at=now - timedelta(minutes=3)
    )
    fb = overview_feedback_series(project=project, window=window, filters=OverviewFilters())
    hit = next(b for b in fb if b.total)
    assert (hit.end_user_score, hit.reviewer_score, hit.negative) == (0.0, 1.0, 1)

    current, previous = overview_totals(project=project, window=window, filters=filters)
    assert (current.calls.calls, previous.calls.calls) == (5, 2)
    calls_kpi = overview_kpis(current, previous)[0]
    assert calls_kpi.delta == pytest.approx(1.5)
    assert current.feedback_count == 2

    # Figures serialize, with every bucket on the x axis.
    figure = charts.volume_chart(series)
    assert len(figure["data"][0]["x"]) == 30


def test_chart_text_is_escaped() -> None:
    figure = charts.intent_map_chart(
        points=[(0.0, 1.0, "<b>x</b>", False, "<img src=x onerror=alert(1)>")]
    )
    dumped = str(figure)
    assert "<img" not in dumped
    assert "<b>x</b>" not in dumped
    assert "&lt;img src=x onerror=alert(1)&gt;" in dumped


@pytest.mark.django_db
def test_trace_tree_orders_depth_first(project) -> None:
    root = make_call(project, name="root", trace_id="t1", ago=timedelta(seconds=10))
    child = make_call(
        project, name="child", trace_id="t1", parent_id=root.id, ago=timedelta(seconds=9)
    )
    make_call(
        project, name="grandchild", trace_id="t1", parent_id=child.id, ago=timedelta(seconds=8)
    )
    make_call(project, name="sibling", trace_id="t1", parent_id=root.id, ago=timedelta(seconds=7))
    from apps.traces.selectors import trace_calls

    nodes = trace_tree(trace_calls(project=project, trace_id="t1"))
    assert [(n.call.name, n.depth) for n in nodes] == [
        ("root", 0),
        ("child", 1),
        ("grandchild", 2),
        ("sibling", 1),
    ]
