"""OTLP -> native mapping on hand-built payloads, and the /v1/traces answers (status codes,
partial success, limits, dedupe, tenant isolation)."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from typing import Any

import msgspec
import pytest
from django.test import override_settings
from google.protobuf import json_format
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from apps.ingest import otlp
from apps.ingest.schemas import CallBody, Event

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
ROOT = bytes.fromhex("eee19b7ec3c1b174")
CHILD = bytes.fromhex("eee19b7ec3c1b173")
T0 = 1_763_800_000_000_000_000  # 2025-11-22T08:26:40Z in ns


# --- builders -------------------------------------------------------------------------------


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(value)))
    raise TypeError(value)


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def make_span(
    attrs: dict[str, Any] | None = None,
    *,
    name: str = "openai.chat",
    trace_id: bytes = TRACE,
    span_id: bytes = CHILD,
    parent: bytes = ROOT,
    start: int = T0,
    end: int = T0 + 1_250_000_000,
    kind: Any = Span.SPAN_KIND_CLIENT,
    status: Status | None = None,
    events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=kvs(attrs or {}),
        status=status,
        events=[Span.Event(name=n, time_unix_nano=start, attributes=kvs(a)) for n, a in events],
    )


SERVICE = {
    "service.name": "support-bot",
    "service.version": "2.4.1",
    "deployment.environment.name": "production",
}


def make_request(
    *spans: Span, resource: dict[str, Any] | None = None, scope: str = "test.scope"
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(kvs(SERVICE if resource is None else resource))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.spans.extend(spans)
    return request


def only_call(request: ExportTraceServiceRequest) -> dict[str, Any]:
    mapping = otlp.map_request(request)
    assert mapping.rejections == []
    assert len(mapping.events) == 1
    event = mapping.events[0]
    # Whatever the mapping produces must pass the native contract unchanged.
    msgspec.convert(msgspec.convert(event, Event).body, CallBody)
    return event


def to_otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON as exporters write it: protobuf's JSON mapping with hex ids."""
    data: dict[str, Any] = json.loads(json_format.MessageToJson(request))
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return data


OPENLLMETRY_NEW = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.input.messages": json.dumps(
        [
            {"role": "system", "parts": [{"content": "Be brief.", "type": "text"}]},
            {"role": "user", "parts": [{"content": "Capital of France?", "type": "text"}]},
        ]
    ),
    "gen_ai.output.messages": json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"content": "Paris.", "type": "text"}],
                "finish_reason": "stop",
            }
        ]
    ),
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 3,
    "gen_ai.usage.total_tokens": 15,
    "gen_ai.usage.cache_read.input_tokens": 4,
    "gen_ai.usage.reasoning_tokens": 1,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.request.temperature": 0.2,
}


# --- mapping: GenAI conventions -------------------------------------------------------------


def test_new_genai_conventions_map_to_a_call() -> None:
    event = only_call(make_request(make_span(OPENLLMETRY_NEW)))
    body = event["body"]

    assert event["type"] == "call"
    assert event["id"] == str(uuid.uuid5(otlp.OTLP_SPAN_NAMESPACE, f"{TRACE.hex()}:{CHILD.hex()}"))
    assert body["parent_id"] == otlp.span_event_id(TRACE, ROOT)
    assert body["trace_id"] == TRACE.hex()
    assert body["kind"] == "llm"
    assert body["provider"] == "openai"
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["metadata"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert (body["input_tokens"], body["output_tokens"], body["total_tokens"]) == (12, 3, 15)
    assert (body["cached_tokens"], body["reasoning_tokens"]) == (4, 1)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert body["prompt"] == "Capital of France?"  # the last user message, as the SDK does
    assert body["response"] == "Paris."
    assert body["latency_ms"] == pytest.approx(1250.0)
    assert body["start_time"] == "2025-11-22T08:26:40+00:00"
    assert body["end_time"] == "2025-11-22T08:26:41.250000+00:00"
    assert body["status"] == "ok"
    assert body["release"] == "2.4.1"
    assert body["environment"] == "production"
    assert body["tags"] == ["service:support-bot"]
    meta = body["metadata"]
    assert meta["service.name"] == "support-bot"
    assert meta["otel.scope.name"] == "test.scope"
    assert meta["otel.span_kind"] == "client"
    assert meta["gen_ai.request.temperature"] == 0.2
    assert meta["gen_ai.response.finish_reasons"] == ["stop"]
    # Content and already-mapped attributes are not repeated in metadata.
    assert "gen_ai.input.messages" not in meta
    assert "gen_ai.usage.input_tokens" not in meta


def test_same_span_same_id_other_trace_other_id() -> None:
    a = only_call(make_request(make_span(OPENLLMETRY_NEW)))
    b = only_call(make_request(make_span(OPENLLMETRY_NEW)))
    c = only_call(make_request(make_span(OPENLLMETRY_NEW, trace_id=bytes(15) + b"\x01")))
    assert a["id"] == b["id"]
    assert a["id"] != c["id"]


def test_older_indexed_attributes_with_tool_calls() -> None:
    attrs = {
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": "claude-3-5-haiku",
        "llm.request.type": "chat",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are a weather bot.",
        "gen_ai.prompt.1.role": "user",
        # Older OpenLLMetry JSON-encoded multi-part content into the string.
        "gen_ai.prompt.1.content": json.dumps([{"type": "text", "text": "Weather in Oslo?"}]),
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.tool_calls.0.id": "call_1",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Oslo"}',
        "gen_ai.usage.prompt_tokens": 30,
        "gen_ai.usage.completion_tokens": 7,
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert body["provider"] == "Anthropic"
    assert body["model"] == "claude-3-5-haiku"
    assert body["kind"] == "llm"
    assert (body["input_tokens"], body["output_tokens"], body["total_tokens"]) == (30, 7, 37)
    assert body["messages"] == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Oslo?"},
    ]
    assert "response" not in body
    assert body["metadata"]["gen_ai.output.tool_calls"] == [
        {"name": "get_weather", "id": "call_1", "arguments": '{"city": "Oslo"}'}
    ]
    assert not any(k.startswith("gen_ai.prompt.") for k in body["metadata"])


