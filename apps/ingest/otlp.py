"""OTLP traces -> native call events: decoding, mapping and the OTLP/HTTP answers. Pure.

Every OTLP span becomes one native ``call`` event (see ``apps/ingest/schemas.py``); the write path
is the native one (``apps.ingest.services.ingest_events``), so limits, tenant scoping, dedupe and
per-item errors are the same as for ``POST /api/v1/ingest``.

Specs this module follows, and depends on the quirks of:
- OTLP/HTTP (bodies, JSON mapping, answers): https://opentelemetry.io/docs/specs/otlp/#otlphttp
- GenAI semantic conventions (spans, events, ``gen_ai.input.messages`` and its JSON schema):
  https://opentelemetry.io/docs/specs/semconv/gen-ai/
- OpenLLMetry's older indexed attributes ``gen_ai.prompt.N.role|content``:
  https://github.com/traceloop/openllmetry (``opentelemetry-semantic-conventions-ai``)
- OpenInference: https://github.com/Arize-ai/openinference/blob/main/spec/semantic_conventions.md

Mapping (the first attribute present wins; docs/otlp.md has the same as a table):

- id: uuid5(OTLP_SPAN_NAMESPACE, "<trace hex>:<span hex>"), so a re-sent span is stored once;
  parent_id: the same from parentSpanId; trace_id: 32 lowercase hex characters; name: span name.
- kind: gen_ai.operation.name, openinference.span.kind, traceloop.span.kind, llm.request.type;
  else "llm" when the span names a model or counts tokens; else "span" (trace context only).
- provider: gen_ai.provider.name, gen_ai.system, llm.provider, llm.system.
- model: gen_ai.response.model, gen_ai.request.model, llm.model_name, embedding.model_name.
- input_tokens: gen_ai.usage.input_tokens, gen_ai.usage.prompt_tokens, llm.token_count.prompt;
  output_tokens: gen_ai.usage.output_tokens, gen_ai.usage.completion_tokens,
  llm.token_count.completion; total_tokens: gen_ai.usage.total_tokens, llm.usage.total_tokens,
  llm.token_count.total, else input + output; cached_tokens: gen_ai.usage.cache_read.input_tokens,
  gen_ai.usage.cache_read_input_tokens, llm.token_count.prompt_details.cache_read;
  reasoning_tokens: gen_ai.usage.reasoning_tokens, llm.token_count.completion_details.reasoning.
- cost_usd: gen_ai.usage.cost, llm.cost.total (else computed later by the quality worker).
- Content, LLM and embedding spans only, from the first source that has any:
  gen_ai.input.messages / gen_ai.output.messages (+ gen_ai.system_instructions); span events
  gen_ai.{system,user,assistant,tool}.message, gen_ai.choice, gen_ai.content.prompt|completion,
  gen_ai.client.inference.operation.details; gen_ai.prompt.N.* / gen_ai.completion.N.*;
  llm.input_messages.N.message.* / llm.output_messages.N.message.*; input.value / output.value.
  Inputs -> messages (prompt for text completions and embeddings); outputs -> response.
- latency_ms: end - start; start_time / end_time: ISO-8601 UTC.
- status "error" when status.code is ERROR or error.type is set; error: status.message, else the
  last "exception" event's exception.message; error_type: error.type, else exception.type.
- session_id: gen_ai.conversation.id, session.id, traceloop.association.properties.session_id;
  user_id: user.id, enduser.id, traceloop.association.properties.user_id, gen_ai.user.
- Resource: release = service.version, else service.name; environment =
  deployment.environment.name, deployment.environment; tags "service:<service.name>" (and
  OpenInference tag.tags); metadata: service.name, otel.scope.name, otel.span_kind and the
  other non-content attributes, bounded (METADATA_MAX_KEYS keys, METADATA_MAX_VALUE_CHARS
  characters a value).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

# Fixed forever: changing it would store every re-sent span a second time.
# = uuid5(NAMESPACE_URL, "https://driftline.dev/otlp/span")
OTLP_SPAN_NAMESPACE = uuid.UUID("b6f0cee1-ab8a-5d96-a902-eb093f367130")

PROTOBUF_CONTENT_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_CONTENT_TYPE = "application/json"

METADATA_MAX_KEYS = 64
METADATA_MAX_VALUE_CHARS = 1024
METADATA_TRUNCATED_KEY = "driftline.metadata_truncated"
MAX_TAGS = 32
# A rejection summary names this many spans; the count covers all of them.
MAX_ERRORS_IN_MESSAGE = 5

# google.rpc.Code values used in error bodies.
RPC_INVALID_ARGUMENT = 3
RPC_UNAUTHENTICATED = 16
RPC_PERMISSION_DENIED = 7
RPC_RESOURCE_EXHAUSTED = 8
RPC_UNIMPLEMENTED = 12
RPC_INTERNAL = 13


class OtlpDecodeError(Exception):
    """The body is not an ExportTraceServiceRequest in the announced encoding (answer 400)."""


@dataclass(frozen=True)
class SpanRejection:
    """A span that could not become an event; ``where`` names it in the request."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class OtlpMapping:
    events: list[dict[str, Any]] = field(default_factory=list)
    # wheres[i] names the span that became events[i], for the service's per-event errors.
    wheres: list[str] = field(default_factory=list)
    rejections: list[SpanRejection] = field(default_factory=list)


