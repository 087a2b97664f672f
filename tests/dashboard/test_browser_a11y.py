"""Accessibility and small screens in a real browser (issue 20, part C).

Every page, with seeded data (hostile text included), is checked by axe-core (from npm, pinned
in package.json, injected by Playwright before the page's own scripts) for violations of every
impact, minor ones too (contrast, labels, landmarks, heading order, names of buttons, links and
table headers), at 1280 px and again at
390 px, where the page must not scroll sideways. Keyboard focus is visible on every stop, and the
menu button shows only where the sidebar collapses and toggles it.

Screenshots: ``test-artifacts/screenshots/a11y-<page>-<width>.png``; every violation found is
written to ``test-artifacts/axe.json``."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.evaluators.models import Evaluator
from tests.dashboard.test_browser import (  # noqa: F401 - the fixture browser
    CHROMIUM,
    PASSWORD,
    SHOTS,
    _alerts,
    browser,
)
from tests.dashboard.test_browser import _traffic as _calls_traffic
from tests.dashboard.test_browser_prompts import _traffic as _prompt_traffic

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is not installed (apt-get install chromium); skipped",
    ),
    pytest.mark.skipif(
        not AXE.exists(),
        reason="node_modules/axe-core is not installed (needs npm: `make browser-deps` runs "
        "`npm ci`); the accessibility browser test is skipped",
    ),
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The pages screenshotted at both widths (the rest are checked but not kept).
SHOT_PAGES = {"overview", "calls", "call-detail", "settings", "drift", "incident", "review"}
IMPACTS_THAT_FAIL = {"minor", "moderate", "serious", "critical"}


class A11ySession:
    """A browser context with axe-core injected into every document it opens."""

    def __init__(self, chromium: Any, base_url: str, viewport: dict[str, int]) -> None:
        self.base_url = base_url
        self.context = chromium.new_context(viewport=viewport)
        # An init script runs through the DevTools protocol, so the page's CSP (script-src
        # 'self') does not apply to it and the page itself is left unchanged.
        self.context.add_init_script(path=str(AXE))
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("dialog", lambda dialog: dialog.dismiss())

    def login(self, username: str) -> None:
        self.page.goto(f"{self.base_url}/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")

    def goto(self, path: str) -> int:
        response = self.page.goto(f"{self.base_url}{path}")
        self.page.wait_for_load_state("networkidle")
        # Charts draw after load; axe must see them drawn (their SVG text is checked too).
        for chart in self.page.locator("[data-chart]").all():
            chart.locator(".chart-loading").wait_for(state="detached", timeout=15000)
        return response.status if response else 0

    def axe(self) -> list[dict[str, Any]]:
        result = self.page.evaluate(
            """async () => {
                 const r = await window.axe.run(document, {resultTypes: ['violations']});
                 return r.violations.map(v => ({
                   id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 8).map(n => ({
                     target: n.target.join(' '), impact: n.impact,
                     summary: (n.failureSummary || '').slice(0, 300)})),
                   count: v.nodes.length}));
               }"""
        )
        return list(result)

    def scroll_width(self) -> int:
        return int(self.page.evaluate("() => document.scrollingElement.scrollWidth"))

    def too_wide(self) -> list[str]:
        """The innermost elements that reach past the viewport's right edge (for the message)."""
        return list(
            self.page.evaluate(
                """() => {
                     const w = document.documentElement.clientWidth;
                     const out = [...document.querySelectorAll('body *')].filter(el => {
                       const r = el.getBoundingClientRect();
                       return r.right > w + 1 && r.width > 0 &&
                         ![...el.children].some(c => c.getBoundingClientRect().right > w + 1);
                     });
                     return out.slice(0, 6).map(el => el.tagName.toLowerCase() +
                       (el.className && el.className.baseVal === undefined ?
                        '.' + el.className.trim().split(/\\s+/).join('.') : '') +
                       ' right=' + Math.round(el.getBoundingClientRect().right));
                   }"""
            )
        )

    def shot(self, name: str, *, full_page: bool = True) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"a11y-{name}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def a11y(browser: Any, live_server: Any) -> Iterator[Any]:  # noqa: F811 - the fixture above
    opened: list[A11ySession] = []

    def open_session(viewport: dict[str, int]) -> A11ySession:
        s = A11ySession(browser, live_server.url, viewport)
        opened.append(s)
        return s

    yield open_session
    for s in opened:
        s.close()


def _seed(project: Any, alice: Any, request: Any) -> dict[str, str]:
    """Everything the pages show: a day of calls, named prompts with versions, a session with
    tool spans, drift checks with a new intent, a firing incident, an evaluator. Returns the
    paths of the pages that need an id."""
    from apps.alerts.models import Incident

    last = _calls_traffic(project)
    root = _prompt_traffic(project)
    request.getfixturevalue("drift_state")
    _alerts(project, alice)
    Evaluator.objects.create(
        project=project,
        name="Helpfulness <b>judge</b>",
        kind="embedding",
        scorer="",
        score_type="numeric",
    )
    incident = Incident.objects.filter(project=project, state="firing").first()
    assert incident is not None
    session_id = urllib.parse.quote("conv-<b>1</b>", safe="")
    return {
        "overview": "/?range=24h",
        "calls": "/calls/?range=24h",
        "call-detail": f"/calls/{last.id}/",
        "call-trace": f"/calls/{root}/",
        "sessions": "/sessions/",
        "session-detail": f"/sessions/{session_id}/",
        "prompts": "/prompts/",
        "prompt-detail": "/prompts/support/",
        "agents": "/agents/?range=24h",
        "users": "/users/",
        "drift": "/drift/",
        "compare": "/compare/?dimension=release&a=2.4&b=2.5&range=24h",
        "review": "/review/",
        "alerts": "/alerts/",
        "incident": f"/alerts/incidents/{incident.pk}/",
        "evaluators": "/evaluators/",
        "evaluator-new": "/evaluators/new/",
        "settings": "/settings/",
        "not-found": "/no-such-page/",
    }