def test_user_text_that_looks_like_json_is_kept_as_typed() -> None:
    attrs = {
        "gen_ai.request.model": "m",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": '{"a": 1}',
        "gen_ai.completion.0.content": "[1, 2]",
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert body["messages"] == [{"role": "user", "content": '{"a": 1}'}]
    assert body["response"] == "[1, 2]"


def test_message_events_and_choice() -> None:
    events: list[tuple[str, dict[str, Any]]] = [
        ("gen_ai.system.message", {"content": "Answer in French."}),
        ("gen_ai.user.message", {"gen_ai.event.content": json.dumps({"content": "Hello"})}),
        (
            "gen_ai.choice",
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Bonjour"},
            },
        ),
    ]
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
    }
    body = only_call(make_request(make_span(attrs, events=events)))["body"]
    assert body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
    assert body["response"] == "Bonjour"


def test_choice_event_with_json_message_and_legacy_content_events() -> None:
    events = [
        (
            "gen_ai.content.prompt",
            {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Hi"}])},
        ),
        ("gen_ai.content.completion", {"gen_ai.completion": "Hello there"}),
    ]
    body = only_call(make_request(make_span({"gen_ai.request.model": "m"}, events=events)))["body"]
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert body["response"] == "Hello there"

    choice = [("gen_ai.choice", {"message": json.dumps({"content": "Yes", "role": "assistant"})})]
    body = only_call(make_request(make_span({"gen_ai.request.model": "m"}, events=choice)))["body"]
    assert body["response"] == "Yes"


def test_structured_messages_as_anyvalue_and_system_instructions() -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": "gemini-2.0-flash",
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be kind."}]),
        # Newer SDKs send structure as AnyValue arrays/maps instead of JSON strings.
        "gen_ai.input.messages": [
            {
                "role": "user",
                "parts": [
                    {"type": "text", "content": "What is in this picture?"},
                    {
                        "type": "blob",
                        "modality": "image",
                        "mime_type": "image/png",
                        "content": "iVBORw0KGgo",
                    },
                ],
            }
        ],
        "gen_ai.output.messages": [
            {
                "role": "assistant",
                "parts": [
                    {"type": "reasoning", "content": "hmm"},
                    {"type": "text", "content": "A cat."},
                ],
            }
        ],
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "What is in this picture?\n[image/png]"},
    ]
    assert body["response"] == "A cat."
    assert "iVBORw0KGgo" not in json.dumps(body)


def test_tool_call_response_parts_become_tool_messages() -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": "c1",
                            "name": "weather",
                            "arguments": {"city": "Oslo"},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": "c1", "response": "rain"}],
                },
            ]
        ),
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert body["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"name": "weather", "id": "c1", "arguments": '{"city":"Oslo"}'}],
        },
        {"role": "tool", "content": "rain"},
    ]