# --- decoding -------------------------------------------------------------------------------


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise OtlpDecodeError(
            f"body: not an ExportTraceServiceRequest in protobuf ({exc})"
        ) from exc
    return request


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    """OTLP/JSON: protobuf's JSON mapping except that trace and span ids are hex, not base64.

    Enum values may be integers or names and int64 values strings or numbers (protojson reads
    both); unknown fields are ignored, as the spec requires of receivers.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpDecodeError(f"body: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise OtlpDecodeError("body: a JSON object (ExportTraceServiceRequest) is required")
    _hex_ids_to_base64(data)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body: {exc}") from exc
    return request


# Both spellings: protojson accepts the original field names as well as lowerCamelCase.
_ID_FIELDS = {
    "traceId": 16,
    "spanId": 8,
    "parentSpanId": 8,
    "trace_id": 16,
    "span_id": 8,
    "parent_span_id": 8,
}


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    """Rewrite hex ids in place into the base64 protojson expects.

    An id that is neither hex nor base64 of the right size becomes empty, which the mapping
    rejects for that span alone (partial success) rather than failing the whole request.
    """
    for resource_spans in _dicts(data.get("resourceSpans", data.get("resource_spans"))):
        for scope_spans in _dicts(
            resource_spans.get("scopeSpans", resource_spans.get("scope_spans"))
        ):
            for span in _dicts(scope_spans.get("spans")):
                _fix_ids(span)
                for link in _dicts(span.get("links")):
                    _fix_ids(link)


def _fix_ids(obj: dict[str, Any]) -> None:
    for key, size in _ID_FIELDS.items():
        value = obj.get(key)
        if isinstance(value, str):
            obj[key] = base64.b64encode(_id_bytes(value, size)).decode()


def _id_bytes(value: str, size: int) -> bytes:
    if value == "":
        return b""
    if len(value) == 2 * size:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    # Tolerated: protobuf's own JSON mapping (MessageToJson) writes ids as base64.
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""
    return raw if len(raw) == size else b""


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# --- answers --------------------------------------------------------------------------------


def encode_response(*, rejected: int, message: str, as_json: bool) -> bytes:
    """ExportTraceServiceResponse; partial_success only when something was rejected."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if as_json:
        return json_format.MessageToJson(response, indent=None).encode()
    return bytes(response.SerializeToString())


