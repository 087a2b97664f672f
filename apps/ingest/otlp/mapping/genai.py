"""OpenTelemetry GenAI semantic conventions (``gen_ai.*``): the attribute names Driftline reads
first, and the content carried as ``gen_ai.{input,output}.messages`` or as span events.

https://opentelemetry.io/docs/specs/semconv/gen-ai/ (spans, events, the messages JSON schema).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from apps.ingest.otlp.messages import (
    Messages,
    event_payload,
    message_list,
    messages_from_attributes,
    messages_from_event,
)
from apps.ingest.otlp.values import attributes_of, json_or_value

# gen_ai.operation.name values: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/
OPERATION_KINDS = {
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
KIND_KEY = "gen_ai.operation.name"
# Operations whose input is one text, not a conversation.
PLAIN_PROMPT_OPERATIONS = frozenset({"text_completion", "completion"})

PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
MODEL = ("gen_ai.response.model", "gen_ai.request.model")
REQUEST_MODEL = "gen_ai.request.model"
TOKENS: dict[str, tuple[str, ...]] = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "total_tokens": ("gen_ai.usage.total_tokens",),
    "cached_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.output_tokens.reasoning",
    ),
}
# Not in the conventions; OpenLIT writes it (0 when it has no price: see quality's cost rule).
COST = ("gen_ai.usage.cost",)
SESSION = ("gen_ai.conversation.id",)
# gen_ai.user: OpenLLMetry's copy of OpenAI's `user` request parameter.
USER = ("gen_ai.user",)
# Seconds to the first streamed chunk; Pydantic AI writes it on its streamed request spans
# (the conventions have it as a metric).
TTFT_SECONDS = "gen_ai.client.operation.time_to_first_chunk"
PROMPT_NAME = ("gen_ai.prompt.name",)
PROMPT_VERSION = ("gen_ai.prompt.version",)

# execute_tool spans: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/#execute-tool-span
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_ARGUMENTS = ("gen_ai.tool.call.arguments", "gen_ai.tool.arguments")
TOOL_RESULT = ("gen_ai.tool.call.result", "gen_ai.tool.result")
TOOL_KEYS = frozenset(
    {TOOL_NAME, TOOL_CALL_ID, "gen_ai.tool.type", "gen_ai.tool.description", *TOOL_ARGUMENTS}
)

CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.prompt",
        "gen_ai.completion",
        *TOOL_RESULT,
        *TOOL_ARGUMENTS,
    }
)


def is_genai(key: str) -> bool:
    """A key that marks a span as a model call (tool and agent attributes do not)."""
    return key.startswith("gen_ai.") and not key.startswith(("gen_ai.tool.", "gen_ai.agent."))


def content_from_attributes(attrs: Mapping[str, Any]) -> tuple[Messages, Messages]:
    return messages_from_attributes(attrs)


def content_from_events(span: Span) -> tuple[Messages, Messages]:
    """Content carried as span events (earlier GenAI conventions; some SDKs still do)."""
    inputs: Messages = []
    outputs: Messages = []
    for event in span.events:
        attrs = attributes_of(event.attributes)
        name = event.name
        if name == "gen_ai.content.prompt":
            inputs += message_list(json_or_value(attrs.get("gen_ai.prompt")), "user")
        elif name == "gen_ai.content.completion":
            outputs += message_list(json_or_value(attrs.get("gen_ai.completion")), "assistant")
        else:
            payload: Any = attrs if name.endswith("operation.details") else event_payload(attrs)
            more_in, more_out = messages_from_event(name, payload)
            inputs += more_in
            outputs += more_out
    return inputs, outputs


def system_instructions(attrs: Mapping[str, Any]) -> Any:
    return json_or_value(attrs.get("gen_ai.system_instructions"))


def tool_fields(attrs: Mapping[str, Any], pick: Any) -> dict[str, Any]:
    """name, call id, arguments and result of an ``execute_tool`` span."""
    out: dict[str, Any] = {}
    for name, keys in (
        ("name", (TOOL_NAME,)),
        ("id", (TOOL_CALL_ID,)),
        ("arguments", TOOL_ARGUMENTS),
        ("result", TOOL_RESULT),
    ):
        value = pick(*keys)
        if value is not None:
            out[name] = value
    return out


def keys(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(key for group in groups for key in group)