def test_text_completion_and_embeddings_give_a_prompt() -> None:
    completion = {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.request.model": "gpt-3.5-turbo-instruct",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}]
        ),
    }
    body = only_call(make_request(make_span(completion)))["body"]
    assert (body["kind"], body["prompt"], body["response"]) == ("llm", "Say hi", "hi")
    assert "messages" not in body

    embedding = {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "doc"}]}]
        ),
        "gen_ai.usage.input_tokens": 1,
    }
    body = only_call(make_request(make_span(embedding)))["body"]
    assert (body["kind"], body["prompt"], body["input_tokens"]) == ("embedding", "doc", 1)


# --- mapping: OpenInference -----------------------------------------------------------------


def test_openinference_llm_span() -> None:
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.provider": "openai",
        "llm.token_count.prompt": 20,
        "llm.token_count.completion": 5,
        "llm.token_count.total": 25,
        "llm.token_count.prompt_details.cache_read": 8,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be terse.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "Ping?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Pong.",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "noop",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{}",
        "input.value": '{"messages": []}',
        "input.mime_type": "application/json",
        "output.value": "Pong.",
        "llm.cost.total": 0.0012,
        "session.id": "sess-9",
        "user.id": "user-42",
        "tag.tags": ["beta", "eu"],
        "metadata": '{"team": "support"}',
    }
    body = only_call(make_request(make_span(attrs, name="ChatCompletion")))["body"]
    assert (body["kind"], body["model"], body["provider"]) == ("llm", "gpt-4o", "openai")
    assert (
        body["input_tokens"],
        body["output_tokens"],
        body["total_tokens"],
        body["cached_tokens"],
    ) == (
        20,
        5,
        25,
        8,
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Ping?"},
    ]
    assert body["response"] == "Pong."
    assert body["prompt"] == "Ping?"
    assert body["cost_usd"] == pytest.approx(0.0012)
    assert (body["session_id"], body["user_id"]) == ("sess-9", "user-42")
    assert body["tags"] == ["service:support-bot", "beta", "eu"]
    assert body["metadata"]["team"] == "support"
    assert "metadata" not in body["metadata"]
    assert "input.value" not in body["metadata"]


def test_openinference_chain_and_retriever_are_context_without_content() -> None:
    chain = make_span(
        {
            "openinference.span.kind": "CHAIN",
            "input.value": "secret question",
            "output.value": "answer",
        },
        name="RAG pipeline",
        span_id=ROOT,
        parent=b"",
        kind=Span.SPAN_KIND_INTERNAL,
    )
    retriever = make_span({"openinference.span.kind": "RETRIEVER"}, name="retrieve", span_id=CHILD)
    mapping = otlp.map_request(make_request(chain, retriever))
    chain_body, retriever_body = (e["body"] for e in mapping.events)
    assert chain_body["kind"] == "chain"
    assert "parent_id" not in chain_body
    assert not {"prompt", "response", "messages"} & set(chain_body)
    assert "secret question" not in json.dumps(chain_body)
    assert retriever_body["kind"] == "retrieval"
    assert retriever_body["parent_id"] == mapping.events[0]["id"]


def test_llm_span_with_only_input_value_uses_it_as_prompt() -> None:
    attrs = {"openinference.span.kind": "LLM", "input.value": "Tell a joke", "output.value": "No."}
    body = only_call(make_request(make_span(attrs)))["body"]
    assert (body["prompt"], body["response"]) == ("Tell a joke", "No.")


# Recorded from openinference-instrumentation-openai 0.1.66 (a 400 answer) and
# openinference-instrumentation-anthropic 3.1.0.
OPENINFERENCE_OPENAI_FAILED = {
    "llm.system": "openai",
    "input.value": '{"model": "no-such-model", "messages": [{"role": "user", "content": "Hi"}]}',
    "input.mime_type": "application/json",
    "llm.invocation_parameters": '{"model": "no-such-model"}',
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.content": "Hi",
    "openinference.span.kind": "LLM",
}
OPENINFERENCE_ANTHROPIC = {
    "llm.provider": "anthropic",
    "llm.system": "anthropic",
    "llm.request.model_name": "claude-3-5-haiku",
    "llm.invocation_parameters": '{"max_tokens": 100}',
    "llm.response.model_name": "claude-3-5-haiku-20241022",
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.content": "Hi",
    "openinference.span.kind": "LLM",
}


def test_openinference_failed_call_keeps_the_requested_model() -> None:
    """No response, so no llm.model_name: the model asked for is in the invocation
    parameters."""
    body = only_call(make_request(make_span(OPENINFERENCE_OPENAI_FAILED)))["body"]
    assert body["model"] == "no-such-model"
    assert "llm.invocation_parameters" not in body["metadata"]


