"""The native ingestion format, validated with msgspec (microseconds per event, not DRF's ~1 ms).

An event is ``{"type": "call" | "feedback", "id": "<uuid>", "body": {...}}``. Unknown body keys
are rejected so that a typo in a field name is reported, not silently dropped.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
# Finite and bounded: +Inf/NaN are not JSON, and a sum of huge values overflows float8 in the
# rollups and the KPIs of every later read.
NonNegFloat = Annotated[float, msgspec.Meta(ge=0, le=1e12)]
Score = Annotated[float, msgspec.Meta(ge=-1e12, le=1e12)]
Short = Annotated[str, msgspec.Meta(max_length=255)]


class CallBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    # Optional: a call without one is stamped with the time it was received (or its end_time),
    # and ``metadata["driftline.start_time"]`` records which.
    start_time: datetime | None = None
    end_time: datetime | None = None
    trace_id: Annotated[str, msgspec.Meta(max_length=64)] = ""
    parent_id: uuid.UUID | None = None
    session_id: Short = ""
    user_id: Short = ""
    name: Short = ""
    kind: Literal["llm", "span", "tool", "chain", "retrieval", "embedding", "agent"] = "llm"
    provider: Annotated[str, msgspec.Meta(max_length=64)] = ""
    model: Short = ""
    prompt: str | None = None
    messages: list[Any] | None = None
    response: str | None = None
    input_tokens: NonNegInt | None = None
    output_tokens: NonNegInt | None = None
    total_tokens: NonNegInt | None = None
    cached_tokens: NonNegInt | None = None
    reasoning_tokens: NonNegInt | None = None
    cost_usd: NonNegFloat | None = None
    latency_ms: NonNegFloat | None = None
    ttft_ms: NonNegFloat | None = None
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    error_type: Short = ""
    release: Annotated[str, msgspec.Meta(max_length=128)] = ""
    environment: Annotated[str, msgspec.Meta(max_length=64)] = ""
    prompt_name: Short = ""
    prompt_version: Annotated[str, msgspec.Meta(max_length=64)] = ""
    tags: list[Annotated[str, msgspec.Meta(max_length=128)]] = []
    metadata: dict[str, Any] = {}


class FeedbackBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    call_id: uuid.UUID
    source: Literal["end_user", "reviewer"] = "end_user"
    score: Score | None = None
    label: Annotated[str, msgspec.Meta(max_length=128)] = ""
    comment: str = ""
    user_id: Short = ""
    created_at: datetime | None = None


class CallEvent(msgspec.Struct, tag="call", tag_field="type", forbid_unknown_fields=True):
    id: uuid.UUID
    body: CallBody


class FeedbackEvent(msgspec.Struct, tag="feedback", tag_field="type", forbid_unknown_fields=True):
    id: uuid.UUID
    body: FeedbackBody


class TypedBatch(msgspec.Struct):
    """The fast path: a batch whose every event is valid decodes in one pass."""

    batch: list[CallEvent | FeedbackEvent]


class Event(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["call", "feedback"]
    id: uuid.UUID
    body: dict[str, Any]


class Batch(msgspec.Struct):
    batch: list[Any]
