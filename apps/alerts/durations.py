"""Durations as people write them in rules: ``"30s"``, ``"5m"``, ``"1h"``, ``"7d"`` or seconds."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")


def parse_duration(value: object) -> int:
    """Seconds in ``value``; ``ValueError`` with a readable message when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '5m', '1h' or a number of seconds")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and (match := _PATTERN.match(value.lower())):
        seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError("expected a duration such as '5m', '1h' or a number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact spelling: 300 -> "5m", 90 -> "90s", 0 -> "0s"."""
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