def test_openinference_request_and_response_model_names() -> None:
    body = only_call(make_request(make_span(OPENINFERENCE_ANTHROPIC)))["body"]
    assert (body["model"], body["provider"]) == ("claude-3-5-haiku-20241022", "anthropic")
    # The requested model stays beside the served one, as gen_ai.request.model does.
    assert body["metadata"]["llm.request.model_name"] == "claude-3-5-haiku"
    assert "llm.response.model_name" not in body["metadata"]

    only_request = {**OPENINFERENCE_ANTHROPIC}
    del only_request["llm.response.model_name"]
    body = only_call(make_request(make_span(only_request)))["body"]
    assert body["model"] == "claude-3-5-haiku"


# --- mapping: errors, non-LLM spans, resources ----------------------------------------------


def test_error_status_and_exception_event() -> None:
    span = make_span(
        {"gen_ai.request.model": "gpt-4o"},
        status=Status(code=Status.STATUS_CODE_ERROR, message=""),
        events=[
            (
                "exception",
                {"exception.type": "openai.RateLimitError", "exception.message": "429 slow down"},
            ),
        ],
    )
    body = only_call(make_request(span))["body"]
    assert body["status"] == "error"
    assert body["error"] == "429 slow down"
    assert body["error_type"] == "openai.RateLimitError"


def test_error_type_attribute_alone_is_an_error_and_status_message_wins() -> None:
    body = only_call(
        make_request(make_span({"gen_ai.request.model": "m", "error.type": "timeout"}))
    )["body"]
    assert (body["status"], body["error"], body["error_type"]) == ("error", "timeout", "timeout")

    span = make_span(
        {"gen_ai.request.model": "m"},
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream 500"),
        events=[("exception", {"exception.type": "HTTPError", "exception.message": "boom"})],
    )
    body = only_call(make_request(span))["body"]
    assert (body["error"], body["error_type"]) == ("upstream 500", "HTTPError")


def test_error_type_written_as_a_class_repr_is_its_dotted_name() -> None:
    """Recorded from opentelemetry-instrumentation-openai-v2 2.4b0 with
    opentelemetry-util-genai 1.1b0, answered 400."""
    span = make_span(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "no-such-model",
            "gen_ai.provider.name": "openai",
            "error.type": "<class 'openai.BadRequestError'>",
        },
        status=Status(
            code=Status.STATUS_CODE_ERROR,
            message="Error code: 400 - The model `no-such-model` does not exist",
        ),
    )
    body = only_call(make_request(span))["body"]
    assert body["status"] == "error"
    assert body["error_type"] == "openai.BadRequestError"
    assert body["error"].startswith("Error code: 400")


def test_exception_event_without_error_status_stays_ok() -> None:
    span = make_span(
        {"gen_ai.request.model": "m"}, events=[("exception", {"exception.message": "retried"})]
    )
    assert only_call(make_request(span))["body"]["status"] == "ok"


def test_non_llm_span_is_kept_as_trace_context() -> None:
    span = make_span(
        {
            "http.request.method": "POST",
            "url.full": "https://api.example.com/v1",
            "http.response.status_code": 200,
        },
        name="POST /chat",
        kind=Span.SPAN_KIND_SERVER,
        parent=b"",
    )
    body = only_call(make_request(span))["body"]
    assert body["kind"] == "span"
    assert body["name"] == "POST /chat"
    assert "model" not in body
    assert "prompt" not in body
    assert "messages" not in body
    assert body["metadata"]["http.request.method"] == "POST"
    assert body["metadata"]["http.response.status_code"] == 200
    assert body["metadata"]["otel.span_kind"] == "server"


@pytest.mark.parametrize(
    ("attrs", "kind"),
    [
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}, "tool"),
        ({"gen_ai.operation.name": "invoke_agent"}, "agent"),
        ({"traceloop.span.kind": "workflow"}, "chain"),
        ({"traceloop.span.kind": "tool"}, "tool"),
        ({"openinference.span.kind": "EMBEDDING", "embedding.model_name": "e5"}, "embedding"),
        ({"openinference.span.kind": "GUARDRAIL"}, "span"),
        ({"gen_ai.usage.input_tokens": 3}, "llm"),
    ],
)
def test_kinds(attrs: dict[str, Any], kind: str) -> None:
    assert only_call(make_request(make_span(attrs)))["body"]["kind"] == kind


