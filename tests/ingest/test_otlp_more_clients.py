"""More real instrumentations, unchanged, against the live server and a fake LLM API on
localhost that speaks both OpenAI chat completions and Anthropic messages (non-streaming,
streamed SSE, tool calls and error answers):

- the official OpenTelemetry ``opentelemetry-instrumentation-openai-v2`` (latest experimental
  GenAI conventions: content in ``gen_ai.{input,output}.messages`` span attributes, or in a
  ``gen_ai.client.inference.operation.details`` event on ``/v1/logs``);
- OpenLLMetry (``opentelemetry-instrumentation-openai`` / ``-anthropic``) and OpenInference
  (``openinference-instrumentation-openai`` / ``-anthropic``), streamed, with tools, failing.

Each package is optional (``pytest.importorskip``): the suite passes where one is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from apps.traces.models import Call
from tests.ingest.test_otlp_clients import RESOURCE, local_server, otlp_env
from tests.ingest.test_otlp_real_clients import logs_exporter

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["otlp_env"]  # fixture used by name

SYSTEM = "You are a support assistant."
QUESTION = "How do I reset my password?"
ANSWER = "Open Settings, then Security."
OPENAI_MODEL = "gpt-4o-mini"
CLAUDE = "claude-3-5-haiku-20241022"
# The fake answers this model with 400, and "overloaded" with 500.
MISSING_MODEL = "no-such-model"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
WEATHER_CALL = {"id": "call_weather_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


# --- a fake LLM API: OpenAI chat completions and Anthropic messages ----------------------------


def openai_completion(model: str, *, tools: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": ANSWER}
    if tools:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": WEATHER_CALL["id"],
                    "type": "function",
                    "function": {
                        "name": WEATHER_CALL["name"],
                        "arguments": WEATHER_CALL["arguments"],
                    },
                }
            ],
        }
    return {
        "id": "chatcmpl-test-1",
        "object": "chat.completion",
        "created": 1_763_800_000,
        "model": f"{model}-2024-07-18",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tools else "stop"}
        ],
        "usage": {
            "prompt_tokens": 21,
            "completion_tokens": 7,
            "total_tokens": 28,
            "prompt_tokens_details": {"cached_tokens": 5},
        },
    }


def openai_chunks(model: str, *, include_usage: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """The chunks of a streamed answer; usage only when asked for (``stream_options``)."""
    base = {
        "id": "chatcmpl-test-2",
        "object": "chat.completion.chunk",
        "created": 1_763_800_000,
        "model": f"{model}-2024-07-18",
    }
    for delta in ({"role": "assistant", "content": ""}, {"content": "Open Settings, "}):
        yield "", {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    yield "", {**base, "choices": [{"index": 0, "delta": {"content": "then Security."}}]}
    yield "", {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if include_usage:
        usage = {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}
        yield "", {**base, "choices": [], "usage": usage}


def anthropic_message(model: str, *, tools: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": ANSWER}]
    if tools:
        content = [
            {
                "type": "tool_use",
                "id": "toolu_weather_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        ]
    return {
        "id": "msg_test_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if tools else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 21,
            "output_tokens": 7,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 0,
        },
    }


def anthropic_events(model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A streamed message: https://docs.anthropic.com/en/api/messages-streaming"""
    start = {**anthropic_message(model, tools=False), "content": [], "stop_reason": None}
    start["usage"] = {**start["usage"], "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    block = {"type": "text", "text": ""}
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    yield "ping", {"type": "ping"}
    for piece in ("Open Settings, ", "then Security."):
        delta = {"type": "text_delta", "text": piece}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 7},
        },
    )
    yield "message_stop", {"type": "message_stop"}


