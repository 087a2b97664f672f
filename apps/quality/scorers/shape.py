"""Shape of the answer: empty, cut off, length, and JSON validity when JSON was expected."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from apps.quality.scorers.base import CallContext, Scorer

# Finish reasons that mean "stopped by the token limit", per provider:
# OpenAI finish_reason "length" (https://platform.openai.com/docs/api-reference/chat/object),
# Anthropic stop_reason "max_tokens" (https://docs.anthropic.com/en/api/messages),
# Gemini finishReason "MAX_TOKENS", OpenTelemetry gen_ai.response.finish_reasons ["length"].
_LENGTH_REASONS = frozenset(
    {"length", "max_tokens", "max_output_tokens", "model_length", "token_limit"}
)
_FINISH_KEYS = (
    "finish_reason",
    "finish_reasons",
    "stop_reason",
    "finishReason",
    "gen_ai.response.finish_reasons",
    "incomplete_details",
)
_JSON_FORMATS = frozenset({"json", "json_object", "json_schema", "application/json"})
_ASKS_FOR_JSON = re.compile(
    r"\b(?:(?:respond|reply|answer|return|output|format|give|provide|produce|write)\w*\b.{0,60}?"
    r"\b(?:in|as|with|using)\s+(?:a\s+|valid\s+|strict\s+|only\s+|raw\s+)*JSON\b|"
    r"\bJSON\s+(?:only|object|format|array|schema)\b|\bvalid JSON\b|\bonly JSON\b)",
    re.IGNORECASE | re.DOTALL,
)
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?```\s*$", re.DOTALL)


def _reasons(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value.lower()
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _reasons(item)
    elif isinstance(value, Mapping):
        # OpenAI Responses API: incomplete_details {"reason": "max_output_tokens"}.
        yield from _reasons(value.get("reason"))


def finish_reasons(call: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    """Finish/stop reasons found on the call or in its metadata, lower-cased."""
    found: list[str] = []
    for source in (call, metadata):
        for key in _FINISH_KEYS:
            found.extend(_reasons(source.get(key)))
    return found


def expects_json(prompt: str, metadata: Mapping[str, Any]) -> bool:
    """Whether the call asked for JSON: a JSON response_format, or a prompt that says so."""
    fmt = metadata.get("response_format")
    if isinstance(fmt, Mapping):
        fmt = fmt.get("type")
    if isinstance(fmt, str) and fmt.lower() in _JSON_FORMATS:
        return True
    mime = metadata.get("response_mime_type") or metadata.get("responseMimeType")
    if isinstance(mime, str) and mime.lower() == "application/json":
        return True
    head = prompt[:8000]
    return "json" in head.lower() and _ASKS_FOR_JSON.search(head) is not None


def parse_json_answer(response: str) -> bool:
    """Whether ``response`` is JSON, bare or inside one Markdown code fence."""
    text = response.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text or text[0] not in "[{":
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class ShapeScorer(Scorer):
    name = "shape"

    def score(self, call: CallContext) -> Mapping[str, Any]:
        response = call.response
        stripped = response.strip()
        cut_by_ingest = "response" in (call.call.get("truncated") or ())
        reasons = finish_reasons(call.call, call.metadata)
        truncated = any(reason in _LENGTH_REASONS for reason in reasons)
        max_tokens = call.metadata.get("max_tokens") or call.metadata.get("max_output_tokens")
        output_tokens = call.call.get("output_tokens")
        if isinstance(max_tokens, int) and isinstance(output_tokens, int) and max_tokens > 0:
            truncated = truncated or output_tokens >= max_tokens
        # An odd number of code fences means the answer stopped inside a code block.
        if not cut_by_ingest and stripped.count("```") % 2 == 1:
            truncated = True
        json_valid: bool | None = None
        if stripped and not cut_by_ingest and expects_json(call.prompt, call.metadata):
            json_valid = parse_json_answer(stripped)
        status = str(call.call.get("status") or "").lower()
        return {
            # An errored call has no answer; "empty" is about a call that succeeded with nothing.
            "empty": not stripped and status != "error",
            "truncated": truncated,
            "response_chars": len(response),
            "json_valid": json_valid,
        }
