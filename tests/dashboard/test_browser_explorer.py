"""The explorer journeys of issue 20 in a real browser: the slowest call in two clicks from the
overview (p99 card -> calls slowest first -> first row), a chart point opening its bucket's
calls, a sorted and range-filtered list that survives a reload and a trip to a call and the
review queue, and a saved view. Screenshots: ``test-artifacts/screenshots/explorer-*.png``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.dashboard.factories import make_call
from tests.dashboard.test_browser import Session, browser, session  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _traffic(project: Any) -> Any:
    """Calls over the last day; the slowest LLM call has a recognisable prompt, a chain span
    around another is slower still (the overview does not count spans), one call costs a lot."""
    for i in range(24):
        make_call(
            project,
            ago=timedelta(minutes=20 + 55 * i),
            latency_ms=300.0 + 97 * (i % 9),
            cost_usd=0.002 + 0.0005 * (i % 4),
            model="gpt-4o" if i % 2 else "claude-3",
            prompt=f"<b>question</b> number {i}",
        )
    make_call(project, ago=timedelta(hours=3), latency_ms=300.0, cost_usd=4.0, prompt="batch job")
    make_call(project, ago=timedelta(hours=2), latency_ms=12000.0, kind="chain", prompt="chain")
    return make_call(
        project, ago=timedelta(hours=5), latency_ms=8700.0, prompt="the slowest <i>one</i>"
    )


def _params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_the_slowest_call_in_two_clicks_from_the_overview(
    session: Session,  # noqa: F811 - the fixture imported above
    alice: Any,
    project: Any,
) -> None:
    slowest = _traffic(project)
    session.login("alice")
    session.goto("/?range=24h")
    session.shot("explorer-overview")
    with session.page.expect_navigation():
        session.page.click("[data-kpi-link=p99]")  # click 1
    session.page.wait_for_load_state("networkidle")
    params = _params(session.page.url)
    assert params["sort"] == ["-latency"]
    session.shot("explorer-calls-slowest-first")
    first = session.page.locator("table.calls-table tbody tr").first
    assert "the slowest <i>one</i>" in first.inner_text()  # escaped text, not markup
    header = session.page.locator("th[aria-sort=descending]")
    assert "latency" in header.inner_text().lower()
    with session.page.expect_navigation():
        first.locator("td.prompt-cell a").click()  # click 2
    session.page.wait_for_load_state("networkidle")
    assert f"/calls/{slowest.id}/" in session.page.url
    session.shot("explorer-slowest-call")
    assert not session.problems


def test_a_latency_point_opens_its_buckets_calls(
    session: Session,  # noqa: F811
    alice: Any,
    project: Any,
) -> None:
    _traffic(project)
    session.login("alice")
    session.goto("/?range=24h")
    # The cost card is not flattened by the $4 batch job: the axis is clipped and it is marked.
    cost_text = session.page.locator("[data-chart=chart-cost]").inner_text()
    assert "$4.00 ↑" in cost_text
    assert "log" in cost_text
    point = session.page.locator("[data-chart=chart-latency] .scatterlayer .trace path.point")
    assert point.count() > 0
    session.page.locator("[data-chart=chart-latency]").scroll_into_view_if_needed()
    box = point.last.bounding_box()
    assert box is not None
    session.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    with session.page.expect_navigation():
        session.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    session.page.wait_for_load_state("networkidle")
    params = _params(session.page.url)
    assert urlsplit(session.page.url).path == "/calls/"
    assert set(params) >= {"start", "end", "sort", "kind"}
    assert session.page.locator("table.calls-table tbody tr td.prompt-cell").count() >= 1
    session.shot("explorer-chart-point-calls")
    assert not session.problems


def test_a_sorted_filtered_list_survives_reload_a_call_and_review(
    session: Session,  # noqa: F811
    alice: Any,
    project: Any,
) -> None:
    _traffic(project)
    session.login("alice")
    session.goto("/calls/")
    session.page.select_option("select[name=sort]", "-cost")
    session.page.fill("input[name=latency_min]", "500")
    session.page.fill("input[name=latency_max]", "900")
    with session.page.expect_navigation():
        session.page.click("button:has-text('Search')")
    session.page.wait_for_load_state("networkidle")

    def costs() -> list[str]:
        return session.page.locator("table.calls-table tbody td:nth-child(6)").all_inner_texts()

    def latencies() -> list[float]:
        cells = session.page.locator("table.calls-table tbody td[data-latency]")
        return [float(v) for v in cells.evaluate_all("els => els.map(e => e.dataset.latency)")]

    before = costs()
    assert before
    assert all(500 <= v <= 900 for v in latencies())
    session.shot("explorer-sorted-filtered")
    session.page.reload()
    session.page.wait_for_load_state("networkidle")
    assert costs() == before
    assert session.page.input_value("input[name=latency_min]") == "500"
    # To a call and back by its "← Calls" link.
    with session.page.expect_navigation():
        session.page.locator("table.calls-table tbody td.prompt-cell a").first.click()
    with session.page.expect_navigation():
        session.page.click("[data-back-to-calls]")
    session.page.wait_for_load_state("networkidle")
    assert costs() == before
    assert _params(session.page.url)["sort"] == ["-cost"]
    # To a call, its review queue, and back by the queue's "← Calls" link.
    with session.page.expect_navigation():
        session.page.locator("table.calls-table tbody td.prompt-cell a").first.click()
    with session.page.expect_navigation():
        session.page.click("[data-open-review]")
    assert "/review/" in session.page.url
    with session.page.expect_navigation():
        session.page.click("[data-back-to-calls]")
    session.page.wait_for_load_state("networkidle")
    assert costs() == before
    # A bad bound is a visible error; the other filters stay.
    session.goto("/calls/?sort=-cost&latency_min=500&latency_max=900&cost_min=3&cost_max=1")
    assert "must be at least the lower bound" in session.page.locator("[role=alert]").inner_text()
    assert costs() == before
    session.shot("explorer-range-error")
    # Saved: a named view brings the list back from a bare /calls/.
    session.goto("/calls/?sort=-cost&latency_min=500&latency_max=900")
    session.page.fill("#saved-view-name", "mid-latency by cost")
    with session.page.expect_navigation():
        session.page.click("button:has-text('Save view')")
    session.goto("/calls/")
    with session.page.expect_navigation():
        session.page.click("[data-saved-view='mid-latency by cost']")
    session.page.wait_for_load_state("networkidle")
    assert costs() == before
    session.shot("explorer-saved-view")
    assert not session.problems


def test_the_cost_insight_page(
    session: Session,  # noqa: F811
    alice: Any,
    project: Any,
) -> None:
    for _ in range(3):
        make_call(project, prompt="What is my balance?", cost_usd=0.01, model="gpt-4o")
    session.login("alice")
    session.goto("/")
    with session.page.expect_navigation():
        session.page.click("nav.nav a:has-text('Cost')")
    session.page.wait_for_load_state("networkidle")
    assert "Cost insight" in session.page.locator("h1").inner_text()
    rows = session.page.locator("[data-table=duplicates] tbody tr")
    assert "What is my balance?" in rows.first.inner_text()
    assert "$0.02" in rows.first.inner_text()
    session.shot("explorer-insights")
    assert not session.problems
