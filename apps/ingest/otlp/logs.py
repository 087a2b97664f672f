"""OTLP log records -> GenAI content events of their span's call. Pure.

The GenAI conventions send content as events, and SDKs that follow the current conventions emit
events as log records (``event_name``, or the older ``event.name`` attribute), linked to their
span by trace and span id: ``gen_ai.{system,user,assistant,tool}.message``, ``gen_ai.choice``
and ``gen_ai.client.inference.operation.details``. Every other record (application logs) is
answered with success and dropped; a GenAI event without a span cannot be placed and is dropped
too. https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-events/
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from apps.ingest.otlp.mapping import apply_content, span_event_id
from apps.ingest.otlp.messages import (
    DETAILS_EVENT,
    GENAI_CONTENT_EVENTS,
    Messages,
    event_payload,
    messages_from_event,
)
from apps.ingest.otlp.values import any_value, attributes_of, compact, json_or_value, valid_id


@dataclass(frozen=True)
class LogContentEvent:
    call_id: str
    event_key: str
    name: str
    time_unix_nano: int
    seq: int
    payload: Any


@dataclass
class LogsMapping:
    events: list[LogContentEvent] = field(default_factory=list)
    # Records answered with success but not kept (not GenAI content, or no span to attach to).
    dropped: int = 0


def map_logs_request(request: ExportLogsServiceRequest) -> LogsMapping:
    mapping = LogsMapping()
    seq = 0
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                seq += 1
                try:
                    event = _content_event(record, seq)
                except RecursionError:
                    event = None
                if event is None:
                    mapping.dropped += 1
                else:
                    mapping.events.append(event)
    return mapping


def _content_event(record: LogRecord, seq: int) -> LogContentEvent | None:
    attrs = attributes_of(record.attributes)
    name = record.event_name or str(attrs.get("event.name") or "")
    if name not in GENAI_CONTENT_EVENTS:
        return None
    if not valid_id(record.trace_id, 16) or not valid_id(record.span_id, 8):
        return None
    body = any_value(record.body) if record.HasField("body") else None
    body = json_or_value(body)
    if name == DETAILS_EVENT:
        # The details event carries its messages as attributes (gen_ai.input.messages ...).
        payload: Any = {**attrs, **body} if isinstance(body, dict) else attrs
    elif body is not None and body != "":
        payload = body
    else:
        payload = event_payload(attrs)
    at = record.time_unix_nano or record.observed_time_unix_nano
    key_source = compact([at, name, payload])
    return LogContentEvent(
        call_id=span_event_id(record.trace_id, record.span_id),
        event_key=hashlib.sha256(key_source.encode()).hexdigest(),
        name=name[:128],
        time_unix_nano=at,
        seq=seq,
        payload=payload,
    )


def content_from_events(events: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The call fields (``messages``, ``prompt``, ``response``) that a call's events, in order,
    carry; fields they do not carry are absent, so the span's own stay."""
    inputs: Messages = []
    outputs: Messages = []
    for name, payload in events:
        more_in, more_out = messages_from_event(name, payload)
        inputs += more_in
        outputs += more_out
    body: dict[str, Any] = {}
    apply_content(body, inputs, outputs, plain_prompt=False)
    tool_calls = [call for m in outputs for call in m.get("tool_calls", [])]
    if tool_calls:
        body["tool_calls"] = tool_calls
    return body
