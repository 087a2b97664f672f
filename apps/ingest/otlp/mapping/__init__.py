"""OTLP spans -> native call events. Pure.

Every span becomes one native ``call`` event (``apps/ingest/schemas.py``). The conventions each
live in their own module (``genai``, ``traceloop``, ``openinference``, ``langfuse``, and the
additions of ``logfire`` and ``pydantic_ai``); this module
reads them in that order, the first attribute present winning, and docs/otlp.md has the same as
a table:

- id: uuid5(OTLP_SPAN_NAMESPACE, "<trace hex>:<span hex>"), so a re-sent span is stored once;
  parent_id: the same from parentSpanId; trace_id: 32 lowercase hex characters; name: span name.
- kind: gen_ai.operation.name, openinference.span.kind, traceloop.span.kind,
  langfuse.observation.type, llm.request.type; else "llm" when the span names a model, counts
  tokens or carries other gen_ai.* attributes (tool and agent ones aside); else "span" (trace
  context only: HTTP, database, framework spans, never counted as LLM calls).
- provider, model, tokens, cost, session, user: see each convention module's key lists.
- Content (LLM and embedding spans), from the first source that has any: gen_ai messages
  attributes, GenAI span events, gen_ai.prompt.N, llm.input_messages.N, langfuse input/output,
  Logfire's request_data/response_data, input.value/output.value. Inputs -> messages (prompt
  for text completions and embeddings; the prompt is the last user message otherwise, as the
  SDK does); outputs -> response.
- Tool spans: arguments -> prompt, result -> response (gen_ai.tool.call.*, OpenInference
  input/output.value, traceloop.entity.*, langfuse input/output).
- Logfire's streamed calls: the request span is trace context, the stream's outcome (a log
  span, with the stream's duration) the model call.
- status "error" when status.code is ERROR, error.type is set or the Langfuse level is ERROR.
- Resource: release = service.version, else service.name; environment =
  deployment.environment.name, deployment.environment (langfuse.release/.environment on the span
  win); metadata: the other non-content attributes, bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from apps.ingest.otlp.decode import SpanRejection
from apps.ingest.otlp.mapping import (
    genai,
    langfuse,
    logfire,
    openinference,
    pydantic_ai,
    traceloop,
)
from apps.ingest.otlp.messages import Messages, message_list, message_of, text
from apps.ingest.otlp.values import (
    as_str,
    attributes_of,
    compact,
    first,
    iso,
    json_scalar_or_value,
    number,
    set_str,
    str_list,
    valid_id,
)
from apps.traces.text import last_user_message

# Fixed forever: changing it would store every re-sent span a second time.
# = uuid5(NAMESPACE_URL, "https://driftline.dev/otlp/span")
OTLP_SPAN_NAMESPACE = uuid.UUID("b6f0cee1-ab8a-5d96-a902-eb093f367130")

METADATA_MAX_KEYS = 64
METADATA_MAX_VALUE_CHARS = 1024
METADATA_TRUNCATED_KEY = "driftline.metadata_truncated"
MAX_TAGS = 32
# Metadata keys for prompt versions until calls get columns of their own (issue 19).
PROMPT_NAME_KEY = "prompt_name"
PROMPT_VERSION_KEY = "prompt_version"

PROVIDER = genai.keys(genai.PROVIDER, traceloop.PROVIDER)
MODEL = genai.keys(genai.MODEL, openinference.MODEL, langfuse.MODEL)
REQUEST_MODELS = frozenset({genai.REQUEST_MODEL, openinference.REQUEST_MODEL})
COST = genai.keys(genai.COST, openinference.COST, logfire.COST)
SESSION = genai.keys(genai.SESSION, openinference.SESSION, traceloop.SESSION)
USER = ("user.id", "enduser.id", *traceloop.USER, *genai.USER)
TOKENS: dict[str, tuple[str, ...]] = {
    name: (
        *genai.TOKENS[name],
        *(traceloop.TOTAL_TOKENS if name == "total_tokens" else ()),
        *openinference.TOKENS[name],
    )
    for name in genai.TOKENS
}
KIND_TABLES = (
    (genai.KIND_KEY, genai.OPERATION_KINDS),
    (openinference.SPAN_KIND_KEY, openinference.SPAN_KINDS),
    (traceloop.SPAN_KIND_KEY, traceloop.SPAN_KINDS),
    (langfuse.KIND_KEY, langfuse.OBSERVATION_KINDS),
    (traceloop.REQUEST_TYPE_KEY, traceloop.REQUEST_TYPES),
)
# A span naming a model or counting tokens is a model call whatever its kind attributes say.
_LLM_EVIDENCE = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
CONTENT_PREFIXES = traceloop.CONTENT_PREFIXES + openinference.CONTENT_PREFIXES
CONTENT_KEYS = (
    genai.CONTENT_KEYS
    | traceloop.CONTENT_KEYS
    | openinference.CONTENT_KEYS
    | langfuse.CONTENT_KEYS
    | logfire.CONTENT_KEYS
    | pydantic_ai.CONTENT_KEYS
)
# Neither content nor context: kept out of metadata.
SKIPPED_KEYS = logfire.SKIPPED_KEYS


@dataclass
class OtlpMapping:
    events: list[dict[str, Any]] = field(default_factory=list)
    # wheres[i] names the span that became events[i], for the service's per-event errors.
    wheres: list[str] = field(default_factory=list)
    rejections: list[SpanRejection] = field(default_factory=list)


def span_event_id(trace_id: bytes, span_id: bytes) -> str:
    """The native event id of a span: stable across re-sends, distinct across traces."""
    return str(uuid.uuid5(OTLP_SPAN_NAMESPACE, f"{trace_id.hex()}:{span_id.hex()}"))


def map_request(request: ExportTraceServiceRequest) -> OtlpMapping:
    """All spans of a request as native call events, and the spans that cannot be events."""
    mapping = OtlpMapping()
    for r, resource_spans in enumerate(request.resource_spans):
        resource = attributes_of(resource_spans.resource.attributes)
        context = ResourceContext.from_attributes(resource)
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
    if not valid_id(span.trace_id, 16):
        return "traceId: must be 16 bytes (32 hex characters), not all zero"
    if not valid_id(span.span_id, 8):
        return "spanId: must be 8 bytes (16 hex characters), not all zero"
    if span.parent_span_id and not valid_id(span.parent_span_id, 8):
        return "parentSpanId: must be empty or 8 bytes (16 hex characters)"
    if span.start_time_unix_nano == 0:
        return "startTimeUnixNano: required"
    return None


@dataclass(frozen=True)
class ResourceContext:
    service_name: str
    release: str
    environment: str

    @classmethod
    def from_attributes(cls, resource: Mapping[str, Any]) -> ResourceContext:
        service_name = as_str(resource.get("service.name"))
        # The SDK's default when nobody named the service says nothing about the release.
        if service_name.startswith("unknown_service"):
            service_name = ""
        return cls(
            service_name=service_name,
            release=as_str(resource.get("service.version")) or service_name,
            environment=as_str(
                first(resource, "deployment.environment.name", "deployment.environment")
            ),
        )


def map_span(span: Span, *, context: ResourceContext, scope_name: str = "") -> dict[str, Any]:
    """One valid span (see ``_span_problem``) as a native call event."""
    attrs = attributes_of(span.attributes)
    used: set[str] = set()

    def pick(*keys: str) -> Any:
        used.update(keys)
        return first(attrs, *keys)

    kind = span_kind(attrs, used)
    if kind in ("llm", "embedding") and logfire.is_stream_request(
        attrs, scope_name, failed=_failed(span, attrs)
    ):
        kind = "span"
    body: dict[str, Any] = {
        "trace_id": span.trace_id.hex(),
        "name": span.name[:255],
        "kind": kind,
        "start_time": iso(span.start_time_unix_nano),
    }
    if span.parent_span_id:
        body["parent_id"] = span_event_id(span.trace_id, span.parent_span_id)
    if span.end_time_unix_nano >= span.start_time_unix_nano:
        body["end_time"] = iso(span.end_time_unix_nano)
        body["latency_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    if kind in ("llm", "embedding"):
        _set_stream_window(body, attrs, span, scope_name)

    set_str(body, "provider", pick(*PROVIDER), 64)
    set_str(body, "model", pick(*MODEL) or openinference.invocation_model(attrs), 255)
    _set_tokens(body, attrs, pick)
    cost = number(pick(*COST))
    if cost is None:
        used.add(langfuse.COST)
        cost = langfuse.cost(attrs)
    if cost is not None and cost >= 0:
        body["cost_usd"] = float(cost)
    set_str(body, "session_id", pick(*SESSION), 255)
    set_str(body, "user_id", pick(*USER), 255)
    _set_ttft(body, attrs, span, used)
    _set_ttft_seconds(body, attrs, used)
    tool_calls: list[Any] = []
    if kind in ("llm", "embedding"):
        tool_calls = _set_content(body, attrs, span, used)
    elif kind == "tool":
        _set_tool(body, attrs)
    _set_status(body, attrs, span, used)

    release = as_str(json_scalar_or_value(pick(langfuse.RELEASE))) or context.release
    environment = as_str(json_scalar_or_value(pick(langfuse.ENVIRONMENT))) or context.environment
    if release:
        body["release"] = release[:128]
    if environment:
        body["environment"] = environment[:64]
    tags = [f"service:{context.service_name}"[:128]] if context.service_name else []
    used.update((openinference.TAGS, langfuse.TAGS))
    tags += [t[:128] for t in str_list(attrs.get(openinference.TAGS)) if t]
    tags += [t[:128] for t in str_list(attrs.get(langfuse.TAGS)) if t]
    if tags:
        body["tags"] = list(dict.fromkeys(tags))[:MAX_TAGS]
    metadata = _metadata(attrs, used, span=span, context=context, scope_name=scope_name)
    # The call's prompt template version: columns of the call (the Prompts page, compare).
    for key, keys, limit in (
        (PROMPT_NAME_KEY, (*genai.PROMPT_NAME, *langfuse.PROMPT_NAME), 255),
        (PROMPT_VERSION_KEY, (*genai.PROMPT_VERSION, *langfuse.PROMPT_VERSION), 64),
    ):
        value = json_scalar_or_value(first(attrs, *keys))
        if value is not None:
            used.update(keys)
            set_str(body, key, value, limit)
    if tool_calls:
        # response is text; the calls the model asked for are kept beside it.
        metadata["gen_ai.output.tool_calls"] = _bounded(tool_calls)
    body["metadata"] = metadata
    return {"type": "call", "id": span_event_id(span.trace_id, span.span_id), "body": body}


def span_kind(attrs: Mapping[str, Any], used: set[str] | None = None) -> str:
    if used is not None:
        used.update(key for key, _ in KIND_TABLES)
    for key, table in KIND_TABLES:
        value = as_str(json_scalar_or_value(attrs.get(key)))
        kind = table.get(value.lower()) or table.get(value.upper())
        if kind:
            return kind
    if any(key in attrs for key in _LLM_EVIDENCE) or any(genai.is_genai(key) for key in attrs):
        return "llm"
    return "span"


_MAX_TOKENS = 2**31 - 1


def _set_tokens(body: dict[str, Any], attrs: Mapping[str, Any], pick: Callable[..., Any]) -> None:
    langfuse_usage = langfuse.usage(attrs)
    for name, keys in TOKENS.items():
        value = number(pick(*keys))
        if value is None:
            value = langfuse_usage.get(name)
        if value is not None and 0 <= value <= _MAX_TOKENS:
            body[name] = int(value)
    if "total_tokens" not in body and "input_tokens" in body and "output_tokens" in body:
        body["total_tokens"] = min(body["input_tokens"] + body["output_tokens"], _MAX_TOKENS)


def _set_stream_window(
    body: dict[str, Any], attrs: Mapping[str, Any], span: Span, scope_name: str
) -> None:
    """Logfire logs a streamed call's outcome as a zero-length span at the stream's end: its
    ``duration`` is the call's latency, and its start that much earlier."""
    duration_ms = logfire.stream_duration_ms(attrs, scope_name)
    if duration_ms is None or span.end_time_unix_nano == 0:
        return
    start = max(span.end_time_unix_nano - int(duration_ms * 1e6), 1)
    body["start_time"] = iso(start)
    body["latency_ms"] = (span.end_time_unix_nano - start) / 1e6


