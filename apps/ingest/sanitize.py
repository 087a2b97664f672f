"""Hostile input, made safe per event before anything reaches PostgreSQL.

PostgreSQL text and jsonb cannot hold NUL; UTF-8 cannot hold a lone surrogate (Python's
``json`` decodes ``"\\ud800"`` into one, psycopg then fails the whole COPY); a timestamp past
year 9999 once shifted to UTC does not fit ``timestamptz``; an infinite float is not JSON; and a
document nested thousands of levels deep blows the stack of every recursive reader after us.
Each of these, left in one event, used to fail its whole batch or, once stored, every read of
its project. Here each is either cleaned (NUL stripped, surrogates replaced by U+FFFD) or
refused with an error that names the field, for that event only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from django.utils import timezone

MAX_JSON_DEPTH = 32
"""Nesting levels allowed in ``metadata``, ``messages`` (and the other JSON fields)."""

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON text: an escaped backslash (kept, so that the parity of backslashes is respected) or
# an escaped NUL (dropped).
_JSON_NUL = re.compile(r"(\\\\)|\\u0000")
_JSON = msgspec.json.Encoder()


class FieldError(ValueError):
    """One field of one event is refused; the message starts with the field's name."""


def clean_str(value: str) -> str:
    """NUL removed, lone surrogates replaced by U+FFFD; a clean string is returned as is."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii() and _SURROGATE.search(value):
        value = _SURROGATE.sub("\ufffd", value)
    return value


def _cleaned(value: Any, field: str) -> Any:
    """A copy of a decoded JSON value with every key and string cleaned, built without recursion
    (so a deep document cannot exhaust the stack); FieldError past ``MAX_JSON_DEPTH``."""
    root: list[Any] = [None]
    # (source, destination container, key or index in destination, depth)
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        src, dest, slot, depth = stack.pop()
        if isinstance(src, dict):
            if depth > MAX_JSON_DEPTH:
                raise FieldError(f"{field}: nested deeper than {MAX_JSON_DEPTH} levels")
            out: dict[str, Any] = {}
            dest[slot] = out
            for key, item in src.items():
                name = clean_str(key) if isinstance(key, str) else str(key)
                out[name] = None
                stack.append((item, out, name, depth + 1))
        elif isinstance(src, list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise FieldError(f"{field}: nested deeper than {MAX_JSON_DEPTH} levels")
            items: list[Any] = [None] * len(src)
            dest[slot] = items
            for index, item in enumerate(src):
                stack.append((item, items, index, depth + 1))
        elif isinstance(src, str):
            dest[slot] = clean_str(src)
        elif isinstance(src, float) and (src != src or src in (float("inf"), float("-inf"))):
            dest[slot] = None  # JSON has no NaN/Infinity; the value is unknown
        else:
            dest[slot] = src
    return root[0]


def json_field(value: Any, field: str, *, limit: int) -> str:
    """The JSON text for a jsonb column: cleaned, depth- and size-checked.

    The common case costs one msgspec encode and a few substring counts; the tree is walked
    only when the text could be too deep (more brackets than levels allowed) or would not encode.
    """
    try:
        text = _JSON.encode(value).decode()
    except (UnicodeEncodeError, RecursionError, TypeError, ValueError, OverflowError):
        value = _cleaned(value, field)
        text = _JSON.encode(value).decode()
    else:
        if text.count("{") + text.count("[") > MAX_JSON_DEPTH:
            _cleaned(value, field)  # raises when really too deep
    if len(text) > limit:
        raise FieldError(f"{field}: {len(text)} bytes of JSON is over the limit of {limit}")
    if "\\u0000" in text:
        text = _JSON_NUL.sub(lambda m: m.group(1) or "", text)
    return text


def latest_time() -> datetime:
    """The upper bound of ``check_time``: now + 1 day (computed once per batch)."""
    return timezone.now() + FUTURE_SLACK


def check_time(value: datetime | None, field: str, *, latest: datetime) -> datetime | None:
    """Aware, and inside 2000-01-01 .. ``latest`` (what every later reader can handle)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        ok = EARLIEST <= value <= latest
    except OverflowError:
        ok = False
    if not ok:
        raise FieldError(
            f"{field}: {value.isoformat()} is outside 2000-01-01T00:00:00Z .. now + 1 day"
        )
    return value
