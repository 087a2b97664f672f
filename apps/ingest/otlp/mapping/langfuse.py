"""Langfuse SDK v3+ (OpenTelemetry-based): ``langfuse.*`` attributes.

The SDK exports OTLP/HTTP protobuf to ``<host>/api/public/otel/v1/traces`` with
``Authorization: Basic base64(public_key:secret_key)``; every value it serialises is JSON text
(strings too), and trace/observation metadata are flattened into ``langfuse.*.metadata.<key>``.
https://langfuse.com/docs/opentelemetry/get-started (attribute mapping) and
``langfuse/_client/attributes.py`` in langfuse-python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.ingest.otlp.values import json_scalar_or_value, number

OBSERVATION_KINDS = {
    "generation": "llm",
    "embedding": "embedding",
    "span": "span",
    "event": "span",
    "agent": "agent",
    "tool": "tool",
    "chain": "chain",
    "retriever": "retrieval",
    "evaluator": "chain",
    "guardrail": "chain",
}
KIND_KEY = "langfuse.observation.type"

MODEL = ("langfuse.observation.model.name",)
INPUT = "langfuse.observation.input"
OUTPUT = "langfuse.observation.output"
USAGE = "langfuse.observation.usage_details"
COST = "langfuse.observation.cost_details"
LEVEL = "langfuse.observation.level"
STATUS_MESSAGE = "langfuse.observation.status_message"
COMPLETION_START = "langfuse.observation.completion_start_time"
TAGS = "langfuse.trace.tags"
RELEASE = "langfuse.release"
ENVIRONMENT = "langfuse.environment"
PROMPT_NAME = ("langfuse.observation.prompt.name",)
PROMPT_VERSION = ("langfuse.observation.prompt.version",)
METADATA_PREFIXES = ("langfuse.observation.metadata", "langfuse.trace.metadata")

CONTENT_KEYS = frozenset({INPUT, OUTPUT})
MAPPED_KEYS = frozenset(
    {KIND_KEY, USAGE, COST, LEVEL, STATUS_MESSAGE, COMPLETION_START, TAGS, RELEASE, ENVIRONMENT}
    | set(MODEL)
)

# usage_details keys (Langfuse's own, and the OpenAI names its integrations pass through).
_USAGE_KEYS = {
    "input_tokens": ("input", "prompt_tokens", "input_tokens"),
    "output_tokens": ("output", "completion_tokens", "output_tokens"),
    "total_tokens": ("total", "total_tokens"),
    "cached_tokens": ("input_cached_tokens", "cache_read_input_tokens", "input_cache_read"),
    "reasoning_tokens": ("output_reasoning_tokens", "reasoning_tokens", "output_reasoning"),
}


def usage(attrs: Mapping[str, Any]) -> dict[str, float]:
    details = json_scalar_or_value(attrs.get(USAGE))
    out: dict[str, float] = {}
    if not isinstance(details, dict):
        return out
    for name, keys in _USAGE_KEYS.items():
        for key in keys:
            value = number(details.get(key))
            if value is not None:
                out[name] = value
                break
    # OpenAI usage passed through as is by Langfuse's OpenAI integration.
    for name, parent, key in (
        ("cached_tokens", "prompt_tokens_details", "cached_tokens"),
        ("reasoning_tokens", "completion_tokens_details", "reasoning_tokens"),
    ):
        nested = details.get(parent)
        value = number(nested.get(key)) if isinstance(nested, dict) else None
        if value is not None and name not in out:
            out[name] = value
    return out


def cost(attrs: Mapping[str, Any]) -> float | None:
    """``cost_details.total``, else the sum of the parts."""
    details = json_scalar_or_value(attrs.get(COST))
    if not isinstance(details, dict):
        return None
    total = number(details.get("total"))
    if total is not None:
        return total
    parts = [number(v) for v in details.values()]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def metadata(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Trace and observation metadata with the prefix taken off (observation keys win)."""
    out: dict[str, Any] = {}
    for prefix in METADATA_PREFIXES:
        for key, value in attrs.items():
            if key == prefix:
                decoded = json_scalar_or_value(value)
                if isinstance(decoded, dict):
                    for k, v in decoded.items():
                        out.setdefault(str(k), v)
            elif key.startswith(prefix + "."):
                out.setdefault(key[len(prefix) + 1 :], json_scalar_or_value(value))
    return out


def is_metadata_key(key: str) -> bool:
    return key.startswith(METADATA_PREFIXES)
