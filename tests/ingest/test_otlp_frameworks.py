"""Frameworks with an instrumentation of their own, unchanged, against the live server and the
fake LLM API of ``test_otlp_more_clients``:

- Pydantic Logfire (``logfire.instrument_openai``, ``send_to_logfire=False`` and an OTLP
  exporter to Driftline): plain, streamed (two spans, counted once), a tool call and an error,
  in both its data formats (``version=2``: GenAI attributes; ``version=1``: ``request_data`` /
  ``response_data`` JSON);
- Pydantic AI (``InstrumentationSettings``): an agent's run with a tool round trip, streamed,
  failing; the ``chat`` spans are the LLM calls, ``invoke_agent`` / ``execute_tool`` context.

OpenLIT is not here: every release pins ``openai<3`` and ``anthropic<1``. Each package is
optional (``pytest.importorskip``): the suite passes where one is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from apps.traces.models import Call
from tests.ingest.test_otlp_clients import RESOURCE, local_server, otlp_env
from tests.ingest.test_otlp_more_clients import (
    ANSWER,
    MESSAGES,
    MISSING_MODEL,
    OPENAI_MODEL,
    QUESTION,
    SYSTEM,
    WEATHER_CALL,
    FakeLLM,
    assert_answered,
    assert_weather_tool_call,
    fake_llm,
    only_llm_call,
    openai_chunks,
    openai_completion,
)

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["fake_llm", "otlp_env"]  # fixtures used by name

SERVED_MODEL = f"{OPENAI_MODEL}-2024-07-18"


def calls_of(project: Any, **filters: Any) -> list[Call]:
    return sorted(Call.objects.filter(project=project, **filters), key=lambda c: c.start_time)


# --- Logfire ---------------------------------------------------------------------------------

# One interpreter per run: logfire.configure() sets the global providers.
LOGFIRE_SCRIPT = textwrap.dedent(
    """
    import sys
    import logfire
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    logfire.configure(
        send_to_logfire=False,
        console=False,
        inspect_arguments=False,  # a -c script has no source to inspect
        service_name="support-bot",
        additional_span_processors=[SimpleSpanProcessor(OTLPSpanExporter())],
    )
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    logfire.instrument_openai(client, version=int(sys.argv[2]))
    messages = [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    with logfire.span("plain"):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    with logfire.span("stream"):
        chunks = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Open Settings, then Security.", text
    with logfire.span("tools"):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    with logfire.span("error"):
        try:
            client.chat.completions.create(model="no-such-model", messages=messages)
        except openai.BadRequestError:
            pass
        else:
            raise AssertionError("no error")
    logfire.force_flush()
    logfire.shutdown()
    """
)


@pytest.mark.parametrize("version", [2, 1])
def test_logfire_openai(otlp_env: str, fake_llm: str, project: Any, version: int) -> None:
    pytest.importorskip("logfire")
    done = subprocess.run(
        [sys.executable, "-c", LOGFIRE_SCRIPT, f"{fake_llm}/v1", str(version)],
        env={**os.environ, "LOGFIRE_IGNORE_NO_CONFIG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    roots = {c.name: c for c in Call.objects.filter(project=project, parent_id__isnull=True)}
    assert set(roots) == {"plain", "stream", "tools", "error"}
    assert {c.kind for c in roots.values()} == {"span"}

    def llm_call(scenario: str) -> Call:
        trace = calls_of(project, trace_id=roots[scenario].trace_id)
        llm = [c for c in trace if c.kind == "llm"]
        assert len(llm) == 1, [(c.name, c.kind) for c in trace]
        call = llm[0]
        assert call.parent_id == roots[scenario].id
        assert call.latency_ms is not None
        assert call.latency_ms > 0
        assert (roots[scenario].prompt, roots[scenario].response) == ("", "")
        return call

    plain = llm_call("plain")
    assert_answered(plain, provider="openai", model=SERVED_MODEL, tokens=(21, 7))
    assert (plain.total_tokens, plain.cached_tokens) == (28, 5)
    assert plain.cost_usd is not None
    assert plain.metadata["otel.scope.name"] == "logfire.openai"
    assert "logfire.json_schema" not in plain.metadata

    # The request span (ended when the stream opened) stays as context; the stream's outcome,
    # logged at its end, is the one model call, as long as the stream.
    streamed = llm_call("stream")
    assert streamed.name.startswith("streaming response")
    assert_answered(streamed, provider="openai", model=SERVED_MODEL, tokens=(21, 7))
    request_half = [
        c for c in calls_of(project, trace_id=roots["stream"].trace_id) if c.kind != "llm"
    ]
    assert sorted(c.kind for c in request_half) == ["span", "span"]
    assert all(c.messages is None for c in request_half)

    tool = llm_call("tools")
    assert tool.messages == MESSAGES
    assert_weather_tool_call(tool)

    failed = llm_call("error")
    assert (failed.status, failed.error_type) == ("error", "openai.BadRequestError")
    assert "does not exist" in failed.error
    assert failed.model == MISSING_MODEL
    assert failed.messages == MESSAGES


# --- Pydantic AI -----------------------------------------------------------------------------


class AgentLLM(FakeLLM):
    """The fake, answering a tool result with text so that an agent's tool round trip ends;
    tools are called only when the question is about the weather."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length))
        FakeLLM.requests.append({"path": self.path, "json": payload})
        model = str(payload.get("model", ""))
        messages = payload.get("messages") or [{}]
        if model == MISSING_MODEL:
            error = {"message": f"The model `{model}` does not exist", "type": "invalid_request"}
            self._json(400, {"error": error})
        elif payload.get("stream"):
            options = payload.get("stream_options") or {}
            self._sse(
                openai_chunks(model, include_usage=bool(options.get("include_usage"))), done=True
            )
        else:
            asks = "Weather" in json.dumps(messages) and messages[-1].get("role") != "tool"
            self._json(200, openai_completion(model, tools=bool(payload.get("tools")) and asks))


@dataclass
class TracedAgent:
    agent: Any
    provider: TracerProvider
    base_url: str


@pytest.fixture
def agent_llm() -> Iterator[str]:
    FakeLLM.requests = []
    with local_server(AgentLLM) as url:
        yield f"{url}/v1"


@pytest.fixture
def traced_agent(
    otlp_env: str, agent_llm: str, request: pytest.FixtureRequest
) -> Iterator[TracedAgent]:
    """An agent with a weather tool, instrumented into a TracerProvider of our own (the global
    one is left alone) exporting to the live server; ``request.param``: the data format."""
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    options = {"version": request.param} if request.param else {}
    model = OpenAIChatModel(
        OPENAI_MODEL, provider=OpenAIProvider(base_url=agent_llm, api_key="sk-test")
    )
    agent = Agent(model, system_prompt=SYSTEM)
    agent.instrument = InstrumentationSettings(tracer_provider=provider, **options)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather of a city"""
        return f"Sunny in {city}"

    try:
        yield TracedAgent(agent=agent, provider=provider, base_url=agent_llm)
    finally:
        provider.shutdown()


def _run(traced: TracedAgent, prompt: str) -> Any:
    with traced.provider.get_tracer("app").start_as_current_span("POST /ask"):
        result = traced.agent.run_sync(prompt)
    assert traced.provider.force_flush(5_000)
    return result


# None: the installed default (version 5 in 2.x); 2: the oldest format still accepted.
VERSIONS = pytest.mark.parametrize("traced_agent", [None, 2], indirect=True, ids=["default", "v2"])


@VERSIONS
def test_pydantic_ai_agent_run(traced_agent: TracedAgent, project: Any) -> None:
    assert _run(traced_agent, QUESTION).output == ANSWER

    call = only_llm_call(project)
    assert_answered(call, provider="openai", model=SERVED_MODEL, tokens=(21, 7))
    assert call.cached_tokens == 5
    agent_span = Call.objects.get(project=project, kind="agent")
    assert call.parent_id == agent_span.id
    assert agent_span.trace_id == call.trace_id
    # The run's totals and conversation stay off the agent span (counted on its calls).
    assert (agent_span.input_tokens, agent_span.prompt, agent_span.messages) == (None, "", None)
    assert not {"pydantic_ai.all_messages", "final_result"} & set(agent_span.metadata)
    assert "model_request_parameters" not in call.metadata


@VERSIONS
def test_pydantic_ai_tool_round_trip(traced_agent: TracedAgent, project: Any) -> None:
    question = "Weather in Paris?"
    assert _run(traced_agent, question).output == ANSWER

    first, second = calls_of(project, kind="llm")
    assert first.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
    ]
    assert_weather_tool_call(first)
    # The second request carries the call and its result, as a tool message.
    assert second.messages[2]["tool_calls"][0]["id"] == WEATHER_CALL["id"]
    assert second.messages[3] == {"role": "tool", "content": "Sunny in Paris"}
    assert (second.prompt, second.response) == (question, ANSWER)
    (tool,) = calls_of(project, kind="tool")
    assert (tool.prompt, tool.response) == ('{"city":"Paris"}', "Sunny in Paris")
    assert tool.metadata["gen_ai.tool.name"] == "get_weather"
    (agent_span,) = calls_of(project, kind="agent")
    assert {first.parent_id, second.parent_id, tool.parent_id} == {agent_span.id}


@pytest.mark.parametrize("traced_agent", [None], indirect=True, ids=["default"])
def test_pydantic_ai_streamed_and_failing(traced_agent: TracedAgent, project: Any) -> None:
    from pydantic_ai.exceptions import ModelAPIError
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    agent = traced_agent.agent
    missing = OpenAIChatModel(
        MISSING_MODEL, provider=OpenAIProvider(base_url=traced_agent.base_url, api_key="sk-test")
    )
    with traced_agent.provider.get_tracer("app").start_as_current_span("POST /ask"):
        with agent.run_stream_sync(QUESTION) as result:
            assert "".join(result.stream_text(delta=True)) == ANSWER
        with pytest.raises(ModelAPIError):
            agent.run_sync(QUESTION, model=missing)
    assert traced_agent.provider.force_flush(5_000)

    streamed, failed = calls_of(project, kind="llm")
    assert_answered(streamed, provider="openai", model=SERVED_MODEL, tokens=(21, 7))
    assert streamed.ttft_ms is not None
    assert 0 <= streamed.ttft_ms <= streamed.latency_ms
    assert failed.status == "error"
    assert "does not exist" in failed.error
    assert failed.error_type.startswith("pydantic_ai.exceptions.")
    assert failed.model == MISSING_MODEL
    assert {c.status for c in calls_of(project, kind="agent")} == {"ok", "error"}
