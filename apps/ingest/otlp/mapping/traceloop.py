"""OpenLLMetry / Traceloop: ``traceloop.*`` kinds and association properties, ``llm.*`` usage,
and the older indexed content attributes ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``.

https://github.com/traceloop/openllmetry (``opentelemetry-semantic-conventions-ai``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.ingest.otlp.messages import Messages, indexed_messages

SPAN_KINDS = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
SPAN_KIND_KEY = "traceloop.span.kind"
REQUEST_TYPES = {"chat": "llm", "completion": "llm", "embedding": "embedding"}
REQUEST_TYPE_KEY = "llm.request.type"

PROVIDER = ("llm.provider", "llm.system")
TOTAL_TOKENS = ("llm.usage.total_tokens",)
SESSION = ("traceloop.association.properties.session_id",)
USER = ("traceloop.association.properties.user_id",)

CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.prompts.")
CONTENT_KEYS = frozenset({"traceloop.entity.input", "traceloop.entity.output"})
# A task/tool span's own input and output (JSON of the decorated function's arguments/result).
ENTITY_INPUT = "traceloop.entity.input"
ENTITY_OUTPUT = "traceloop.entity.output"


def content(attrs: Mapping[str, Any]) -> tuple[Messages, Messages]:
    return (
        indexed_messages(attrs, "gen_ai.prompt.", default_role="user", openinference=False),
        indexed_messages(
            attrs, "gen_ai.completion.", default_role="assistant", openinference=False
        ),
    )
