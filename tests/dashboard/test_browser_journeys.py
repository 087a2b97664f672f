"""Journeys of issue 20 in a real browser: a semantic search that finds an exact duplicate at
1.00 under filters (other tenants' vectors crowding its neighbourhood), and an on-call engineer
muting an incident and opening the calls of its breached window. Screenshots go to
``test-artifacts/screenshots/journey-*.png``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.embeddings.providers import get_provider
from apps.embeddings.services import call_embeddings_create
from tests.dashboard.factories import make_call, make_incident, make_rule
from tests.dashboard.test_browser import Session, browser, session  # noqa: F401
from tests.embeddings.test_filtered_search import DUPLICATE, _crowd

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_semantic_search_finds_the_exact_duplicate_under_filters(
    session: Session,  # noqa: F811 - the fixture imported above
    alice: Any,
    project: Any,
) -> None:
    provider = get_provider()
    _crowd(provider)
    now = timezone.now()
    wanted = make_call(
        project, prompt=DUPLICATE, model="gpt-4o", release="v2", ago=timedelta(hours=1)
    )
    calls = [
        wanted,
        make_call(
            project, prompt=DUPLICATE, model="claude-3", release="v2", ago=timedelta(hours=2)
        ),
        make_call(project, prompt="weather in Lyon tomorrow", model="gpt-4o", release="v2"),
        make_call(project, prompt="book a table for 4 tonight", model="gpt-4o", release="v2"),
    ]
    call_embeddings_create(
        project_id=project.id,
        call_ids=[str(c.id) for c in calls],
        provider=provider,
        score_injection=False,
    )
    assert now  # the calls are in the last day
    session.login("alice")
    session.goto("/calls/")
    session.page.fill("input[name=semantic]", DUPLICATE)
    session.page.select_option("select[name=model]", "gpt-4o")
    session.page.select_option("select[name=range]", "24h")
    with session.page.expect_navigation():
        session.page.click("button:has-text('Search')")
    session.page.wait_for_load_state("networkidle")
    session.shot("journey-semantic-duplicate")
    rows = session.page.locator("table.table tbody tr")
    first = rows.nth(0)
    assert first.locator(".sim").inner_text() == "1.00"
    assert DUPLICATE in first.inner_text()
    assert "gpt-4o" in first.inner_text()
    # The claude-3 copy is filtered out, not merely ranked lower.
    assert "claude-3" not in session.page.locator("table.table").inner_text()
    assert f"/calls/{wanted.id}/" in first.locator("a").first.get_attribute("href")
    assert not session.problems


def test_an_incident_is_muted_and_its_calls_opened(
    session: Session,  # noqa: F811 - the fixture imported above
    alice: Any,
    project: Any,
) -> None:

    rule = make_rule(project)
    now = timezone.now()
    incident = make_incident(
        project,
        rule,
        value=0.5,
        sample_count=4,
        summary="Error rate is 50.0% over the last 10 min for model gpt-4o.",
        last_evaluated_at=now,
        fired_at=now - timedelta(minutes=2),
    )
    failing = make_call(
        project, model="gpt-4o", status="error", prompt="refund my order", ago=timedelta(minutes=4)
    )
    make_call(project, model="gpt-4o", status="ok", ago=timedelta(minutes=4))
    make_call(project, model="gpt-4o", status="error", ago=timedelta(hours=5))  # not the window
    session.login("alice")
    session.goto("/alerts/")
    # The sidebar counts the open incident on every page.
    assert (
        session.page.locator(".nav-link:has-text('Alerts') .nav-count")
        .inner_text()
        .replace(",", "")
        .split()[0]
        == "1"
    )
    with session.page.expect_navigation():
        session.page.click("text=Error rate is 50.0%")
    session.page.select_option("select[name=duration]", "4h")
    with session.page.expect_navigation():
        session.page.click("button:has-text('Mute')")
    assert "muted until" in session.page.locator("h1").inner_text()
    session.shot("journey-incident-muted")
    incident.refresh_from_db()
    assert incident.muted_until is not None
    assert incident.muted_until - now > timedelta(hours=3, minutes=50)
    with session.page.expect_navigation():
        session.page.click("#incident-calls")
    session.page.wait_for_load_state("networkidle")
    session.shot("journey-incident-calls")
    table = session.page.locator("table.table")
    assert "refund my order" in table.inner_text()
    assert f"/calls/{failing.id}/" in table.inner_html()
    assert len(table.locator("tbody tr").all()) == 1
    assert "Window:" in session.page.locator(".window-note").inner_text()
    assert not session.problems