def encode_status(*, code: int, message: str, as_json: bool) -> bytes:
    """A google.rpc.Status, the body of every OTLP/HTTP error answer.

    Hand-encoded (field 1 int32 code, field 2 string message) so the server does not need
    googleapis-common-protos for two fields.
    """
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def summarize_rejections(rejections: list[SpanRejection]) -> str:
    shown = "; ".join(str(r) for r in rejections[:MAX_ERRORS_IN_MESSAGE])
    more = len(rejections) - MAX_ERRORS_IN_MESSAGE
    suffix = f"; and {more} more" if more > 0 else ""
    return f"{len(rejections)} span(s) rejected: {shown}{suffix}"


# --- ids ------------------------------------------------------------------------------------


def span_event_id(trace_id: bytes, span_id: bytes) -> str:
    """The native event id of a span: stable across re-sends, distinct across traces."""
    return str(uuid.uuid5(OTLP_SPAN_NAMESPACE, f"{trace_id.hex()}:{span_id.hex()}"))


def _valid_id(value: bytes, size: int) -> bool:
    return len(value) == size and any(value)


# --- mapping --------------------------------------------------------------------------------


def map_request(request: ExportTraceServiceRequest) -> OtlpMapping:
    """All spans of a request as native call events, and the spans that cannot be events."""
    mapping = OtlpMapping()
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes)
        context = _ResourceContext.from_attributes(resource)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope_name = scope_spans.scope.name
            for i, span in enumerate(scope_spans.spans):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                problem = _span_problem(span)
                if problem:
                    mapping.rejections.append(SpanRejection(where, problem))
                    continue
                try:
                    event = map_span(span, context=context, scope_name=scope_name)
                except RecursionError:
                    # Attribute values are caller-controlled JSON/AnyValue trees.
                    mapping.rejections.append(SpanRejection(where, "attributes: nested too deeply"))
                    continue
                mapping.events.append(event)
                mapping.wheres.append(where)
    return mapping


def _span_problem(span: Span) -> str | None:
    if not _valid_id(span.trace_id, 16):
        return "traceId: must be 16 bytes (32 hex characters), not all zero"
    if not _valid_id(span.span_id, 8):
        return "spanId: must be 8 bytes (16 hex characters), not all zero"
    if span.parent_span_id and not _valid_id(span.parent_span_id, 8):
        return "parentSpanId: must be empty or 8 bytes (16 hex characters)"
    if span.start_time_unix_nano == 0:
        return "startTimeUnixNano: required"
    return None


@dataclass(frozen=True)
class _ResourceContext:
    service_name: str
    release: str
    environment: str

    @classmethod
    def from_attributes(cls, resource: Mapping[str, Any]) -> _ResourceContext:
        service_name = _str(resource.get("service.name"))
        # The SDK's default when nobody named the service says nothing about the release.
        if service_name.startswith("unknown_service"):
            service_name = ""
        return cls(
            service_name=service_name,
            release=_str(resource.get("service.version")) or service_name,
            environment=_str(
                _first(resource, "deployment.environment.name", "deployment.environment")
            ),
        )