def _set_ttft_seconds(body: dict[str, Any], attrs: Mapping[str, Any], used: set[str]) -> None:
    """The first chunk's delay in seconds (Pydantic AI's streamed requests) as ttft_ms."""
    used.add(genai.TTFT_SECONDS)
    seconds = number(attrs.get(genai.TTFT_SECONDS))
    if "ttft_ms" in body or seconds is None or seconds < 0:
        return
    ttft = seconds * 1000
    if ttft <= body.get("latency_ms", ttft):
        body["ttft_ms"] = ttft


def _set_ttft(body: dict[str, Any], attrs: Mapping[str, Any], span: Span, used: set[str]) -> None:
    """Langfuse's completion_start_time (the first streamed token) as ttft_ms."""
    used.add(langfuse.COMPLETION_START)
    value = json_scalar_or_value(attrs.get(langfuse.COMPLETION_START))
    if not isinstance(value, str):
        return
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return
    if moment.tzinfo is None:
        return
    ttft = moment.timestamp() * 1000 - span.start_time_unix_nano / 1e6
    if 0 <= ttft <= body.get("latency_ms", ttft):
        body["ttft_ms"] = ttft


# --- content --------------------------------------------------------------------------------


def _set_content(
    body: dict[str, Any], attrs: Mapping[str, Any], span: Span, used: set[str]
) -> list[Any]:
    """prompt/messages/response from the first convention that has any; returns the tool calls
    of the output."""
    inputs, outputs = genai.content_from_attributes(attrs)
    sources: tuple[Callable[[], tuple[Messages, Messages]], ...] = (
        lambda: genai.content_from_events(span),
        lambda: traceloop.content(attrs),
        lambda: openinference.content(attrs),
        lambda: _langfuse_content(attrs),
        lambda: logfire.content(attrs),
    )
    for source in sources:
        if inputs or outputs:
            break
        inputs, outputs = source()
    system = text(genai.system_instructions(attrs))
    if system and not any(m.get("role") == "system" for m in inputs):
        inputs.insert(0, {"role": "system", "content": system})
    apply_content(body, inputs, outputs, plain_prompt=_plain_prompt(body["kind"], attrs))
    if "prompt" not in body and "messages" not in body and openinference.INPUT_VALUE in attrs:
        body["prompt"] = text(attrs[openinference.INPUT_VALUE])
    if "response" not in body and openinference.OUTPUT_VALUE in attrs and not outputs:
        body["response"] = text(attrs[openinference.OUTPUT_VALUE])
    return [call for m in outputs for call in m.get("tool_calls", [])]


