"""/v1/traces with real clients: the OpenTelemetry SDK and its OTLP/HTTP exporter configured by
the two documented environment variables, and OpenLLMetry's OpenAI instrumentation around the
real ``openai`` client talking to a fake OpenAI server on localhost."""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from apps.ingest.otlp import span_event_id
from apps.traces.models import Call

pytestmark = pytest.mark.django_db(transaction=True)

RESOURCE = Resource.create(
    {
        "service.name": "support-bot",
        "service.version": "2.4.1",
        "deployment.environment.name": "staging",
    }
)


def completion_body(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test-1",
        "object": "chat.completion",
        "created": 1_763_800_000,
        "model": f"{model}-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Open Settings, then Security."},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 21,
            "completion_tokens": 7,
            "total_tokens": 28,
            "prompt_tokens_details": {"cached_tokens": 5},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions like OpenAI does (non-streaming), with usage."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length))
        FakeOpenAI.requests.append({"path": self.path, "json": payload})
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.dumps(completion_body(payload["model"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free localhost port in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_openai() -> Iterator[str]:
    FakeOpenAI.requests = []
    with local_server(FakeOpenAI) as url:
        yield f"{url}/v1"


@pytest.fixture
def otlp_env(monkeypatch: pytest.MonkeyPatch, live_server: Any, ingest_key: str) -> str:
    """Exactly the two variables docs/otlp.md tells users to set."""
    endpoint = f"{live_server.url}/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{ingest_key}")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_COMPRESSION", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", raising=False)
    return endpoint


@pytest.fixture
def instrumented_openai(
    fake_openai: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, InMemorySpanExporter, TracerProvider]]:
    """An ``openai.OpenAI`` client traced by OpenLLMetry into a TracerProvider of our own (the
    global one is left alone); spans go to memory and, per test, to OTLP."""
    import openai
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    client = openai.OpenAI(base_url=fake_openai, api_key="sk-test", max_retries=0)
    try:
        yield client, memory, provider
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def ask(client: Any) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a support assistant."},
            {"role": "user", "content": "How do I reset my password?"},
        ],
        user="end-user-7",
    )
    assert answer.choices[0].message.content == "Open Settings, then Security."


def only_llm_call(project: Any) -> Call:
    calls = list(Call.objects.filter(project=project, kind="llm"))
    assert len(calls) == 1, calls
    return calls[0]