def map_span(span: Span, *, context: _ResourceContext, scope_name: str = "") -> dict[str, Any]:
    """One valid span (see ``_span_problem``) as a native call event."""
    attrs = _attributes(span.attributes)
    used: set[str] = set()

    def pick(*keys: str) -> Any:
        used.update(keys)
        return _first(attrs, *keys)

    kind = _kind(attrs, span, used)
    body: dict[str, Any] = {
        "trace_id": span.trace_id.hex(),
        "name": span.name[:255],
        "kind": kind,
        "start_time": _iso(span.start_time_unix_nano),
    }
    if span.parent_span_id:
        body["parent_id"] = span_event_id(span.trace_id, span.parent_span_id)
    if span.end_time_unix_nano >= span.start_time_unix_nano:
        body["end_time"] = _iso(span.end_time_unix_nano)
        body["latency_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6

    _set_str(
        body,
        "provider",
        pick("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
        64,
    )
    _set_str(
        body,
        "model",
        pick(
            "gen_ai.response.model",
            "gen_ai.request.model",
            "llm.model_name",
            "embedding.model_name",
        ),
        255,
    )
    _set_tokens(body, pick)
    cost = _number(pick("gen_ai.usage.cost", "llm.cost.total"))
    if cost is not None and cost >= 0:
        body["cost_usd"] = float(cost)
    _set_str(
        body,
        "session_id",
        pick("gen_ai.conversation.id", "session.id", "traceloop.association.properties.session_id"),
        255,
    )
    _set_str(
        body,
        "user_id",
        # gen_ai.user: OpenLLMetry's copy of OpenAI's `user` request parameter.
        pick("user.id", "enduser.id", "traceloop.association.properties.user_id", "gen_ai.user"),
        255,
    )
    tool_calls = _set_content(body, attrs, span) if kind in ("llm", "embedding") else []
    _set_status(body, attrs, span, used)

    if context.release:
        body["release"] = context.release[:128]
    if context.environment:
        body["environment"] = context.environment[:64]
    tags = [f"service:{context.service_name}"[:128]] if context.service_name else []
    used.add("tag.tags")
    tags += [t[:128] for t in _str_list(attrs.get("tag.tags")) if t]
    if tags:
        body["tags"] = list(dict.fromkeys(tags))[:MAX_TAGS]
    body["metadata"] = _metadata(attrs, used, span=span, context=context, scope_name=scope_name)
    if tool_calls:
        # response is text; the calls the model asked for are kept beside it.
        body["metadata"]["gen_ai.output.tool_calls"] = _bounded(tool_calls)
    return {
        "type": "call",
        "id": span_event_id(span.trace_id, span.span_id),
        "body": body,
    }


# gen_ai.operation.name values: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/
_OPERATION_KINDS = {
    "chat": "llm",
    "text_completion": "llm",
    "completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "embedding": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "chain",
    "retrieval": "retrieval",
}
_OPENINFERENCE_KINDS = {
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "CHAIN": "chain",
    "TOOL": "tool",
    "AGENT": "agent",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
}
_TRACELOOP_KINDS = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
_LLM_REQUEST_TYPES = {"chat": "llm", "completion": "llm", "embedding": "embedding"}


def _kind(attrs: Mapping[str, Any], span: Span, used: set[str]) -> str:
    used.update(
        (
            "gen_ai.operation.name",
            "openinference.span.kind",
            "traceloop.span.kind",
            "llm.request.type",
        )
    )
    for key, table in (
        ("gen_ai.operation.name", _OPERATION_KINDS),
        ("openinference.span.kind", _OPENINFERENCE_KINDS),
        ("traceloop.span.kind", _TRACELOOP_KINDS),
        ("llm.request.type", _LLM_REQUEST_TYPES),
    ):
        value = _str(attrs.get(key))
        kind = table.get(value.lower()) or table.get(value.upper())
        if kind:
            return kind
    if any(
        key in attrs
        for key in (
            "gen_ai.request.model",
            "gen_ai.response.model",
            "llm.model_name",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.token_count.prompt",
        )
    ):
        return "llm"
    return "span"


_TOKEN_FIELDS: dict[str, tuple[str, ...]] = {
    "input_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "total_tokens": (
        "gen_ai.usage.total_tokens",
        "llm.usage.total_tokens",
        "llm.token_count.total",
    ),
    "cached_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.output_tokens.reasoning",
        "llm.token_count.completion_details.reasoning",
    ),
}
_MAX_TOKENS = 2**31 - 1


def _set_tokens(body: dict[str, Any], pick: Callable[..., Any]) -> None:
    for name, keys in _TOKEN_FIELDS.items():
        value = _number(pick(*keys))
        if value is not None and 0 <= value <= _MAX_TOKENS:
            body[name] = int(value)
    if "total_tokens" not in body and "input_tokens" in body and "output_tokens" in body:
        body["total_tokens"] = min(body["input_tokens"] + body["output_tokens"], _MAX_TOKENS)


# --- content --------------------------------------------------------------------------------