class FakeLLM(BaseHTTPRequestHandler):
    """POST /v1/chat/completions (OpenAI) and /v1/messages (Anthropic), as JSON or SSE."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length))
        FakeLLM.requests.append({"path": self.path, "json": payload})
        path = self.path.rstrip("/")
        model = str(payload.get("model", ""))
        tools = bool(payload.get("tools"))
        if model == MISSING_MODEL:
            message = f"The model `{model}` does not exist"
            self._json(
                400,
                {"type": "error", "error": {"type": "invalid_request_error", "message": message}},
            )
        elif model == "overloaded":
            self._json(500, {"error": {"message": "The server had an error", "type": "server"}})
        elif path == "/v1/chat/completions" and payload.get("stream"):
            options = payload.get("stream_options") or {}
            chunks = openai_chunks(model, include_usage=bool(options.get("include_usage")))
            self._sse(chunks, done=True)
        elif path == "/v1/chat/completions":
            self._json(200, openai_completion(model, tools=tools))
        elif path == "/v1/messages" and payload.get("stream"):
            self._sse(anthropic_events(model), done=False)
        elif path == "/v1/messages":
            self._json(200, anthropic_message(model, tools=tools))
        else:
            self.send_error(404)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(body))

    def _sse(self, events: Iterable[tuple[str, dict[str, Any]]], *, done: bool) -> None:
        lines = [
            (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
            for name, data in events
        ]
        # OpenAI ends its streams with a [DONE] line; Anthropic with message_stop.
        self._send(200, "text/event-stream", "".join(lines) + ("data: [DONE]\n\n" if done else ""))

    def _send(self, status: int, content_type: str, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_llm() -> Iterator[str]:
    """The fake's base URL (Anthropic's ``base_url``; OpenAI's is this + ``/v1``)."""
    FakeLLM.requests = []
    with local_server(FakeLLM) as url:
        yield url


# --- helpers ---------------------------------------------------------------------------------


@contextmanager
def traced(instrumentor: Any, live_server: Any, ingest_key: str) -> Iterator[None]:
    """The instrumentation on providers of our own exporting to the live server (spans by the
    two documented variables, logs to /v1/logs), around one application span."""
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(logs_exporter(live_server, ingest_key))
    )
    instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    try:
        with tracer_provider.get_tracer("app").start_as_current_span(
            "POST /ask", kind=SpanKind.SERVER
        ):
            yield
        assert tracer_provider.force_flush(5_000)
        assert logger_provider.force_flush(5_000)
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()
        logger_provider.shutdown()


def only_llm_call(project: Any) -> Call:
    """The one LLM call, in the trace of the application span (stored, not an LLM call)."""
    calls = list(Call.objects.filter(project=project))
    llm = [c for c in calls if c.kind == "llm"]
    assert len(llm) == 1, [(c.name, c.kind) for c in calls]
    app = [c for c in calls if c.name == "POST /ask"]
    assert [c.kind for c in app] == ["span"], [(c.name, c.kind) for c in calls]
    call = llm[0]
    assert call.trace_id == app[0].trace_id
    assert len(call.trace_id) == 32
    assert call.parent_id is not None
    assert call.latency_ms is not None
    assert call.latency_ms > 0
    # Content belongs to the model call, never to the application span.
    assert (app[0].prompt, app[0].response, app[0].messages) == ("", "", None)
    return call


def assert_answered(
    call: Call,
    *,
    provider: str,
    model: str,
    tokens: tuple[int | None, int | None],
    response: str = ANSWER,
) -> None:
    assert call.provider == provider
    assert call.model == model
    assert call.messages == MESSAGES  # Anthropic's system parameter as the first message
    assert call.prompt == QUESTION
    assert call.response == response
    assert (call.input_tokens, call.output_tokens) == tokens
    assert call.status == "ok"
    assert call.error == ""


def assert_weather_tool_call(call: Call, *, call_id: str = WEATHER_CALL["id"]) -> None:
    (tool_call,) = call.metadata["gen_ai.output.tool_calls"]
    assert tool_call["id"] == call_id
    assert tool_call["name"] == "get_weather"
    assert json.loads(tool_call["arguments"]) == {"city": "Paris"}
    assert call.response == ""  # the model answered with a call, not text


def openai_client(fake_llm: str) -> Any:
    import openai

    return openai.OpenAI(base_url=f"{fake_llm}/v1", api_key="sk-test", max_retries=0)