def assert_openai_call(call: Call) -> None:
    assert call.provider == "openai"
    assert call.model == "gpt-4o-mini-2024-07-18"
    assert call.metadata["gen_ai.request.model"] == "gpt-4o-mini"
    assert (call.input_tokens, call.output_tokens, call.total_tokens, call.cached_tokens) == (
        21,
        7,
        28,
        5,
    )
    assert call.messages == [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    assert call.response == "Open Settings, then Security."
    assert call.status == "ok"
    assert call.end_user_id == "end-user-7"
    assert call.latency_ms is not None
    assert call.latency_ms > 0
    assert (call.release, call.environment) == ("2.4.1", "staging")
    assert "service:support-bot" in call.tags


# --- the SDK exporter, configured by the two environment variables --------------------------


def test_sdk_exporter_with_the_two_documented_variables(
    otlp_env: str, project: Any, other_project: Any
) -> None:
    exporter = OTLPSpanExporter()  # endpoint and headers from the environment only
    provider = TracerProvider(resource=RESOURCE)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle request", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.system", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o")
            span.set_attribute("gen_ai.usage.input_tokens", 100)
            span.set_attribute("gen_ai.usage.output_tokens", 20)
            span.set_attribute("gen_ai.prompt.0.role", "user")
            span.set_attribute("gen_ai.prompt.0.content", "Summarize my ticket")
            span.set_attribute("gen_ai.completion.0.content", "You asked about billing.")
        with tracer.start_as_current_span("tool call", kind=SpanKind.INTERNAL) as failing:
            failing.set_attribute("gen_ai.operation.name", "execute_tool")
            failing.record_exception(ValueError("no such invoice"))
            failing.set_status(Status(StatusCode.ERROR, "lookup failed"))
    spans = memory.get_finished_spans()

    assert exporter.export(spans) == SpanExportResult.SUCCESS
    # The exporter retries on failure only; a re-export of the same spans is stored once.
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    provider.shutdown()

    calls = {c.name: c for c in Call.objects.filter(project=project)}
    assert set(calls) == {"handle request", "chat gpt-4o", "tool call"}
    chat, tool, server = calls["chat gpt-4o"], calls["tool call"], calls["handle request"]
    assert (chat.kind, chat.model, chat.input_tokens, chat.output_tokens) == (
        "llm",
        "gpt-4o",
        100,
        20,
    )
    assert chat.messages == [{"role": "user", "content": "Summarize my ticket"}]
    assert chat.response == "You asked about billing."
    root_context = root.get_span_context()
    assert str(server.id) == span_event_id(
        root_context.trace_id.to_bytes(16, "big"), root_context.span_id.to_bytes(8, "big")
    )
    assert str(chat.parent_id) == str(server.id)
    assert chat.trace_id == f"{root_context.trace_id:032x}"
    assert (server.kind, server.prompt, server.messages) == ("span", "", None)
    assert (tool.kind, tool.status, tool.error, tool.error_type) == (
        "tool",
        "error",
        "lookup failed",
        "ValueError",
    )
    assert not Call.objects.filter(project=other_project).exists()


def test_sdk_exporter_gzip_and_bad_key(
    otlp_env: str, monkeypatch: pytest.MonkeyPatch, project: Any
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    provider = TracerProvider(resource=RESOURCE)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("app").start_as_current_span("gzip span") as span:
        span.set_attribute("llm.model_name", "mistral-small")
    assert OTLPSpanExporter().export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    assert Call.objects.get(project=project).model == "mistral-small"

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20dl_wrong_key")
    # 401 is final for the exporter: no retries, an immediate failure.
    assert (
        OTLPSpanExporter(timeout=5).export(memory.get_finished_spans()) == SpanExportResult.FAILURE
    )


# --- OpenLLMetry around the real openai client ----------------------------------------------


def test_openllmetry_openai_chat_over_protobuf(
    otlp_env: str, instrumented_openai: Any, project: Any
) -> None:
    client, _memory, provider = instrumented_openai
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    ask(client)
    assert provider.force_flush(5_000)

    assert FakeOpenAI.requests[0]["json"]["model"] == "gpt-4o-mini"
    assert_openai_call(only_llm_call(project))


def test_openllmetry_openai_chat_over_json(
    live_server: Any, ingest_key: str, instrumented_openai: Any, project: Any
) -> None:
    """The Python exporter speaks protobuf only: post the JSON form of the very request it
    would send (its own encoder), with hex ids as OTLP/JSON requires, gzip-compressed."""
    client, memory, _provider = instrumented_openai
    ask(client)
    request = encode_spans(memory.get_finished_spans())
    data = json.loads(json_format.MessageToJson(request))
    for resource_spans in data["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=gzip.compress(json.dumps(data).encode()),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {ingest_key}",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    call = only_llm_call(project)
    assert_openai_call(call)
    assert call.trace_id == data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]


def test_follow_up_prices_an_openllmetry_call(
    otlp_env: str, instrumented_openai: Any, project: Any
) -> None:
    """Cost is not sent by OpenLLMetry: the ingest follow-up computes it from model and tokens."""
    pytest.importorskip("apps.quality.pricing")
    from apps.ingest.services import calls_follow_up

    client, _memory, provider = instrumented_openai
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    ask(client)
    call = only_llm_call(project)
    calls_follow_up(project_id=project.pk, call_ids=[str(call.id)])
    call.refresh_from_db()
    assert call.cost_source == "computed"
    assert call.cost_usd is not None
    assert call.cost_usd > 0