_CONTENT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.tools.",
    "embedding.embeddings.",
    "retrieval.documents.",
)
_CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "input.value",
        "output.value",
        "llm.invocation_parameters",
        "traceloop.entity.input",
        "traceloop.entity.output",
    }
)
_MESSAGE_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def _set_content(body: dict[str, Any], attrs: Mapping[str, Any], span: Span) -> list[Any]:
    """prompt/messages/response from the first convention that has any; returns the tool calls
    of the output."""
    inputs, outputs = _messages_from_attributes(attrs)
    if not inputs and not outputs:
        inputs, outputs = _messages_from_events(span)
    if not inputs and not outputs:
        inputs = _indexed_messages(
            attrs, "gen_ai.prompt.", default_role="user", openinference=False
        )
        outputs = _indexed_messages(
            attrs, "gen_ai.completion.", default_role="assistant", openinference=False
        )
    if not inputs and not outputs:
        inputs = _indexed_messages(
            attrs, "llm.input_messages.", default_role="user", openinference=True
        )
        outputs = _indexed_messages(
            attrs, "llm.output_messages.", default_role="assistant", openinference=True
        )
    system = _text(_json_or_value(attrs.get("gen_ai.system_instructions")))
    if system and not any(m.get("role") == "system" for m in inputs):
        inputs.insert(0, {"role": "system", "content": system})

    operation = _str(attrs.get("gen_ai.operation.name")).lower()
    plain_prompt = body["kind"] == "embedding" or operation in ("text_completion", "completion")
    if inputs and plain_prompt:
        body["prompt"] = "\n".join(m["content"] for m in inputs if m.get("content"))
    elif inputs:
        body["messages"] = inputs
    elif "input.value" in attrs:
        body["prompt"] = _text(attrs["input.value"])
    response = "\n\n".join(m["content"] for m in outputs if m.get("content"))
    if response:
        body["response"] = response
    elif "output.value" in attrs and not outputs:
        body["response"] = _text(attrs["output.value"])
    return [call for m in outputs for call in m.get("tool_calls", [])]


def _messages_from_attributes(
    attrs: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        _message_list(_json_or_value(attrs.get("gen_ai.input.messages")), "user"),
        _message_list(_json_or_value(attrs.get("gen_ai.output.messages")), "assistant"),
    )


def _messages_from_events(span: Span) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Content carried as span events (earlier GenAI conventions; some SDKs still do).

    A span event has attributes but no body, so the event's body is looked for in the usual
    attribute spellings: ``content``/``message``, ``gen_ai.event.content`` (JSON).
    """
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for event in span.events:
        attrs = _attributes(event.attributes)
        name = event.name
        if name in _MESSAGE_EVENT_ROLES:
            payload = _event_payload(attrs)
            message = _message(payload, _MESSAGE_EVENT_ROLES[name])
            if message:
                inputs.append(message)
        elif name == "gen_ai.choice":
            payload = _event_payload(attrs)
            if isinstance(payload, dict) and isinstance(payload.get("message"), dict):
                payload = payload["message"]
            message = _message(payload, "assistant")
            if message:
                outputs.append(message)
        elif name == "gen_ai.content.prompt":
            inputs += _message_list(_json_or_value(attrs.get("gen_ai.prompt")), "user")
        elif name == "gen_ai.content.completion":
            outputs += _message_list(_json_or_value(attrs.get("gen_ai.completion")), "assistant")
        elif name == "gen_ai.client.inference.operation.details":
            more_in, more_out = _messages_from_attributes(attrs)
            inputs += more_in
            outputs += more_out
    return inputs, outputs


def _event_payload(attrs: Mapping[str, Any]) -> Any:
    if "gen_ai.event.content" in attrs:
        return _json_or_value(attrs["gen_ai.event.content"])
    if "message" in attrs:
        message = _json_or_value(attrs["message"])
        return {"message": message} if isinstance(message, dict) else message
    return dict(attrs)


def _grouped(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``<prefix>N.<rest>`` attributes as one ``{rest: value}`` dict per N, in order of N."""
    grouped: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            grouped.setdefault(int(index), {})[rest] = value
    return [grouped[i] for i in sorted(grouped)]