def test_resource_fallbacks() -> None:
    resource = {"service.name": "checkout", "deployment.environment": "staging"}
    body = only_call(make_request(make_span({}), resource=resource))["body"]
    assert (body["release"], body["environment"], body["tags"]) == (
        "checkout",
        "staging",
        ["service:checkout"],
    )

    body = only_call(
        make_request(make_span({}), resource={"service.name": "unknown_service:python"})
    )["body"]
    assert "release" not in body
    assert "tags" not in body


def test_metadata_is_bounded() -> None:
    attrs = {f"custom.attr{i:03d}": "x" * 5000 for i in range(200)}
    meta = only_call(make_request(make_span(attrs)))["body"]["metadata"]
    assert len(meta) <= otlp.METADATA_MAX_KEYS + 1
    assert meta[otlp.METADATA_TRUNCATED_KEY] is True
    assert all(
        len(v) <= otlp.METADATA_MAX_VALUE_CHARS + 3 for v in meta.values() if isinstance(v, str)
    )
    assert len(json.dumps(meta)) < 80_000


def test_negative_or_huge_token_counts_are_dropped_not_fatal() -> None:
    attrs = {
        "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": -1,
        "gen_ai.usage.output_tokens": 2**40,
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert "input_tokens" not in body
    assert "output_tokens" not in body


def test_end_before_start_keeps_the_span_without_latency() -> None:
    body = only_call(make_request(make_span({}, end=T0 - 1)))["body"]
    assert "latency_ms" not in body
    assert "end_time" not in body


def test_deeply_nested_attributes_reject_only_that_span() -> None:
    deep = "[" * 50_000 + "]" * 50_000
    nested: Any = "x"
    for _ in range(40):
        nested = [nested]
    spans = [
        make_span({"gen_ai.request.model": "m", "gen_ai.input.messages": deep}),
        make_span({"gen_ai.request.model": "m", "custom": nested}, span_id=ROOT, parent=b""),
    ]
    request = otlp.decode_protobuf(make_request(*spans).SerializeToString())
    mapping = otlp.map_request(request)
    assert len(mapping.events) + len(mapping.rejections) == 2
    assert mapping.events[0]["body"]["model"] == "m"


# --- mapping: bad ids -----------------------------------------------------------------------


def test_bad_ids_and_missing_start_are_rejected_per_span() -> None:
    spans = [
        make_span({}, trace_id=bytes(16)),
        make_span({}, span_id=b"\x01\x02"),
        make_span({}, parent=b"\x01"),
        make_span({}, start=0),
        make_span({}, span_id=bytes.fromhex("00000000000000aa")),
    ]
    mapping = otlp.map_request(make_request(*spans))
    assert [r.where for r in mapping.rejections] == [
        f"resourceSpans[0].scopeSpans[0].spans[{i}]" for i in range(4)
    ]
    messages = [r.message for r in mapping.rejections]
    assert messages[0].startswith("traceId:")
    assert messages[1].startswith("spanId:")
    assert messages[2].startswith("parentSpanId:")
    assert messages[3].startswith("startTimeUnixNano:")
    assert len(mapping.events) == 1
    assert mapping.wheres == ["resourceSpans[0].scopeSpans[0].spans[4]"]


# --- decoding -------------------------------------------------------------------------------


def test_json_and_protobuf_decode_to_the_same_events() -> None:
    request = make_request(
        make_span(OPENLLMETRY_NEW), make_span({"x": 1}, span_id=ROOT, parent=b"")
    )
    from_pb = otlp.map_request(otlp.decode_protobuf(request.SerializeToString()))
    data = to_otlp_json(request)
    span_json = data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span_json["traceId"] == TRACE.hex()
    assert isinstance(span_json["startTimeUnixNano"], str)  # int64 as a string
    span_json["kind"] = 3  # enums as integers, as the OTLP/JSON spec asks
    data["unknownField"] = {"ignored": True}
    from_json = otlp.map_request(otlp.decode_json(json.dumps(data).encode()))
    assert from_json.events == from_pb.events
    assert from_json.events[0]["body"]["trace_id"] == TRACE.hex()


def test_json_with_base64_ids_is_tolerated_and_bad_hex_rejected() -> None:
    request = make_request(make_span({}), make_span({}, span_id=ROOT, parent=b""))
    data = json.loads(json_format.MessageToJson(request))  # ids in base64, as protobuf writes them
    data["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "zz" * 8
    mapping = otlp.map_request(otlp.decode_json(json.dumps(data).encode()))
    assert mapping.events[0]["body"]["trace_id"] == TRACE.hex()
    assert [r.message.split(":")[0] for r in mapping.rejections] == ["spanId"]


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"resourceSpans": "nope"}', b"\xff\xfe"]
)
def test_undecodable_json(body: bytes) -> None:
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.decode_json(body)


