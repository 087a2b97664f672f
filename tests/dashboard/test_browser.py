"""The UI in a real browser: headless Debian Chromium driven by Playwright against
``live_server``. One browser per module, a handful of pages; every page is screenshotted to
``test-artifacts/screenshots/<page>.png``."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from apps.traces.models import Feedback
from tests.dashboard.factories import make_call, make_feedback

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2; alert(2)">'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is not installed "
        "(apt-get install chromium); browser tests skipped",
    ),
]
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls of the
    # tests (fixtures, assertions) are still plain synchronous code, so let Django allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _browser()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


class Session:
    """One signed-in page that records dialogs, page errors and CSP violations."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.problems: list[str] = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("console", self._on_console)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def login(self, username: str) -> None:
        self.page.goto(f"{self.base_url}/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")

    def goto(self, path: str) -> Any:
        response = self.page.goto(f"{self.base_url}{path}")
        self.page.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(browser: Any, live_server: Any) -> Iterator[Session]:
    s = Session(browser, live_server.url)
    yield s
    s.close()


def _traffic(project: Any) -> Any:
    """A day of calls across two models and releases, with errors, flags and feedback."""
    rng = random.Random(3)
    last = None
    for i in range(160):
        regressed = i < 40
        call = make_call(
            project,
            ago=timedelta(minutes=9 * i + rng.randint(0, 8)),
            model=rng.choice(["gpt-4o-mini", "claude-3-5-haiku"]),
            release="v2" if regressed else "v1",
            latency_ms=rng.lognormvariate(6.5, 0.4) * (1.5 if regressed else 1.0),
            cost_usd=rng.uniform(0.0001, 0.002),
            status="error" if rng.random() < (0.08 if regressed else 0.02) else "ok",
            flagged=rng.random() < 0.05,
            injection=rng.random() * 0.6,
            processed_at=None if i % 7 == 0 else project.created_at,
            prompt=rng.choice(["play some jazz", "weather in Lyon tomorrow", "book a table for 4"]),
        )
        if rng.random() < 0.4:
            make_feedback(
                project,
                call,
                score=0.0 if rng.random() < 0.3 else 1.0,
                created_at=call.start_time + timedelta(minutes=1),
            )
        last = call
    return last


def _alerts(project: Any, user: Any) -> None:
    """A rule with a firing and a resolved incident, for the alerts page."""
    from django.utils import timezone

    from apps.alerts.models import AlertRule, Incident

    rule = AlertRule.objects.create(
        project=project,
        name="p95 latency",
        metric="latency_p95",
        operator=">",
        threshold=1500.0,
        critical_threshold=3000.0,
        window_s=900,
    )
    now = timezone.now()
    Incident.objects.create(
        project=project,
        rule=rule,
        state="firing",
        severity="warning",
        value=1840.0,
        threshold=1500.0,
        sample_count=212,
        started_at=now - timedelta(minutes=12),
        fired_at=now - timedelta(minutes=10),
        summary="p95 latency 1,840 ms > 1,500 ms over 15 min (212 calls), release v2",
    )
    Incident.objects.create(
        project=project,
        rule=rule,
        state="resolved",
        severity="critical",
        value=3400.0,
        threshold=3000.0,
        sample_count=180,
        started_at=now - timedelta(hours=20),
        resolved_at=now - timedelta(hours=19),
        resolved_by=user,
        summary="p95 latency 3,400 ms > 3,000 ms over 15 min (180 calls)",
    )