def anthropic_client(fake_llm: str) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=fake_llm, api_key="sk-ant-test", max_retries=0)


def ask_openai(client: Any, **options: Any) -> str:
    """One chat completion; streamed ones are read to the end. Returns the text."""
    model = options.pop("model", OPENAI_MODEL)
    answer = client.chat.completions.create(model=model, messages=MESSAGES, **options)
    if options.get("stream"):
        return "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    return answer.choices[0].message.content or ""


def ask_anthropic(client: Any, *, stream: bool = False, **options: Any) -> str:
    model = options.pop("model", CLAUDE)
    request = {"model": model, "max_tokens": 100, "system": SYSTEM, "messages": MESSAGES[1:]}
    if stream:
        with client.messages.stream(**request, **options) as events:
            return "".join(events.text_stream)
    answer = client.messages.create(**request, **options)
    return "".join(getattr(block, "text", "") for block in answer.content)


# --- the official OpenTelemetry OpenAI instrumentation (openai-v2) --------------------------


@pytest.fixture
def openai_v2(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Latest experimental conventions; content on the span unless a test says otherwise."""
    module = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    return module.OpenAIInstrumentor()


def test_openai_v2_content_on_the_span(
    otlp_env: str, fake_llm: str, live_server: Any, ingest_key: str, project: Any, openai_v2: Any
) -> None:
    with traced(openai_v2, live_server, ingest_key):
        assert ask_openai(openai_client(fake_llm)) == ANSWER

    call = only_llm_call(project)
    assert_answered(call, provider="openai", model="gpt-4o-mini-2024-07-18", tokens=(21, 7))
    assert call.total_tokens == 28
    assert call.metadata["gen_ai.request.model"] == OPENAI_MODEL
    assert call.metadata["otel.span_kind"] == "client"


def test_openai_v2_content_as_operation_details_event_on_logs(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    openai_v2: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EVENT_ONLY: the span has no content; one operation-details log event carries it."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    with traced(openai_v2, live_server, ingest_key):
        assert ask_openai(openai_client(fake_llm)) == ANSWER

    call = only_llm_call(project)
    assert_answered(call, provider="openai", model="gpt-4o-mini-2024-07-18", tokens=(21, 7))


def test_openai_v2_streamed(
    otlp_env: str, fake_llm: str, live_server: Any, ingest_key: str, project: Any, openai_v2: Any
) -> None:
    with traced(openai_v2, live_server, ingest_key):
        client = openai_client(fake_llm)
        text = ask_openai(client, stream=True, stream_options={"include_usage": True})
        assert text == ANSWER

    call = only_llm_call(project)
    assert_answered(call, provider="openai", model="gpt-4o-mini-2024-07-18", tokens=(21, 7))


def test_openai_v2_tool_call(
    otlp_env: str, fake_llm: str, live_server: Any, ingest_key: str, project: Any, openai_v2: Any
) -> None:
    with traced(openai_v2, live_server, ingest_key):
        assert ask_openai(openai_client(fake_llm), tools=OPENAI_TOOLS) == ""

    call = only_llm_call(project)
    assert call.messages == MESSAGES
    assert_weather_tool_call(call)
    assert (call.input_tokens, call.output_tokens) == (21, 7)


@pytest.mark.parametrize(
    ("model", "status", "error_type"),
    [
        (MISSING_MODEL, 400, "openai.BadRequestError"),
        ("overloaded", 500, "openai.InternalServerError"),
    ],
)
def test_openai_v2_error_answer(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    openai_v2: Any,
    model: str,
    status: int,
    error_type: str,
) -> None:
    import openai

    with traced(openai_v2, live_server, ingest_key), pytest.raises(openai.APIStatusError):
        ask_openai(openai_client(fake_llm), model=model)

    call = only_llm_call(project)
    assert call.status == "error"
    assert call.error.startswith(f"Error code: {status}")
    # The instrumentation writes the class's repr (``<class 'openai.BadRequestError'>``).
    assert call.error_type == error_type
    assert call.model == model
    assert call.messages == MESSAGES
    assert call.response == ""


# --- OpenLLMetry's OpenAI instrumentation, streamed -------------------------------------------


@pytest.fixture
def openllmetry_openai(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = pytest.importorskip("opentelemetry.instrumentation.openai")
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    return module.OpenAIInstrumentor()


OPENLLMETRY_STREAM_SCRIPT = textwrap.dedent(
    """
    import sys
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    messages = [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    with provider.get_tracer("app").start_as_current_span("POST /ask"):
        for options in ({"stream_options": {"include_usage": True}}, {}):
            chunks = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True, user="end-user-7", **options
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text == "Open Settings, then Security.", text
    provider.shutdown()
    """
)


def test_openllmetry_openai_streamed(
    otlp_env: str, fake_llm: str, project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed with usage (asked for by ``stream_options``) and without: the text is kept
    either way, the counts only when OpenAI sent them. In its own interpreter: OpenLLMetry's
    ``uninstrument()`` leaves its wrapper behind, and a second ``instrument()`` in the same
    process then doubles every streamed text."""
    pytest.importorskip("opentelemetry.instrumentation.openai")
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    done = subprocess.run(
        [sys.executable, "-c", OPENLLMETRY_STREAM_SCRIPT, f"{fake_llm}/v1"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    calls = sorted(Call.objects.filter(project=project, kind="llm"), key=lambda c: c.start_time)
    assert len(calls) == 2, calls
    with_usage, without_usage = calls
    assert_answered(with_usage, provider="openai", model="gpt-4o-mini-2024-07-18", tokens=(21, 7))
    assert with_usage.metadata["gen_ai.is_streaming"] is True
    assert_answered(
        without_usage, provider="openai", model="gpt-4o-mini-2024-07-18", tokens=(None, None)
    )
    assert {c.end_user_id for c in calls} == {"end-user-7"}
    assert {c.trace_id for c in calls} == {
        c.trace_id for c in Call.objects.filter(project=project, name="POST /ask")
    }


def test_openllmetry_openai_tool_call_and_error(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    openllmetry_openai: Any,
) -> None:
    import openai

    with traced(openllmetry_openai, live_server, ingest_key):
        client = openai_client(fake_llm)
        assert ask_openai(client, tools=OPENAI_TOOLS) == ""
        with pytest.raises(openai.BadRequestError):
            ask_openai(client, model=MISSING_MODEL)

    by_model = {c.model: c for c in Call.objects.filter(project=project, kind="llm")}
    assert set(by_model) == {"gpt-4o-mini-2024-07-18", MISSING_MODEL}
    answered = by_model["gpt-4o-mini-2024-07-18"]
    assert_weather_tool_call(answered)
    assert answered.cached_tokens == 5
    failed = by_model[MISSING_MODEL]
    assert (failed.status, failed.error_type) == ("error", "BadRequestError")
    assert "does not exist" in failed.error


# --- OpenInference's OpenAI instrumentation: streamed, tools, an error ---------------------------


@pytest.fixture
def openinference_openai() -> Any:
    module = pytest.importorskip("openinference.instrumentation.openai")
    return module.OpenAIInstrumentor()


def test_openinference_openai_streamed(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    openinference_openai: Any,
) -> None:
    with traced(openinference_openai, live_server, ingest_key):
        client = openai_client(fake_llm)
        text = ask_openai(client, stream=True, stream_options={"include_usage": True})
        assert text == ANSWER

    call = only_llm_call(project)
    assert_answered(call, provider="openai", model="gpt-4o-mini-2024-07-18", tokens=(21, 7))


def test_openinference_openai_tool_call(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    openinference_openai: Any,
) -> None:
    with traced(openinference_openai, live_server, ingest_key):
        assert ask_openai(openai_client(fake_llm), tools=OPENAI_TOOLS) == ""

    call = only_llm_call(project)
    assert call.messages == MESSAGES
    assert_weather_tool_call(call)
    assert call.cached_tokens == 5


def test_openinference_openai_error_keeps_the_requested_model(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    openinference_openai: Any,
) -> None:
    """A failed call has no response model: the requested one is in the invocation
    parameters only."""
    import openai

    with (
        traced(openinference_openai, live_server, ingest_key),
        pytest.raises(openai.BadRequestError),
    ):
        ask_openai(openai_client(fake_llm), model=MISSING_MODEL)

    call = only_llm_call(project)
    assert (call.status, call.error_type) == ("error", "openai.BadRequestError")
    assert "does not exist" in call.error
    assert call.model == MISSING_MODEL
    assert call.messages == MESSAGES


# --- Anthropic: OpenLLMetry and OpenInference -------------------------------------------------


@pytest.fixture
def openllmetry_anthropic(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = pytest.importorskip("opentelemetry.instrumentation.anthropic")
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    return module.AnthropicInstrumentor()


@pytest.fixture
def openinference_anthropic() -> Any:
    module = pytest.importorskip("openinference.instrumentation.anthropic")
    return module.AnthropicInstrumentor()


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("package", ["openllmetry", "openinference"])
def test_anthropic_messages(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    request: pytest.FixtureRequest,
    package: str,
    stream: bool,
) -> None:
    """The system parameter becomes the first message. Both packages count the cached tokens
    into the input (21 + 5), as OpenAI does; OpenLLMetry adds message_start's output count to
    message_delta's cumulative one when streamed (8, its own)."""
    instrumentor = request.getfixturevalue(f"{package}_anthropic")
    with traced(instrumentor, live_server, ingest_key):
        assert ask_anthropic(anthropic_client(fake_llm), stream=stream) == ANSWER

    assert FakeLLM.requests[0]["json"]["system"] == SYSTEM
    call = only_llm_call(project)
    output_tokens = 8 if stream and package == "openllmetry" else 7
    assert_answered(call, provider="anthropic", model=CLAUDE, tokens=(26, output_tokens))
    assert call.cached_tokens == 5


@pytest.mark.parametrize("package", ["openllmetry", "openinference"])
def test_anthropic_tool_use(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    request: pytest.FixtureRequest,
    package: str,
) -> None:
    instrumentor = request.getfixturevalue(f"{package}_anthropic")
    with traced(instrumentor, live_server, ingest_key):
        assert ask_anthropic(anthropic_client(fake_llm), tools=ANTHROPIC_TOOLS) == ""

    call = only_llm_call(project)
    assert call.messages == MESSAGES
    assert_weather_tool_call(call, call_id="toolu_weather_1")


@pytest.mark.parametrize("package", ["openllmetry", "openinference"])
def test_anthropic_error_answer(
    otlp_env: str,
    fake_llm: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    request: pytest.FixtureRequest,
    package: str,
) -> None:
    import anthropic

    instrumentor = request.getfixturevalue(f"{package}_anthropic")
    with traced(instrumentor, live_server, ingest_key), pytest.raises(anthropic.BadRequestError):
        ask_anthropic(anthropic_client(fake_llm), model=MISSING_MODEL)

    call = only_llm_call(project)
    assert call.status == "error"
    assert call.error_type in ("BadRequestError", "anthropic.BadRequestError")
    assert "invalid_request_error" in call.error
    assert call.model == MISSING_MODEL
    assert call.messages == MESSAGES


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_openllmetry_anthropic_events_on_logs(
    otlp_env: str, fake_llm: str, live_server: Any, ingest_key: str, project: Any, stream: bool
) -> None:
    """The events carry the context of the span around the call (the application span), not
    the call's own: they are moved to the one LLM call under it (apps.ingest.otlp.services)."""
    module = pytest.importorskip("opentelemetry.instrumentation.anthropic")
    with traced(module.AnthropicInstrumentor(use_attributes=False), live_server, ingest_key):
        assert ask_anthropic(anthropic_client(fake_llm), stream=stream) == ANSWER

    call = only_llm_call(project)
    assert call.messages == MESSAGES
    assert call.response == ANSWER
