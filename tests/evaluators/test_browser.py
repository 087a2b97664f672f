"""The evaluators UI in headless Chromium: add a connection, configure a judge from the
library, preview it on real calls (fake OpenAI-compatible server), create it, and see it pause
itself on a 401 with the reason visible. Screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.evaluators import services
from apps.evaluators.models import EvalJob, Evaluator, Score
from tests.dashboard.test_browser import CHROMIUM, Session, browser  # noqa: F401 (fixture)
from tests.evaluators.conftest import make_call
from tests.evaluators.fakes import FakeLLM, error_answer, openai_answer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]
XSS = '<img src=x onerror="window.__xss = 1">'


@pytest.fixture
def session(browser: Any, live_server: Any) -> Iterator[Session]:  # noqa: F811
    s = Session(browser, live_server.url)
    yield s
    s.close()


def test_configure_an_evaluator_with_a_preview(
    session: Session, alice: Any, project: Any, llm: FakeLLM, settings: Any
) -> None:
    settings.DRIFTLINE_LLM_ALLOW_PRIVATE = True
    for i, (q, a) in enumerate(
        [
            ("How do I reset my password?", "Open Settings > Security > Reset password."),
            ("Cancel my order 1234", "I cannot help with that."),
            ("What is your refund policy?", "Refunds within 30 days, " + XSS),
        ]
    ):
        make_call(
            project, prompt=q, response=a, environment="prod", model="gpt-4o-mini", name=f"c{i}"
        )
    session.login("alice")
    session.goto("/evaluators/")
    session.page.fill("input[name=name]", "openai-judge")
    session.page.fill("input[name=base_url]", llm.base_url + "/v1")
    session.page.fill("input[name=api_key]", "sk-browser-test-123456")
    session.page.fill("input[name=default_model]", "gpt-4o-mini")
    with session.page.expect_navigation():
        session.page.click("text=Add connection")
    assert session.page.locator("text=openai-judge").first.is_visible()
    assert "sk-browser-test" not in session.page.content()

    session.goto("/evaluators/new/?template=helpfulness")
    form = session.page.locator(".js-evaluator-form")
    assert "{{response}}" in form.locator("textarea[name=prompt_template]").input_value()
    form.locator("select[name=connection]").select_option(label="openai-judge (gpt-4o-mini)")
    form.locator("input[name=filter_environment]").fill("prod")
    form.locator("input[name=sampling_rate]").fill("1")
    llm.answer(
        openai_answer({"reason": "Answers with the exact steps.", "score": 0.92}),
        openai_answer({"reason": "Refuses a benign request.", "score": 0.1}),
        openai_answer({"reason": "Policy stated; odd markup " + XSS, "score": 0.7}),
    )
    with session.page.expect_navigation():
        form.locator("button[value=preview]").click()
    preview = session.page.locator(".js-preview")
    assert preview.is_visible()
    text = preview.inner_text()
    assert "Answers with the exact steps." in text
    assert "Refuses a benign request." in text
    assert "0.92" in text
    assert "0.10" in text
    assert XSS in text
    assert session.page.evaluate("window.__xss") is None
    assert not Evaluator.objects.exists()
    assert not Score.objects.exists()
    # The preview sent the instruction as the system message.
    assert llm.requests[0].json()["messages"][0]["role"] == "system"
    session.shot("evaluator-preview")

    with session.page.expect_navigation():
        session.page.locator(".js-evaluator-form button[value=save]").click()
    evaluator = Evaluator.objects.get(project=project)
    assert (evaluator.name, evaluator.filters) == ("helpfulness", {"environment": ["prod"]})
    assert session.page.locator("text=helpfulness").first.is_visible()

    # The key is revoked: the next judge call answers 401 and the evaluator pauses itself.
    call = make_call(project, environment="prod")
    services.evaluations_select(project_id=project.pk, call_ids=[str(call.id)])
    llm.answer(error_answer(401, "Incorrect API key provided"))
    services.evaluation_run(job_id=EvalJob.objects.get(call_id=call.id).pk)
    session.goto("/evaluators/")
    reason = session.page.locator(".js-paused-reason").first.inner_text()
    assert "401" in reason
    assert "Incorrect API key" in reason
    session.shot("evaluators-paused")
    assert session.problems == [], session.problems
