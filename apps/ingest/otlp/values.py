"""OTLP attribute values as Python values, and the small coercions every mapping uses. Pure.

Attributes that hold structure arrive as JSON strings (OTel attributes are flat) or, from newer
SDKs, as ``AnyValue`` arrays/maps; both are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def attributes_of(values: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in values}


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


def first(attrs: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key present and not empty."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def as_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(as_str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def str_list(value: Any) -> list[str]:
    value = json_or_value(value)
    if isinstance(value, list):
        return [as_str(v) for v in value]
    return [as_str(value)] if value is not None else []


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value else None  # NaN is not a count
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def set_str(body: dict[str, Any], name: str, value: Any, limit: int) -> None:
    text = as_str(value)
    if text:
        body[name] = text[:limit]


def json_or_value(value: Any) -> Any:
    """A JSON string decoded; anything else (a string that is not JSON is text) as it is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def json_scalar_or_value(value: Any) -> Any:
    """Like ``json_or_value``, and also JSON-encoded strings (``"\\"text\\""``), which the
    Langfuse SDK writes for every value it serialises."""
    if isinstance(value, str) and value[:1] == '"':
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return value
        return decoded if isinstance(decoded, str) else value
    return json_or_value(value)


def content_value(value: Any) -> Any:
    """Message content; older instrumentations JSON-encode a list of parts into the string.

    Only such a list is decoded: a user who typed JSON keeps the text as typed.
    """
    if isinstance(value, str) and value.startswith("[{"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value
        if isinstance(parsed, list) and all(isinstance(p, dict) and "type" in p for p in parsed):
            return parsed
    return value


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def iso(unix_nano: int) -> str:
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    except (ValueError, OverflowError, OSError):
        # Past year 9999: kept as text so that validation refuses this span (naming the field).
        return f"{unix_nano}ns"
    return moment.isoformat()


def valid_id(value: bytes, size: int) -> bool:
    return len(value) == size and any(value)
