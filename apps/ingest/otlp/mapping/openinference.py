"""OpenInference (Arize Phoenix): ``openinference.span.kind``, ``llm.*`` model and token
counts, ``llm.{input,output}_messages.N.message.*``, ``input.value`` / ``output.value``.

https://github.com/Arize-ai/openinference/blob/main/spec/semantic_conventions.md
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.ingest.otlp.messages import Messages, indexed_messages

SPAN_KINDS = {
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "CHAIN": "chain",
    "TOOL": "tool",
    "AGENT": "agent",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
}
SPAN_KIND_KEY = "openinference.span.kind"

MODEL = ("llm.model_name", "embedding.model_name")
PROVIDER = ("llm.provider", "llm.system")
TOKENS: dict[str, tuple[str, ...]] = {
    "input_tokens": ("llm.token_count.prompt",),
    "output_tokens": ("llm.token_count.completion",),
    "total_tokens": ("llm.token_count.total",),
    "cached_tokens": ("llm.token_count.prompt_details.cache_read",),
    "reasoning_tokens": ("llm.token_count.completion_details.reasoning",),
}
COST = ("llm.cost.total",)
SESSION = ("session.id",)
USER = ("user.id",)
TAGS = "tag.tags"
# The app's own metadata, one JSON object.
METADATA = "metadata"
INPUT_VALUE = "input.value"
OUTPUT_VALUE = "output.value"
TOOL_NAME = "tool.name"
TOOL_PARAMETERS = "tool.parameters"

CONTENT_PREFIXES = (
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.tools.",
    "embedding.embeddings.",
    "retrieval.documents.",
)
CONTENT_KEYS = frozenset({INPUT_VALUE, OUTPUT_VALUE, "llm.invocation_parameters"})


def content(attrs: Mapping[str, Any]) -> tuple[Messages, Messages]:
    return (
        indexed_messages(attrs, "llm.input_messages.", default_role="user", openinference=True),
        indexed_messages(
            attrs, "llm.output_messages.", default_role="assistant", openinference=True
        ),
    )
