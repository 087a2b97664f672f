"""OpenInference (Arize Phoenix): ``openinference.span.kind``, ``llm.*`` model and token
counts, ``llm.{input,output}_messages.N.message.*``, ``input.value`` / ``output.value``.

https://github.com/Arize-ai/openinference/blob/main/spec/semantic_conventions.md
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.ingest.otlp.messages import Messages, indexed_messages
from apps.ingest.otlp.values import as_str, json_or_value

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

# Newer instrumentations (Anthropic's) also write the request's and the response's model.
REQUEST_MODEL = "llm.request.model_name"
MODEL = ("llm.response.model_name", "llm.model_name", REQUEST_MODEL, "embedding.model_name")
INVOCATION_PARAMETERS = "llm.invocation_parameters"
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
CONTENT_KEYS = frozenset({INPUT_VALUE, OUTPUT_VALUE, INVOCATION_PARAMETERS})


def content(attrs: Mapping[str, Any]) -> tuple[Messages, Messages]:
    return (
        indexed_messages(attrs, "llm.input_messages.", default_role="user", openinference=True),
        indexed_messages(
            attrs, "llm.output_messages.", default_role="assistant", openinference=True
        ),
    )


def invocation_model(attrs: Mapping[str, Any]) -> str:
    """The model asked for in the invocation parameters: the OpenAI instrumentation names the
    model only from the response, so a failed call has it nowhere else."""
    parameters = json_or_value(attrs.get(INVOCATION_PARAMETERS))
    if not isinstance(parameters, dict):
        return ""
    return as_str(parameters.get("model"))
