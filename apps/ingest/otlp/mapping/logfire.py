"""Pydantic Logfire's LLM instrumentations (``logfire.instrument_openai`` / ``_anthropic``):
GenAI attributes plus a few of its own, its legacy ``request_data`` / ``response_data`` JSON
(``version=1``), and the two spans of a streamed call.

https://logfire.pydantic.dev/docs/integrations/llms/openai/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.ingest.otlp.messages import Messages, message_list
from apps.ingest.otlp.values import json_or_value, number

# Logfire (and Pydantic AI) price the call themselves, from genai-prices.
COST = ("operation.cost",)
REQUEST_DATA = "request_data"
RESPONSE_DATA = "response_data"
SPAN_TYPE = "logfire.span_type"
STREAM_DURATION = "duration"
# The JSON schema of the span's other attributes: for Logfire's UI, noise in metadata.
SCHEMA = "logfire.json_schema"
CONTENT_KEYS = frozenset({REQUEST_DATA, RESPONSE_DATA})
SKIPPED_KEYS = frozenset({SCHEMA})
_SCOPE_PREFIX = "logfire."


def content(attrs: Mapping[str, Any]) -> tuple[Messages, Messages]:
    """``version=1`` content: the request's ``messages`` and the response's ``message`` (chat)
    or ``choices`` / ``combined_chunk_content``, as the OpenAI SDK would give them."""
    request = json_or_value(attrs.get(REQUEST_DATA))
    response = json_or_value(attrs.get(RESPONSE_DATA))
    inputs: Messages = []
    outputs: Messages = []
    if isinstance(request, dict):
        inputs = message_list(request.get("messages") or request.get("prompt"), "user")
        system = request.get("system")  # Anthropic's system parameter
        if isinstance(system, str | list) and system:
            inputs = message_list(system, "system") + inputs
    if isinstance(response, dict):
        output = response.get("message") or response.get("combined_chunk_content")
        outputs = message_list(output, "assistant")
    return inputs, outputs


def is_stream_request(attrs: Mapping[str, Any], scope_name: str, *, failed: bool) -> bool:
    """The first of the two spans of a streamed call: Logfire ends the request span when the
    stream opens, with no output or usage, and logs the stream's outcome (everything, the
    output and tokens included) as a second, zero-length span (``is_stream_outcome``). The
    request half is kept as trace context so that one model call counts once."""
    if failed or not scope_name.startswith(_SCOPE_PREFIX) or attrs.get(SPAN_TYPE) == "log":
        return False
    request = json_or_value(attrs.get(REQUEST_DATA))
    if isinstance(request, dict) and "stream" in request:
        return bool(request["stream"])
    # version=2 keeps only the model in request_data: a finished non-streamed call always has
    # its output, its usage or its response id.
    return not any(
        key in attrs
        for key in (
            "gen_ai.output.messages",
            RESPONSE_DATA,
            "gen_ai.response.id",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
        )
    )


def stream_duration_ms(attrs: Mapping[str, Any], scope_name: str) -> float | None:
    """The stream's length of the outcome span of a streamed call (a log, so zero-length),
    from its ``duration`` attribute (seconds)."""
    if not scope_name.startswith(_SCOPE_PREFIX) or attrs.get(SPAN_TYPE) != "log":
        return None
    seconds = number(attrs.get(STREAM_DURATION))
    return seconds * 1000 if seconds is not None and seconds >= 0 else None