def _failing(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}, {v['count']}x): {v['help']} :: "
        + "; ".join(n["target"] for n in v["nodes"])
        for v in violations
        if v["impact"] in IMPACTS_THAT_FAIL
    ]


def test_every_page_passes_axe_and_fits_390px(
    a11y: Any, alice: Any, project: Any, request: Any
) -> None:
    pages = _seed(project, alice, request)
    found: dict[str, Any] = {}
    failures: list[str] = []
    widths: dict[str, int] = {}
    wide: dict[str, list[str]] = {}

    for viewport, label in ((DESKTOP, "1280"), (PHONE, "390")):
        anonymous = a11y(viewport)
        for name, path in (("login", "/login/"), ("not-found-anonymous", "/no-such-page/")):
            status = anonymous.goto(path)
            assert status == (200 if name == "login" else 404), (name, status)
            violations = anonymous.axe()
            found[f"{name}@{label}"] = violations
            failures += [f"{name}@{label}: {line}" for line in _failing(violations)]
            widths[f"{name}@{label}"] = anonymous.scroll_width()
            if name == "login":
                anonymous.shot(f"{name}-{label}")

        s = a11y(viewport)
        s.login("alice")
        for name, path in pages.items():
            status = s.goto(path)
            assert status == (404 if name == "not-found" else 200), (name, path, status)
            violations = s.axe()
            found[f"{name}@{label}"] = violations
            failures += [f"{name}@{label}: {line}" for line in _failing(violations)]
            widths[f"{name}@{label}"] = s.scroll_width()
            if widths[f"{name}@{label}"] > viewport["width"]:
                wide[f"{name}@{label}"] = s.too_wide()
            if name in SHOT_PAGES:
                s.shot(f"{name}-{label}")
                if viewport is PHONE:  # what a phone shows first, at full resolution
                    s.shot(f"{name}-{label}-top", full_page=False)
        assert s.problems == [], s.problems

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(
        json.dumps({"violations": found, "scroll_width": widths, "too_wide": wide}, indent=1)
    )
    too_wide = {k: w for k, w in widths.items() if k.endswith("@390") and w > PHONE["width"]}
    assert not failures, "\n".join(failures)
    assert not too_wide, (too_wide, wide)


def test_focus_is_visible_and_the_menu_button_toggles_the_sidebar(
    a11y: Any, alice: Any, project: Any
) -> None:
    _calls_traffic(project)
    desktop = a11y(DESKTOP)
    desktop.login("alice")
    desktop.goto("/calls/?range=24h")
    # The sidebar is always shown at desktop widths: no menu button there.
    assert not desktop.page.locator(".menu-toggle").is_visible()
    assert desktop.page.locator("#sidebar").is_visible()

    # Every one of the first tab stops (skip link, nav, switcher, filters, table links) shows
    # a ring of at least 2 px that is not the page's background.
    rings = []
    for _ in range(30):
        desktop.page.keyboard.press("Tab")
        rings.append(
            desktop.page.evaluate(
                """() => {
                     const el = document.activeElement;
                     const s = getComputedStyle(el);
                     return {tag: el.tagName, text: (el.textContent || el.name || '').trim()
                               .slice(0, 30), visible: el.matches(':focus-visible'),
                             style: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0,
                             shadow: s.boxShadow};
                   }"""
            )
        )
    weak = [
        r
        for r in rings
        if r["tag"] != "BODY" and not (r["visible"] and r["style"] != "none" and r["width"] >= 2)
    ]
    assert not weak, weak

    # The first stop skips to the content.
    desktop.page.keyboard.press("Shift+Tab")
    desktop.goto("/calls/?range=24h")
    desktop.page.keyboard.press("Tab")
    skip = desktop.page.locator(":focus")
    assert skip.inner_text().strip().lower().startswith("skip to")
    assert skip.is_visible()

    phone = a11y(PHONE)
    phone.login("alice")
    phone.goto("/calls/?range=24h")
    toggle = phone.page.locator(".menu-toggle")
    assert toggle.is_visible()
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.get_attribute("aria-controls") == "sidebar"
    sidebar = phone.page.locator("#sidebar")
    assert not _in_view(phone.page)
    # Keyboard: focus the button, Enter opens, the first nav link is reachable, Escape closes
    # and gives focus back to the button.
    toggle.focus()
    phone.page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    phone.page.wait_for_timeout(300)  # the slide-in transition
    assert _in_view(phone.page)
    assert sidebar.locator("a.nav-link").first.is_visible()
    phone.page.keyboard.press("Tab")
    assert phone.page.evaluate("() => !!document.activeElement.closest('#sidebar')")
    phone.shot("menu-open-390")
    phone.page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert phone.page.evaluate("() => document.activeElement.classList.contains('menu-toggle')")
    phone.page.wait_for_timeout(300)
    assert not _in_view(phone.page)
    # A click opens it too, and a click on the page beside it closes it.
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    phone.page.mouse.click(370, 600)
    assert toggle.get_attribute("aria-expanded") == "false"
    assert phone.problems == []


def _in_view(page: Any) -> bool:
    """Whether the sidebar lies on screen (it slides off to the left when collapsed)."""
    return bool(
        page.evaluate(
            "() => { const r = document.getElementById('sidebar').getBoundingClientRect();"
            " return r.right > 10; }"
        )
    )
