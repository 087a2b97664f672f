"""A native ingest body decoded into events, one bad event never costing its neighbours.

The fast path decodes and validates the whole batch in one msgspec pass. When that fails, the
body is decoded loosely (events as plain values, validated one by one later). Two things make
even the loose decode fail for the whole body, and both are handled here:

- a lone surrogate escape (``"\\ud800"``, which Python's ``json.dumps`` writes for a broken
  string): msgspec refuses it, so such escapes are rewritten to U+FFFD in the raw text first;
- a value msgspec cannot decode at all (nested past its recursion limit, a number out of range):
  the ``batch`` array is split into its elements by a scanner that keeps no stack, and each
  element is decoded on its own; the one that fails becomes a per-event error.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from apps.core.errors import ApplicationError
from apps.ingest.sanitize import MAX_JSON_DEPTH
from apps.ingest.schemas import Batch, TypedBatch

# An escaped backslash (kept whole, so parity is right), a valid surrogate pair, or a lone half.
_SURROGATE_ESCAPE = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
_HAS_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
# Strings whole (with their escapes), and the structural characters.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)
_ID = re.compile(rb'"id"\s*:\s*"([0-9a-fA-F-]{32,36})"')

# Elements nested deeper than this are refused without being decoded (msgspec recurses, and
# stops near 1,000 levels); shallower ones are decoded and their fields checked precisely
# against MAX_JSON_DEPTH, so the error names the field.
_EVENT_DEPTH = 400


class BadEvent:
    """An element of ``batch`` that could not be decoded; validation reports it."""

    __slots__ = ("error", "id")

    def __init__(self, event_id: str | None, error: str) -> None:
        self.id = event_id
        self.error = error


def _replace_surrogate(match: re.Match[bytes]) -> bytes:
    text = match.group(0)
    if text == b"\\\\" or len(text) == 12:
        return text
    return b"\\ufffd"


def clean_surrogates(body: bytes) -> bytes:
    """Lone surrogate escapes in JSON text replaced by ``\\ufffd``; pairs left alone."""
    if not _HAS_SURROGATE.search(body):
        return body
    return _SURROGATE_ESCAPE.sub(_replace_surrogate, body)


def decode_batch(body: bytes) -> list[Any]:
    """The events of a native body: typed structs when all are valid, else plain values (and
    ``BadEvent`` for elements that cannot be decoded). 400 only when the body itself is not a
    JSON object with a ``batch`` array."""
    try:
        return list(msgspec.json.decode(body, type=TypedBatch).batch)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        pass
    body = clean_surrogates(body)
    try:
        return msgspec.json.decode(body, type=Batch).batch
    except msgspec.ValidationError as exc:
        if "$.batch[" not in str(exc):
            raise ApplicationError(f"batch: {exc}", field="batch") from exc
    except (msgspec.DecodeError, RecursionError):
        pass
    return _decode_elements(body)


def _decode_elements(body: bytes) -> list[Any]:
    spans = split_batch(body)
    events: list[Any] = []
    for start, end, depth in spans:
        raw = body[start:end].strip()
        found = _ID.search(raw)
        event_id = found.group(1).decode() if found else None
        if depth > _EVENT_DEPTH:
            events.append(
                BadEvent(
                    event_id,
                    f"event: nested {depth} levels deep (metadata, messages and tags allow "
                    f"{MAX_JSON_DEPTH})",
                )
            )
            continue
        try:
            events.append(msgspec.json.decode(raw))
            continue
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            error = f"event: invalid JSON ({exc})"
        try:
            # Python's own encoder writes NaN, Infinity and numbers past float range, which
            # msgspec refuses without naming the field; decoded here, they reach validation,
            # whose bounds name it.
            events.append(json.loads(raw))
        except (ValueError, RecursionError):
            events.append(BadEvent(event_id, error))
    return events


def split_batch(body: bytes) -> list[tuple[int, int, int]]:
    """(start, end, nesting depth) of each element of the top-level ``batch`` array.

    A scan over strings and brackets only, with a depth counter instead of a stack, so any
    nesting is measured, never recursed into. 400 when there is no such array.
    """
    depth = 0
    seen = 0  # 1: the key "batch" at the top level; 2: and its ":"
    in_batch = False
    start = 0
    deepest = 0
    spans: list[tuple[int, int, int]] = []
    for match in _TOKEN.finditer(body):
        token = match.group(0)
        kind = token[:1]
        if not in_batch:
            if kind == b"[" and depth == 1 and seen == 2:
                in_batch, depth, start, deepest = True, 2, match.end(), 0
                continue
            if kind == b'"':
                seen = 1 if depth == 1 and token == b'"batch"' else 0
            elif kind == b":":
                seen = 2 if seen == 1 else 0
            else:
                seen = 0
                depth += 1 if kind in b"[{" else -1 if kind in b"]}" else 0
            continue
        if kind in b"[{":
            depth += 1
            deepest = max(deepest, depth - 2)
        elif kind in b"]}":
            if depth == 2:
                if kind == b"}":
                    break  # "[ ... }": not an array
                if body[start : match.start()].strip():
                    spans.append((start, match.start(), deepest))
                return spans
            depth -= 1
        elif kind == b"," and depth == 2:
            spans.append((start, match.start(), deepest))
            start, deepest = match.end(), 0
    raise ApplicationError("body: invalid JSON (expected an object with a batch array)")