def _plain_prompt(kind: str, attrs: Mapping[str, Any]) -> bool:
    operation = as_str(attrs.get(genai.KIND_KEY)).lower()
    return kind == "embedding" or operation in genai.PLAIN_PROMPT_OPERATIONS


def apply_content(
    body: dict[str, Any], inputs: Messages, outputs: Messages, *, plain_prompt: bool
) -> None:
    """Inputs as messages (with the prompt the last user message) or, for text completions and
    embeddings, as one prompt; outputs as the response text. Shared with OTLP logs."""
    if inputs and plain_prompt:
        body["prompt"] = "\n".join(m["content"] for m in inputs if m.get("content"))
    elif inputs:
        body["messages"] = inputs
        prompt = last_user_message(inputs)
        if prompt:
            body["prompt"] = prompt
    response = "\n\n".join(m["content"] for m in outputs if m.get("content"))
    if response:
        body["response"] = response


def _langfuse_content(attrs: Mapping[str, Any]) -> tuple[Messages, Messages]:
    """A generation's input (messages, ``{"messages": ...}`` or text) and output."""
    value = json_scalar_or_value(attrs.get(langfuse.INPUT))
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    inputs = message_list(value, "user") if value is not None else []
    output = json_scalar_or_value(attrs.get(langfuse.OUTPUT))
    if isinstance(output, dict) and isinstance(output.get("choices"), list):
        output = output["choices"]
    outputs = message_list(output, "assistant") if output is not None else []
    return inputs, outputs


