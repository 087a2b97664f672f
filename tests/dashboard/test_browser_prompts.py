"""Prompts, compare, sessions, users, agents and the trace timeline in a real browser, with
hostile text everywhere it can go. Screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.ingest.services import ingest_events
from apps.traces.services import prompt_register
from tests.dashboard.test_browser import XSS, Session, browser, session  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _event(minutes_ago: float, **body: Any) -> dict[str, Any]:
    start = timezone.now() - timedelta(minutes=minutes_ago)
    return {
        "type": "call",
        "id": body.pop("id", None) or str(uuid.uuid4()),
        "body": {"start_time": start.isoformat(), **body},
    }


def _traffic(project: Any) -> str:
    """Two prompt versions (v2 errs more), a three-turn session with tools, hostile text."""
    rng = random.Random(5)
    prompt_register(
        project=project, name="support", template="Be brief.\n{{question}}", version="v1"
    )
    prompt_register(
        project=project, name="support", template=f"Be brief and kind.\n{XSS}\n{{{{question}}}}",
        version="v2",
    )  # fmt: skip
    events = []
    for version, error_rate in (("v1", 0.02), ("v2", 0.2)):
        for _ in range(250):
            events.append(
                _event(rng.uniform(5, 600), prompt_name="support", prompt_version=version,
                       release="2.4" if version == "v1" else "2.5", model="gpt-4o-mini",
                       prompt="where is my order?", response="It shipped.",
                       status="error" if rng.random() < error_rate else "ok",
                       latency_ms=rng.lognormvariate(6, 0.3), cost_usd=0.001)
            )  # fmt: skip
    session_id = "conv-<b>1</b>"
    first_root = ""
    for turn in range(3):
        trace, root = uuid.uuid4().hex, str(uuid.uuid4())
        first_root = first_root or root
        base = 40 - 5 * turn
        events.append(
            _event(base, id=root, trace_id=trace, session_id=session_id, user_id=XSS,
                   name="agent", kind="agent", prompt=f"{XSS} turn {turn}",
                   response=f"answer {turn}", latency_ms=1200.0)
        )  # fmt: skip
        parent = root
        for step in range(4):
            span = str(uuid.uuid4())
            events.append(
                _event(base - (step + 1) * 0.002, id=span, trace_id=trace, parent_id=parent,
                       session_id=session_id, name=("plan", "search", "llm", "format")[step],
                       kind=("chain", "tool", "llm", "tool")[step], latency_ms=200.0 - 30 * step,
                       status="error" if step == 1 and turn == 2 else "ok")
            )  # fmt: skip
            parent = span if step == 0 else parent
    assert ingest_events(project=project, events=events).accepted == len(events)
    return first_root


def test_prompts_sessions_users_agents_and_timeline(
    session: Session,  # noqa: F811 - the fixture imported above
    alice: Any,
    project: Any,
) -> None:
    root = _traffic(project)
    session.login("alice")

    session.goto("/prompts/")
    session.shot("prompts")
    link = session.page.locator("table a", has_text="support")
    assert link.is_visible()
    with session.page.expect_navigation():
        link.click()
    # Newest version against the one before: v2 vs v1, worse on errors.
    headline = session.page.locator(".headline").inner_text()
    assert headline.startswith("v2 is worse than v1 on error"), headline
    assert session.page.locator(".diff-added").count() >= 1
    assert XSS in session.page.locator(".diff").inner_text()
    session.shot("prompt-detail")

    # The release-gating question from the overview: filter on 2.5, one click to the comparison.
    session.goto("/?range=24h&release=2.5")
    link = session.page.locator("[data-compare-link]")
    assert link.inner_text() == "Compare 2.5 with 2.4"
    with session.page.expect_navigation():
        link.click()
    assert "/compare/?dimension=release&a=2.4&b=2.5" in session.page.url
    assert session.page.locator(".headline").inner_text().startswith("2.5 is worse than 2.4")
    session.shot("compare")

    session.goto("/sessions/")
    session.shot("sessions")
    link = session.page.locator("table a", has_text="conv-<b>1</b>")
    assert link.is_visible()
    with session.page.expect_navigation():
        link.click()
    assert session.page.locator("li.turn").count() == 3
    assert XSS in session.page.locator("li.turn .role-user pre").first.inner_text()
    session.shot("session-detail")

    session.goto("/users/")
    assert XSS[:30] in session.page.locator("table.table tbody tr").first.inner_text()
    session.shot("users")

    session.goto("/agents/?range=24h")
    session.page.locator(".js-plotly-plot").first.wait_for()
    assert session.page.locator("text=agent → plan").is_visible()
    session.shot("agents")

    session.goto(f"/calls/{root}/")
    rows = session.page.locator(".wf-row")
    assert rows.count() == 5
    # Folding "plan" hides the three spans under it.
    session.page.locator(".wf-row:has-text('plan') [data-fold]").click()
    assert session.page.locator(".wf-row:visible").count() == 2
    session.page.locator(".wf-row:has-text('plan') [data-fold]").click()
    assert session.page.locator(".wf-row:visible").count() == 5
    session.shot("call-timeline")

    assert session.page.evaluate("window.__xss") is None
    assert session.dialogs == []
    assert session.problems == []
