"""OTLP/HTTP ingestion: traces (``/v1/traces``, and Langfuse's ``/api/public/otel/v1/traces``)
and GenAI events on logs (``/v1/logs``), stored through the native write path.

- ``decode``: bodies in (protobuf, OTLP/JSON) and answers out (Export*ServiceResponse, Status).
- ``values`` / ``messages``: attribute values and chat messages, shared by every convention.
- ``mapping``: spans -> native call events; one module per convention (``genai``,
  ``traceloop``, ``openinference``, ``langfuse``).
- ``logs``: GenAI event log records -> content of their span's call (pure).
- ``services``: the writes of OTLP logs (pending events, merge into stored calls).
- ``api``: the views.

Every span becomes one native ``call`` event, so limits, tenant scoping, dedupe and per-item
errors are those of ``POST /api/v1/ingest``. docs/otlp.md is the user-facing mapping table.
"""

from apps.ingest.otlp.decode import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPES,
    RPC_INTERNAL,
    RPC_INVALID_ARGUMENT,
    RPC_PERMISSION_DENIED,
    RPC_RESOURCE_EXHAUSTED,
    RPC_UNAUTHENTICATED,
    RPC_UNIMPLEMENTED,
    OtlpDecodeError,
    SpanRejection,
    decode_json,
    decode_logs_json,
    decode_logs_protobuf,
    decode_protobuf,
    encode_response,
    encode_status,
    summarize_rejections,
)
from apps.ingest.otlp.mapping import (
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_CHARS,
    METADATA_TRUNCATED_KEY,
    OTLP_SPAN_NAMESPACE,
    PROMPT_NAME_KEY,
    PROMPT_VERSION_KEY,
    OtlpMapping,
    map_request,
    map_span,
    span_event_id,
)

__all__ = [
    "JSON_CONTENT_TYPE",
    "METADATA_MAX_KEYS",
    "METADATA_MAX_VALUE_CHARS",
    "METADATA_TRUNCATED_KEY",
    "OTLP_SPAN_NAMESPACE",
    "PROMPT_NAME_KEY",
    "PROMPT_VERSION_KEY",
    "PROTOBUF_CONTENT_TYPES",
    "RPC_INTERNAL",
    "RPC_INVALID_ARGUMENT",
    "RPC_PERMISSION_DENIED",
    "RPC_RESOURCE_EXHAUSTED",
    "RPC_UNAUTHENTICATED",
    "RPC_UNIMPLEMENTED",
    "OtlpDecodeError",
    "OtlpMapping",
    "SpanRejection",
    "decode_json",
    "decode_logs_json",
    "decode_logs_protobuf",
    "decode_protobuf",
    "encode_response",
    "encode_status",
    "map_request",
    "map_span",
    "span_event_id",
    "summarize_rejections",
]