def _set_tool(body: dict[str, Any], attrs: Mapping[str, Any]) -> None:
    """A tool span's arguments as its prompt and its result as its response."""
    # Name and call id stay in metadata (filterable); arguments and result are content.
    fields = genai.tool_fields(attrs, lambda *keys: first(attrs, *keys))
    arguments = fields.get("arguments")
    if arguments is None:
        arguments = first(
            attrs,
            openinference.INPUT_VALUE,
            traceloop.ENTITY_INPUT,
            langfuse.INPUT,
            openinference.TOOL_PARAMETERS,
            pydantic_ai.TOOL_ARGUMENTS,
        )
    result = fields.get("result")
    if result is None:
        result = first(
            attrs,
            openinference.OUTPUT_VALUE,
            traceloop.ENTITY_OUTPUT,
            langfuse.OUTPUT,
            pydantic_ai.TOOL_RESULT,
        )
    if arguments is not None:
        body["prompt"] = _tool_text(arguments)
    if result is not None:
        body["response"] = _tool_text(result)


def _tool_text(value: Any) -> str:
    """Arguments and results as sent; a JSON-quoted string (Langfuse) or a tool message
    (``{"content": ...}``) as its text."""
    if not isinstance(value, str):
        return compact(value)
    decoded = json_scalar_or_value(value)
    if isinstance(decoded, str):
        return decoded
    if isinstance(decoded, dict) and "content" in decoded:
        message = message_of(decoded, "tool")
        if message:
            return str(message["content"])
    return value