def test_pages_render_charts_and_escape_untrusted_text(
    session: Session, alice: Any, project: Any, request: Any
) -> None:
    session.goto("/login/")
    session.shot("login")
    session.login("alice")

    # A brand-new project: the onboarding empty state with the SDK snippet and key button.
    session.goto("/")
    assert session.page.locator("text=Send your first call").is_visible()
    session.shot("overview-empty")
    with session.page.expect_navigation():
        session.page.click("text=Create an ingest key")
    raw = session.page.locator(".js-raw-key").inner_text()
    assert raw.startswith("dl_")
    assert raw in session.page.locator("#sdk-snippet").inner_text()
    session.shot("key-created")

    _traffic(project)
    xss_call = make_call(
        project,
        prompt=XSS,
        response=XSS + "<svg onload=alert(3)>",
        messages=[{"role": "user", "content": XSS}],
        tags=["<i>t</i>"],
    )
    make_feedback(project, xss_call, score=0.0, comment=XSS)

    response = session.goto("/?range=24h")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    # Every chart drew, with plotly traces holding data (not an empty frame).
    # A locator wait: wait_for_function would eval() a string, which the CSP rightly blocks.
    session.page.locator(".js-plotly-plot").nth(4).wait_for()
    counts = session.page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')].map(el =>
             (el.data || []).reduce((n, t) => n + (t.y || []).filter(v => v).length, 0))"""
    )
    assert len(counts) == 5
    assert all(n > 0 for n in counts), counts
    # 161 calls made over the last ~24 h; the window ends at the next bucket boundary.
    assert 150 <= int(session.page.locator(".kpi[data-kpi=calls] .kpi-value").inner_text()) <= 161
    session.shot("overview")

    session.goto("/calls/")
    assert session.page.locator("table.calls-table tbody tr").count() == 50
    session.shot("calls")

    session.goto(f"/calls/{xss_call.id}/")
    prompt_text = session.page.locator(".message pre.text").first.inner_text()
    assert "<script>window.__xss = 1</script>" in prompt_text
    assert "<svg onload=alert(3)>" in session.page.locator(".js-response").inner_text()
    assert session.page.evaluate("window.__xss") is None
    assert session.page.locator("img[src=x]").count() == 0
    assert session.dialogs == []
    session.shot("call-detail")

    request.getfixturevalue("drift_state")  # stored checks, after the empty state was seen
    session.goto("/drift/")
    # A locator wait: wait_for_function would eval() a string, which the CSP rightly blocks.
    # 3 detector charts (combined, mean shift, new-intent share), intent shares, the map.
    session.page.locator(".js-plotly-plot").nth(4).wait_for()
    assert session.page.locator(".js-group-name", has_text="poem / sea").is_visible()
    session.shot("drift")

    _alerts(project, alice)
    for name in ("alerts", "settings"):
        assert session.goto(f"/{name}/").status == 200
        session.shot(name)
    session.page.set_viewport_size({"width": 420, "height": 860})
    session.goto("/")
    session.shot("overview-mobile")
    assert session.problems == []
    assert session.dialogs == []


def test_reviewer_labels_with_the_keyboard_and_cannot_manage_keys(
    session: Session, reviewer_user: Any, project: Any
) -> None:
    first = make_call(
        project,
        prompt="What is the capital of Australia?",
        response="Sydney.",
        ago=timedelta(minutes=1),
    )
    make_call(
        project,
        prompt="Play something by Nina Simone",
        response="Playing Feeling Good.",
        ago=timedelta(minutes=2),
    )
    session.login("rita")
    session.goto("/review/")
    assert session.page.locator(".review-item:not([hidden])").count() == 1
    session.shot("review")
    # j / k move through the queue.
    session.page.keyboard.press("j")
    assert session.page.locator(".review-item:not([hidden])").get_attribute("data-index") == "1"
    session.page.keyboard.press("k")
    visible = session.page.locator(".review-item:not([hidden])")
    assert visible.get_attribute("data-call-id") == str(first.id)
    session.page.keyboard.press("0")
    session.page.keyboard.press("c")
    session.page.keyboard.type("Canberra, not Sydney")
    session.page.keyboard.press("Escape")
    with session.page.expect_navigation():
        session.page.keyboard.press("Enter")
    label = Feedback.objects.get(project=project, call_id=first.id)
    assert label.source == "reviewer"
    assert label.author_id == reviewer_user.pk
    assert label.score == 0.0
    assert label.comment == "Canberra, not Sydney"
    assert session.page.locator(".flash-success").is_visible()
    session.shot("review-after-label")

    # Key management is not for reviewers: no link, and 403 when asked directly.
    assert session.page.locator("a.nav-link[href='/settings/']").count() == 0
    response = session.goto("/settings/")
    assert response.status == 403
    session.shot("settings-forbidden")
    status = session.page.evaluate(
        """async () => {
             const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken='));
             const body = new URLSearchParams({name: 'x', scopes: 'ingest'});
             const r = await fetch('/settings/keys/', {method: 'POST', body,
               headers: {'X-CSRFToken': token ? token.split('=')[1] : ''}});
             return r.status;
           }"""
    )
    assert status == 403
    assert session.problems == [] or all("403" in p for p in session.problems)
