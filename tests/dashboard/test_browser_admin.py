"""Admin journeys of issue 20 in a real browser: an owner invites a reviewer, who sets a password
through the one-time link in a fresh browser and lands with reviewer access only; a new drift
intent is sent to the review queue from the drift page. Screenshots go to
``test-artifacts/screenshots/journey-*.png``."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import Membership
from apps.quality.models import ReviewRequest
from tests.dashboard.test_browser import PASSWORD, Session, browser, session  # noqa: F401
from tests.dashboard.test_drift_actions import new_intent  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_user_invited_and_signed_in_with_the_reviewer_role(
    session: Session,  # noqa: F811 - the fixture imported above
    browser: Any,  # noqa: F811
    alice: Any,
    project: Any,
) -> None:
    session.login("alice")
    session.goto("/settings/#members")
    session.page.fill("form.invite-form input[name=email]", "rosa@example.com")
    session.page.select_option("form.invite-form select[name=role]", "reviewer")
    with session.page.expect_navigation():
        session.page.click("form.invite-form button[type=submit]")
    session.page.wait_for_load_state("networkidle")
    session.shot("journey-invite-created")
    assert session.page.url.endswith("/settings/invites/created/")
    link = session.page.locator("#invite-link").inner_text().strip()
    assert "/invite/" in link
    # A reload shows nothing again (post/redirect/get; the link is shown once).
    session.page.reload()
    session.page.wait_for_load_state("networkidle")
    assert session.page.locator("#invite-link").count() == 0
    assert link not in session.page.content()

    invitee = Session(browser, session.base_url)
    try:
        invitee.page.goto(link)
        invitee.page.wait_for_load_state("networkidle")
        assert "reviewer" in invitee.page.inner_text("form")
        invitee.page.fill("#id_username", "rosa")
        invitee.page.fill("#id_password", PASSWORD)
        invitee.page.fill("#id_password2", PASSWORD)
        invitee.shot("journey-invite-accept")
        with invitee.page.expect_navigation():
            invitee.page.click("button[type=submit]")
        invitee.page.wait_for_load_state("networkidle")
        invitee.shot("journey-invited-reviewer-lands")
        assert invitee.page.url.rstrip("/") == session.base_url
        assert "you joined as reviewer" in invitee.page.content()
        assert Membership.objects.get(user__username="rosa").role == "reviewer"
        # Reviewer access only: the review queue yes, settings no.
        assert invitee.goto("/review/").status == 200
        assert not invitee.problems
        assert invitee.goto("/settings/").status == 403
        invitee.shot("journey-invited-reviewer-settings-403")
    finally:
        invitee.close()
    # The link is spent.
    other = Session(browser, session.base_url)
    try:
        assert other.goto(link.split(session.base_url, 1)[1]).status == 404
    finally:
        other.close()
    assert not session.problems


def test_a_new_intent_sent_to_review(
    session: Session,  # noqa: F811
    alice: Any,
    project: Any,
    new_intent: dict[str, Any],  # noqa: F811
) -> None:
    session.login("alice")
    session.goto("/drift/")
    session.shot("journey-drift-new-intent")
    verdict = session.page.locator(".js-verdict").inner_text()
    assert verdict.startswith("Users are asking different things than in the baseline")
    group = session.page.locator(".new-intent").first
    with session.page.expect_navigation():
        group.locator("button:has-text('to review')").click()
    session.page.wait_for_load_state("networkidle")
    session.shot("journey-new-intent-in-review")
    assert "/review/" in session.page.url
    assert "mode=requested" in session.page.url
    assert "20 calls sent to the review queue" in session.page.content()
    queued = {str(i) for i in ReviewRequest.objects.values_list("call_id", flat=True)}
    assert len(queued) == 20
    text = session.page.locator("main").inner_text()
    assert "about the sea" in text
    assert "known question" not in text
    assert "<i>poem</i>" in text  # shown as text, not markup
    assert not session.problems