# --- status ---------------------------------------------------------------------------------


def _failed(span: Span, attrs: Mapping[str, Any]) -> bool:
    """ERROR status, an ``error.type``, or Langfuse's ERROR level."""
    return (
        span.status.code == Status.STATUS_CODE_ERROR
        or bool(as_str(attrs.get("error.type")))
        or as_str(json_scalar_or_value(attrs.get(langfuse.LEVEL))).upper() == "ERROR"
    )


def _set_status(body: dict[str, Any], attrs: Mapping[str, Any], span: Span, used: set[str]) -> None:
    used.update(("error.type", langfuse.LEVEL, langfuse.STATUS_MESSAGE))
    if not _failed(span, attrs):
        body["status"] = "ok"
        return
    error_type = _type_name(as_str(attrs.get("error.type")))
    exception: dict[str, Any] = {}
    for event in span.events:
        if event.name == "exception":
            exception = attributes_of(event.attributes)
    body["status"] = "error"
    message = (
        span.status.message
        or as_str(exception.get("exception.message"))
        or as_str(json_scalar_or_value(attrs.get(langfuse.STATUS_MESSAGE)))
        or error_type
    )
    body["error"] = message or "error"
    error_type = error_type or as_str(exception.get("exception.type"))
    if error_type:
        body["error_type"] = error_type[:255]


def _type_name(error_type: str) -> str:
    """An exception class's repr as its dotted name: opentelemetry-util-genai (the official
    OpenAI instrumentation) writes ``error.type`` as ``<class 'openai.BadRequestError'>``."""
    if error_type.startswith("<class '") and error_type.endswith("'>"):
        return error_type[len("<class '") : -len("'>")]
    return error_type


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
    context: ResourceContext,
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
    # The app's own metadata (OpenInference's JSON object, Langfuse's flattened keys) is worth
    # more than the blob, and goes first.
    app_metadata = json_scalar_or_value(attrs.get(openinference.METADATA))
    candidates: list[tuple[str, Any]] = []
    if isinstance(app_metadata, dict):
        candidates += [(str(k), v) for k, v in app_metadata.items()]
        used = used | {openinference.METADATA}
    candidates += list(langfuse.metadata(attrs).items())
    for key in sorted(attrs):
        if (
            key in CONTENT_KEYS
            or key in SKIPPED_KEYS
            or key.startswith(CONTENT_PREFIXES)
            or langfuse.is_metadata_key(key)
        ):
            continue
        # The request model is kept beside the served one (model prefers the response's).
        if key in used and key not in REQUEST_MODELS:
            continue
        value = attrs[key]
        candidates.append(
            (key, json_scalar_or_value(value) if key.startswith("langfuse.") else value)
        )
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
    serialized = value if isinstance(value, str) else compact(value)
    if len(serialized) > METADATA_MAX_VALUE_CHARS:
        return serialized[:METADATA_MAX_VALUE_CHARS] + "..."
    return value
