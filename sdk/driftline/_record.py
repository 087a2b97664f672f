"""One observed call, and how it becomes a wire event.

The caller's thread only fills a :class:`CallRecord` (ids, clocks, references to inputs/outputs);
JSON encoding, truncation and redaction happen later on the background thread
(:func:`encode_call`), which keeps the per-call overhead to a few microseconds.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable
from typing import Any

_rng = random.Random()
_UUID4_MASK = ~(0xF000 << 64) & ~(0xC000 << 48) & ((1 << 128) - 1)
_UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)

# Per-field caps of the ingest schema (apps/ingest/schemas.py).
_SHORT = 255
_SNAPSHOT_MAX = 1000
_CAPS = {
    "provider": 64, "release": 128, "environment": 64, "trace_id": 64, "prompt_name": 255,
    "prompt_version": 64,
}  # fmt: skip


def reseed() -> None:
    """Called in a forked child: without it parent and child would draw the same ids."""
    _rng.seed()


def new_id() -> tuple[str, str]:
    """A random UUID4 as (canonical string, 32-hex form). ~4x cheaper than ``str(uuid4())``."""
    h = "%032x" % ((_rng.getrandbits(128) & _UUID4_MASK) | _UUID4_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", h


def iso(ts: float) -> str:
    """Epoch seconds -> ISO-8601 UTC with microseconds (no datetime: cheaper, same on 3.9+)."""
    secs = int(ts)
    micros = round((ts - secs) * 1_000_000)
    if micros >= 1_000_000:
        secs += 1
        micros -= 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{micros:06d}Z"


class TraceState:
    """Shared by every call of one trace: the sampling decision and whether it was overridden."""

    __slots__ = ("keep", "sampled", "trace_id")

    def __init__(self, trace_id: str, sampled: bool) -> None:
        self.trace_id = trace_id
        self.sampled = sampled
        self.keep = False


class CallRecord:
    """Mutable while the call runs; handed to the queue once it ends."""

    __slots__ = (
        "args",
        "capture_input",
        "capture_output",
        "error",
        "error_type",
        "extra",
        "id",
        "kind",
        "kwargs",
        "latency_ms",
        "name",
        "output",
        "param_names",
        "parent_id",
        "start",
        "status",
        "t0",
        "trace",
        "ttft_ms",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        parent: CallRecord | None,
        trace: TraceState,
        call_id: str,
    ) -> None:
        self.id = call_id
        self.name = name
        self.kind = kind
        self.trace = trace
        self.parent_id = parent.id if parent is not None else None
        self.start = time.time()
        self.t0 = time.perf_counter()
        self.args: Any = None
        self.kwargs: Any = None
        self.param_names: tuple[str, ...] | None = None
        self.capture_input = True
        self.capture_output = True
        self.output: Any = None
        self.status = "ok"
        self.error: str | None = None
        self.error_type: str | None = None
        self.latency_ms: float | None = None
        self.ttft_ms: float | None = None
        # Everything else of the wire body (model, tokens, user_id, tags, metadata, prompt...).
        self.extra: dict[str, Any] | None = None

    def set(self, **fields: Any) -> None:
        if self.extra is None:
            self.extra = {}
        for key, value in fields.items():
            if value is not None:
                self.extra[key] = value

    def mark_first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.t0) * 1000.0

    def fail(self, exc: BaseException) -> None:
        self.status = "error"
        self.error_type = type(exc).__name__
        try:
            self.error = str(exc) or type(exc).__name__
        except Exception:
            self.error = type(exc).__name__

    def finish(self) -> None:
        if self.latency_ms is None:
            self.latency_ms = (time.perf_counter() - self.t0) * 1000.0


def snapshot(value: Any, depth: int = 0) -> Any:
    """Copy containers (two levels) so later mutation by the app does not change what we send.

    Chat apps append the answer to their ``messages`` list right after the call; without this the
    recorded prompt would contain its own answer. Leaves, deeper levels and containers of more
    than 1000 items are kept by reference and encoded later on the background thread.
    """
    if depth < 3:
        kind = type(value)
        # Big containers are kept by reference: copying them would cost the caller O(n).
        if (kind is list or kind is tuple) and len(value) <= _SNAPSHOT_MAX:
            return [snapshot(v, depth + 1) for v in value]
        if kind is dict and len(value) <= _SNAPSHOT_MAX:
            return {k: snapshot(v, depth + 1) for k, v in value.items()}
    return value


def _json_default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)  # pydantic v2 (openai/anthropic objects)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:  # noqa: S110 - not a pydantic v2 model after all: fall through
            pass
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj)} bytes>"
    return repr(obj)


def to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default, ensure_ascii=False, skipkeys=True)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 14)] + "...[truncated]"


def _redact_tree(value: Any, redact: Callable[[str], str], limit: int) -> Any:
    if isinstance(value, str):
        return redact(_truncate(value, limit))
    if isinstance(value, dict):
        return {k: _redact_tree(v, redact, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_tree(v, redact, limit) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so that model objects become plain dicts for ``messages``."""
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False, skipkeys=True))