def _indexed_messages(
    attrs: Mapping[str, Any], prefix: str, *, default_role: str, openinference: bool
) -> list[dict[str, Any]]:
    messages = []
    for fields in _grouped(attrs, prefix):
        if openinference:
            fields = {k.removeprefix("message."): v for k, v in fields.items()}
        role = _str(fields.get("role")) or default_role
        content: Any = fields.get("content")
        if content is None:
            # OpenInference multi-part content: message.contents.M.message_content.text
            parts = _grouped(fields, "contents.")
            content = [p.get("message_content.text") for p in parts] or None
        message = _message({"role": role, "content": content}, role) or {
            "role": role,
            "content": "",
        }
        calls = [
            # OpenInference nests tool_call.function.name; OpenLLMetry writes name.
            _tool_call(
                {k.removeprefix("tool_call.").removeprefix("function."): v for k, v in c.items()}
            )
            for c in _grouped(fields, "tool_calls.")
        ]
        if calls:
            message["tool_calls"] = calls
        if message["content"] or calls:
            messages.append(message)
    return messages


def _tool_call(fields: Mapping[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = {"name": _str(fields.get("name"))}
    if fields.get("id"):
        call["id"] = _str(fields["id"])
    if "arguments" in fields:
        arguments = fields["arguments"]
        call["arguments"] = arguments if isinstance(arguments, str) else _compact(arguments)
    return call


def _message_list(value: Any, default_role: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    messages = []
    for item in items:
        message = _message(item, default_role)
        if message:
            messages.append(message)
    return messages


def _message(value: Any, default_role: str) -> dict[str, Any] | None:
    """One chat message in the native shape ``{"role", "content"[, "tool_calls"]}``.

    Reads OpenAI-style messages, GenAI ``parts`` messages and choice wrappers (``message``).
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        text = _text(value)
        return {"role": default_role, "content": text} if text else None
    if isinstance(value.get("message"), dict) and "content" not in value and "parts" not in value:
        return _message(value["message"], default_role)
    role = _str(value.get("role")) or default_role
    calls: list[dict[str, Any]] = []
    if "parts" in value:
        parts = value["parts"] if isinstance(value["parts"], list) else [value["parts"]]
        texts = []
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "tool_call":
                calls.append(_tool_call(part))
            elif isinstance(part, dict) and part.get("type") == "tool_call_response":
                role = "tool" if role == default_role else role
                texts.append(_text(part.get("response")))
            else:
                texts.append(_text(part))
        content = "\n".join(t for t in texts if t)
    else:
        content = _text(_content_value(value.get("content")))
    for call in value.get("tool_calls") or []:
        if isinstance(call, dict):
            function = call.get("function")
            fields = function if isinstance(function, dict) else call
            calls.append(_tool_call({**fields, "id": call.get("id", "")}))
    if not content and not calls:
        return None
    message: dict[str, Any] = {"role": role, "content": content}
    if calls:
        message["tool_calls"] = calls
    return message


def _text(value: Any) -> str:
    """Readable text of message content: strings as they are, text parts joined, other parts
    (images, audio) as a short placeholder so base64 blobs do not land in the prompt."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(t for t in (_text(item) for item in value) if t)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in (None, "text", "input_text", "output_text", "refusal"):
            for key in ("content", "text"):
                if isinstance(value.get(key), str):
                    return str(value[key])
        if kind in ("blob", "image", "image_url", "input_audio", "file", "uri"):
            mime = value.get("mime_type") or value.get("modality") or kind
            uri = value.get("uri")
            return f"[{mime}: {uri}]" if isinstance(uri, str) else f"[{mime}]"
        if kind == "reasoning":
            return ""
        return _compact(value)
    return _compact(value)


# --- status ---------------------------------------------------------------------------------


def _set_status(body: dict[str, Any], attrs: Mapping[str, Any], span: Span, used: set[str]) -> None:
    used.add("error.type")
    error_type = _str(attrs.get("error.type"))
    exception: dict[str, Any] = {}
    for event in span.events:
        if event.name == "exception":
            exception = _attributes(event.attributes)
    if span.status.code != Status.STATUS_CODE_ERROR and not error_type:
        body["status"] = "ok"
        return
    body["status"] = "error"
    message = span.status.message or _str(exception.get("exception.message")) or error_type
    body["error"] = message or "error"
    error_type = error_type or _str(exception.get("exception.type"))
    if error_type:
        body["error_type"] = error_type[:255]


# --- metadata -------------------------------------------------------------------------------

_SPAN_KIND_NAMES = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}


def _metadata(
    attrs: Mapping[str, Any],
    used: set[str],
    *,
    span: Span,
    context: _ResourceContext,
    scope_name: str,
) -> dict[str, Any]:
    """Context worth filtering on, bounded: content and already-mapped attributes stay out."""
    metadata: dict[str, Any] = {}
    if context.service_name:
        metadata["service.name"] = context.service_name
    if scope_name:
        metadata["otel.scope.name"] = scope_name[:METADATA_MAX_VALUE_CHARS]
    if span.kind in _SPAN_KIND_NAMES:
        metadata["otel.span_kind"] = _SPAN_KIND_NAMES[span.kind]
    # OpenInference carries the app's own metadata as one JSON object: its keys are worth more
    # than the blob, and go first.
    app_metadata = _json_or_value(attrs.get("metadata"))
    candidates: list[tuple[str, Any]] = []
    if isinstance(app_metadata, dict):
        candidates += [(str(k), v) for k, v in app_metadata.items()]
        used = used | {"metadata"}
    for key in sorted(attrs):
        if key in _CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES):
            continue
        # The request model is kept beside the served one (model prefers the response's).
        if key in used and key != "gen_ai.request.model":
            continue
        candidates.append((key, attrs[key]))
    for key, value in candidates:
        if len(metadata) >= METADATA_MAX_KEYS:
            metadata[METADATA_TRUNCATED_KEY] = True
            break
        metadata.setdefault(key[:128], _bounded(value))
    return metadata


def _bounded(value: Any) -> Any:
    """Scalars as they are; strings cut; lists and maps kept when small, else cut JSON text."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = value if isinstance(value, str) else _compact(value)
    if len(text) > METADATA_MAX_VALUE_CHARS:
        return text[:METADATA_MAX_VALUE_CHARS] + "..."
    return value


# --- OTLP values ----------------------------------------------------------------------------


def _attributes(values: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in values}


def _any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(_str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _str_list(value: Any) -> list[str]:
    value = _json_or_value(value)
    if isinstance(value, list):
        return [_str(v) for v in value]
    return [_str(value)] if value is not None else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value else None  # NaN is not a count
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _set_str(body: dict[str, Any], name: str, value: Any, limit: int) -> None:
    text = _str(value)
    if text:
        body[name] = text[:limit]


def _json_or_value(value: Any) -> Any:
    """Attributes that hold structure arrive as JSON strings (OTel attributes are flat) or, from
    newer SDKs, as AnyValue arrays/maps; read both. A string that is not JSON is text."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _content_value(value: Any) -> Any:
    """Message content; older instrumentations JSON-encode a list of parts into the string.

    Only such a list is decoded: a user who typed JSON keeps the text as typed.
    """
    if isinstance(value, str) and value.startswith("[{"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value
        if isinstance(parsed, list) and all(isinstance(p, dict) and "type" in p for p in parsed):
            return parsed
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _iso(unix_nano: int) -> str:
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    except (ValueError, OverflowError, OSError):
        # Past year 9999: kept as text so that validation refuses this span (naming the field).
        return f"{unix_nano}ns"
    return moment.isoformat()
