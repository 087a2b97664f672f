"""Prompt versions, sessions and nested tool calls through the public SDK into the real API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import driftline
import pytest

from apps.traces.models import Call, PromptVersion
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _sdk_shutdown() -> Iterator[None]:
    yield
    driftline.shutdown(2.0)


def test_prompt_versions_sessions_and_tools_from_the_sdk(
    live_server: Any, project: Any, ingest_key: str, tmp_path: Any
) -> None:
    driftline.init(api_key=ingest_key, host=live_server.url, spool_dir=str(tmp_path / "spool"))
    prompt = driftline.register_prompt("support", "Answer politely: {{question}}")
    assert prompt.version == driftline.register_prompt("support", prompt.template).version
    assert prompt.format(question="Where is my order?") == "Answer politely: Where is my order?"

    @driftline.observe(name="lookup_order", kind="tool")
    def lookup_order(order_id: str) -> dict[str, str]:
        return {"order": order_id, "status": "shipped"}

    @driftline.observe(name="llm", kind="llm", prompt_name="support", prompt_version="v7")
    def llm(question: str) -> str:
        driftline.update_current_call(model="gpt-4o-mini", input_tokens=10, output_tokens=5)
        return "It has shipped."

    @driftline.observe(name="agent", kind="agent")
    def agent(question: str) -> str:
        driftline.update_current_call(session_id="conv-9", user_id="u-1")
        lookup_order("A-1")
        prompt.bind()
        return llm(prompt.format(question=question))

    agent("Where is my order?")
    agent("And when will it arrive?")
    assert driftline.flush(15).ok
    calls = list(Call.objects.filter(project=project).order_by("start_time"))
    assert len(calls) == 6
    agents = [c for c in calls if c.name == "agent"]
    assert {(c.session_id, c.end_user_id) for c in agents} == {("conv-9", "u-1")}
    assert {(c.prompt_name, c.prompt_version) for c in agents} == {("support", prompt.version)}
    llms = [c for c in calls if c.name == "llm"]
    assert {(c.prompt_name, c.prompt_version) for c in llms} == {("support", "v7")}
    tools = [c for c in calls if c.name == "lookup_order"]
    assert all(t.parent_id == a.id for t, a in zip(tools, agents, strict=True))
    assert wait_for(
        lambda: PromptVersion.objects.filter(project=project, name="support").count() == 1,
        timeout=10,
    )
    stored = PromptVersion.objects.get(project=project, name="support")
    assert (stored.version, stored.template) == (prompt.version, prompt.template)