def test_undecodable_protobuf() -> None:
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f garbage")


def test_answers_encode_as_otlp_expects() -> None:
    raw = otlp.encode_status(code=otlp.RPC_INVALID_ARGUMENT, message="body: bad", as_json=False)
    status = status_pb2.Status()
    status.ParseFromString(raw)
    assert (status.code, status.message) == (3, "body: bad")
    assert json.loads(otlp.encode_status(code=16, message="no", as_json=True)) == {
        "code": 16,
        "message": "no",
    }

    assert otlp.encode_response(rejected=0, message="", as_json=False) == b""
    assert json.loads(otlp.encode_response(rejected=0, message="", as_json=True)) == {}
    partial = ExportTraceServiceResponse()
    partial.ParseFromString(otlp.encode_response(rejected=2, message="2 bad", as_json=False))
    assert (partial.partial_success.rejected_spans, partial.partial_success.error_message) == (
        2,
        "2 bad",
    )
    assert json.loads(otlp.encode_response(rejected=2, message="2 bad", as_json=True)) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 bad"}
    }


def test_rejection_summary_is_bounded() -> None:
    rejections = [otlp.SpanRejection(f"spans[{i}]", "spanId: bad") for i in range(40)]
    text = otlp.summarize_rejections(rejections)
    assert text.startswith("40 span(s) rejected: spans[0]: spanId: bad")
    assert text.endswith("and 35 more")


# --- the endpoint ---------------------------------------------------------------------------


def post(
    client: Any,
    body: bytes,
    *,
    key: str | None,
    content_type: str = "application/x-protobuf",
    **extra: str,
) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.generic("POST", "/v1/traces", body, content_type=content_type, **headers, **extra)


def stored(project: Any) -> list[Any]:
    from apps.traces.models import Call

    return list(Call.objects.filter(project=project).order_by("start_time", "name"))


@pytest.mark.django_db
def test_protobuf_export_is_stored_once(client: Any, project: Any, ingest_key: str) -> None:
    request = make_request(
        make_span(OPENLLMETRY_NEW), make_span({}, name="root", span_id=ROOT, parent=b"")
    )
    for _ in range(2):
        response = post(client, request.SerializeToString(), key=ingest_key)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-protobuf"
        answer = ExportTraceServiceResponse()
        answer.ParseFromString(response.content)
        assert not answer.HasField("partial_success")
    calls = {c.name: c for c in stored(project)}
    assert set(calls) == {"root", "openai.chat"}
    chat = calls["openai.chat"]
    assert (chat.model, chat.input_tokens, chat.output_tokens, chat.response) == (
        "gpt-4o-mini-2024-07-18",
        12,
        3,
        "Paris.",
    )
    assert chat.parent_id == calls["root"].id
    assert chat.trace_id == TRACE.hex()
    assert (chat.release, chat.environment) == ("2.4.1", "production")


@pytest.mark.django_db
def test_json_gzip_with_partial_success(client: Any, project: Any, ingest_key: str) -> None:
    request = make_request(
        make_span(OPENLLMETRY_NEW),
        make_span({}, span_id=bytes(8)),
        # Over the native length limit: cut, not rejected.
        make_span({"gen_ai.request.model": "m" * 300}, span_id=ROOT, parent=b""),
    )
    body = gzip.compress(json.dumps(to_otlp_json(request)).encode())
    response = post(
        client, body, key=ingest_key, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "spans[1]: spanId" in partial["errorMessage"]
    assert sorted(len(c.model) for c in stored(project)) == [22, 255]


@pytest.mark.django_db
def test_auth_and_tenant_isolation(
    client: Any, project: Any, other_project: Any, ingest_key: str
) -> None:
    from apps.accounts.services import api_key_create

    body = make_request(make_span(OPENLLMETRY_NEW)).SerializeToString()
    missing = post(client, body, key=None)
    assert missing.status_code == 401
    status = status_pb2.Status()
    status.ParseFromString(missing.content)
    assert status.code == otlp.RPC_UNAUTHENTICATED
    assert post(client, body, key="dl_nope_nope").status_code == 401

    read_only = api_key_create(project=project, name="r", scopes=["read"]).raw
    assert post(client, body, key=read_only).status_code == 403

    other_key = api_key_create(project=other_project, name="o", scopes=["ingest"]).raw
    assert post(client, body, key=other_key).status_code == 200
    assert post(client, body, key=ingest_key).status_code == 200
    # The same span id in two tenants is two calls, one each; neither sees the other's.
    assert len(stored(project)) == 1
    assert len(stored(other_project)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-protobuf", b"\x0a\xff\xff\xff\xff\x0f garbage", 400),
        ("application/json", b"{not json", 400),
        ("text/plain", b"hello", 415),
        ("", b"hello", 415),
    ],
)
def test_bad_bodies(
    client: Any, ingest_key: str, content_type: str, body: bytes, status: int
) -> None:
    response = post(client, body, key=ingest_key, content_type=content_type)
    assert response.status_code == status
    if content_type == "application/x-protobuf":
        parsed = status_pb2.Status()
        parsed.ParseFromString(response.content)
        assert parsed.message.startswith("body:")
    else:
        assert response.json()["message"]