def _looks_like_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(m, dict) and "role" in m for m in value)
    )


def _inputs(rec: CallRecord) -> tuple[str | None, list[Any] | None]:
    """Map a decorated function's arguments to (prompt, messages)."""
    args = rec.args or []
    kwargs = rec.kwargs or {}
    names = rec.param_names or ()
    bound: dict[str, Any] = {}
    for i, value in enumerate(args):
        key = names[i] if i < len(names) else f"arg{i}"
        if key in ("self", "cls") and i == 0:
            continue
        bound[key] = value
    bound.update(kwargs)
    if not bound:
        return None, None
    messages = bound.get("messages")
    if _looks_like_messages(messages):
        rest = {k: v for k, v in bound.items() if k != "messages"}
        return (to_text(rest) if rest else None), _jsonable(messages)
    if len(bound) == 1:
        (only,) = bound.values()
        if isinstance(only, str):
            return only, None
        if _looks_like_messages(only):
            return None, _jsonable(only)
    return to_text(bound), None


def build_call_body(
    rec: CallRecord,
    *,
    release: str | None,
    environment: str | None,
    capture_content: bool,
    redact: Callable[[str], str] | None,
    max_chars: int,
) -> dict[str, Any]:
    latency = rec.latency_ms or 0.0
    body: dict[str, Any] = {
        "start_time": iso(rec.start),
        "end_time": iso(rec.start + latency / 1000.0),
        "trace_id": rec.trace.trace_id,
        "name": rec.name,
        "kind": rec.kind,
        "latency_ms": round(latency, 3),
        "status": rec.status,
    }
    if rec.parent_id:
        body["parent_id"] = rec.parent_id
    if rec.ttft_ms is not None:
        body["ttft_ms"] = round(rec.ttft_ms, 3)
    if release:
        body["release"] = release
    if environment:
        body["environment"] = environment
    if rec.error is not None:
        body["error"] = rec.error
        body["error_type"] = rec.error_type or ""
    extra = rec.extra
    if extra:
        body.update(extra)
    if capture_content:
        if rec.capture_input and "prompt" not in body and "messages" not in body:
            prompt, messages = _inputs(rec)
            if prompt is not None:
                body["prompt"] = prompt
            if messages is not None:
                body["messages"] = messages
        if rec.capture_output and "response" not in body and rec.output is not None:
            body["response"] = to_text(rec.output)
    else:
        for key in ("prompt", "messages", "response"):
            body.pop(key, None)
    if "messages" in body:
        body["messages"] = _jsonable(body["messages"])
    if "metadata" in body:
        body["metadata"] = _jsonable(body["metadata"])
    # Text fields: cap, then redact (redaction never makes text longer than a few tokens).
    ident = _identity
    red = redact or ident
    for key in ("prompt", "response", "error"):
        value = body.get(key)
        if isinstance(value, str):
            body[key] = red(_truncate(value, max_chars))
    for key in ("messages", "metadata"):
        if key in body:
            body[key] = _redact_tree(body[key], red, max_chars)
    for key in ("name", "model", "session_id", "user_id", "error_type"):
        value = body.get(key)
        if isinstance(value, str) and len(value) > _SHORT:
            body[key] = value[:_SHORT]
    for key, cap in _CAPS.items():
        value = body.get(key)
        if isinstance(value, str) and len(value) > cap:
            body[key] = value[:cap]
    if "tags" in body:
        body["tags"] = [str(t)[:128] for t in body["tags"]]
    return body


def _identity(text: str) -> str:
    return text