@pytest.mark.django_db
def test_unsupported_encoding_is_415(client: Any, ingest_key: str) -> None:
    body = make_request(make_span({})).SerializeToString()
    assert post(client, body, key=ingest_key, HTTP_CONTENT_ENCODING="br").status_code == 415


@pytest.mark.django_db
def test_too_large_is_413_also_after_gzip(client: Any, project: Any, ingest_key: str) -> None:
    big = make_request(
        make_span({"gen_ai.request.model": "m", "pad": "x" * 50_000})
    ).SerializeToString()
    with override_settings(INGEST_MAX_BODY_BYTES=10_000):
        assert post(client, big, key=ingest_key).status_code == 413
        bomb = gzip.compress(big)
        assert len(bomb) < 10_000
        response = post(client, bomb, key=ingest_key, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413
    assert stored(project) == []


@pytest.mark.django_db
def test_rate_limited_is_429_with_retry_after(client: Any, project: Any, ingest_key: str) -> None:
    import redis
    from django.conf import settings

    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("the rate limiter needs Redis (it fails open without it)")
    body = make_request(
        make_span({}, span_id=ROOT, parent=b""), make_span({}, span_id=CHILD)
    ).SerializeToString()
    with override_settings(INGEST_RATE_LIMIT_EVENTS_PER_S=0.5, INGEST_RATE_LIMIT_BURST=1):
        assert post(client, body, key=ingest_key).status_code == 200
        limited = post(client, body, key=ingest_key)
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1


@pytest.mark.django_db
def test_get_is_405(client: Any, ingest_key: str) -> None:
    response = client.get("/v1/traces", HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    assert response.status_code == 405


# --- mapping: Logfire and Pydantic AI (recorded from logfire 5.4, pydantic-ai-slim 2.78) ------

LOGFIRE_STREAM_REQUEST = {
    "request_data": '{"model":"gpt-4o-mini"}',
    "gen_ai.system": "openai",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.operation.name": "chat",
    "gen_ai.input.messages": json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}]
    ),
    "async": False,
    "logfire.msg_template": "Chat Completion with {request_data[model]!r}",
    "logfire.msg": "Chat Completion with 'gpt-4o-mini'",
    "logfire.json_schema": '{"type":"object","properties":{"request_data":{"type":"object"}}}',
    "logfire.tags": ["LLM"],
    "logfire.span_type": "span",
    "gen_ai.response.model": "gpt-4o-mini",
}
LOGFIRE_STREAM_OUTCOME = {
    **LOGFIRE_STREAM_REQUEST,
    "logfire.span_type": "log",
    "logfire.level_num": 9,
    "logfire.msg_template": "streaming response from {request_data[model]!r} took {duration:.2f}s",
    "duration": 0.75,
    "gen_ai.output.messages": json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}]}]
    ),
    "gen_ai.response.id": "chatcmpl-2",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 3,
    "operation.cost": 6.975e-06,
}


def test_logfire_streamed_call_counts_once_with_the_streams_duration() -> None:
    """Logfire ends a streamed call's request span when the stream opens (no output, no usage)
    and logs the outcome as a zero-length sibling: the outcome is the model call."""
    request = make_span(LOGFIRE_STREAM_REQUEST, name="Chat Completion with {request_data[model]!r}")
    outcome = make_span(
        LOGFIRE_STREAM_OUTCOME,
        span_id=bytes.fromhex("eee19b7ec3c1b172"),
        name="streaming response from {request_data[model]!r} took {duration:.2f}s",
        start=T0 + 2_000_000_000,
        end=T0 + 2_000_000_000,
        kind=Span.SPAN_KIND_INTERNAL,
    )
    mapping = otlp.map_request(make_request(request, outcome, scope="logfire.openai"))
    first_half, call = (event["body"] for event in mapping.events)
    assert first_half["kind"] == "span"
    assert "messages" not in first_half
    assert call["kind"] == "llm"
    assert call["model"] == "gpt-4o-mini-2024-07-18"
    assert call["response"] == "Paris."
    assert (call["input_tokens"], call["output_tokens"]) == (12, 3)
    assert call["latency_ms"] == 750
    assert call["start_time"] == "2025-11-22T08:26:41.250000+00:00"
    assert call["cost_usd"] == pytest.approx(6.975e-06)
    assert "logfire.json_schema" not in call["metadata"]


def test_logfire_failed_or_answered_request_span_stays_the_model_call() -> None:
    failed = make_span(
        LOGFIRE_STREAM_REQUEST, status=Status(code=Status.STATUS_CODE_ERROR, message="boom")
    )
    assert only_call(make_request(failed, scope="logfire.openai"))["body"]["kind"] == "llm"
    answered = {**LOGFIRE_STREAM_REQUEST, "gen_ai.usage.input_tokens": 12}
    assert only_call(make_request(make_span(answered), scope="logfire.openai"))["body"]["kind"] == (
        "llm"
    )
    # Another instrumentation's span with no output yet is not Logfire's stream request.
    assert only_call(make_request(make_span(LOGFIRE_STREAM_REQUEST)))["body"]["kind"] == "llm"


def test_logfire_version_1_request_and_response_data() -> None:
    attrs = {
        "request_data": json.dumps(
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"},
                ],
            }
        ),
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "response_data": json.dumps(
            {"message": {"role": "assistant", "content": "Paris.", "tool_calls": None}}
        ),
        "logfire.span_type": "span",
    }
    body = only_call(make_request(make_span(attrs), scope="logfire.openai"))["body"]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert body["response"] == "Paris."
    assert not {"request_data", "response_data"} & set(body["metadata"])
    # version=1 streams say so in request_data.
    streamed = {**attrs, "request_data": json.dumps({"model": "m", "stream": True})}
    del streamed["response_data"]
    body = only_call(make_request(make_span(streamed), scope="logfire.openai"))["body"]
    assert body["kind"] == "span"


def test_pydantic_ai_tool_result_parts_and_agent_content_out_of_metadata() -> None:
    """Pydantic AI's tool_call_response parts carry ``result`` (not ``response``), on a
    ``user`` message before format version 6 and a ``tool`` one after."""
    for role in ("user", "tool"):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.input.messages": json.dumps(
                [
                    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "call_1",
                                "name": "get_weather",
                                "arguments": '{"city":"Paris"}',
                            }
                        ],
                        "finish_reason": "tool_call",
                    },
                    {
                        "role": role,
                        "parts": [
                            {
                                "type": "tool_call_response",
                                "id": "call_1",
                                "name": "get_weather",
                                "result": "Sunny in Paris",
                            }
                        ],
                    },
                ]
            ),
            "model_request_parameters": json.dumps({"function_tools": [{"name": "get_weather"}]}),
            "gen_ai.client.operation.time_to_first_chunk": 0.25,
        }
        body = only_call(make_request(make_span(attrs), scope="pydantic-ai"))["body"]
        assert body["messages"][-1] == {"role": "tool", "content": "Sunny in Paris"}
        assert body["prompt"] == "Weather in Paris?"
        assert body["ttft_ms"] == 250
        assert "model_request_parameters" not in body["metadata"]
    agent = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "agent",
        "final_result": "Sunny.",
        "pydantic_ai.all_messages": attrs["gen_ai.input.messages"],
        "gen_ai.aggregated_usage.input_tokens": 42,
    }
    body = only_call(make_request(make_span(agent), scope="pydantic-ai"))["body"]
    assert body["kind"] == "agent"
    assert "input_tokens" not in body
    assert not {"final_result", "pydantic_ai.all_messages"} & set(body["metadata"])


def test_pydantic_ai_version_2_tool_span() -> None:
    attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "tool_arguments": '{"city":"Paris"}',
        "tool_response": "Sunny in Paris",
        "logfire.msg": "running tool: get_weather",
    }
    body = only_call(make_request(make_span(attrs, name="running tool"), scope="pydantic-ai"))[
        "body"
    ]
    assert body["kind"] == "tool"
    assert (body["prompt"], body["response"]) == ('{"city":"Paris"}', "Sunny in Paris")
    assert not {"tool_arguments", "tool_response"} & set(body["metadata"])
