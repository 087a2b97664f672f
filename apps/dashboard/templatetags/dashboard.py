"""Formatting filters for the UI. They return plain strings: autoescaping still applies."""

from __future__ import annotations

from typing import Any

from django import template

from apps.dashboard.selectors.overview import Kpi
from apps.traces.text import last_user_message

register = template.Library()


@register.filter
def incident_value(incident: Any, field: str = "value") -> str:
    """An incident's value (or ``threshold``) in the unit its summary uses: 13.0%, not 0.130."""
    from apps.alerts.evaluators import format_value

    value = getattr(incident, field, None)
    if value is None:
        return "\u2013"  # an en dash, as the rest of the table
    metric = incident.rule.metric or str((incident.details or {}).get("metric", ""))
    return format_value(metric, value)


@register.filter
def kpi_value(kpi: Kpi) -> str:
    return fmt(kpi.value, kpi.fmt)


@register.filter
def kpi_previous(kpi: Kpi) -> str:
    return fmt(kpi.previous, kpi.fmt)


@register.filter
def fmt(value: Any, kind: str = "int") -> str:
    if value is None:
        return "\u2013"  # an en dash: "no value"
    number = float(value)
    if kind == "usd":
        if abs(number) >= 1:
            return f"${number:,.2f}"
        return f"${number:.4f}" if abs(number) >= 0.001 or number == 0 else f"${number:.6f}"
    if kind == "ms":
        return f"{number / 1000:,.2f} s" if number >= 10_000 else f"{number:,.0f} ms"
    if kind == "pct":
        return f"{number * 100:.1f}%"
    if kind == "score":
        return f"{number:.2f}"
    if abs(number) >= 1_000_000:
        return f"{number / 1_000_000:.1f}M"
    if abs(number) >= 10_000:
        return f"{number / 1000:.1f}k"
    return f"{number:,.0f}"


@register.filter
def delta(kpi: Kpi) -> str:
    d = kpi.delta
    if d is None:
        return ""
    arrow = "▲" if d > 0 else "▼" if d < 0 else ""
    if d >= 9:  # "+14536%" reads worse than "146 times"
        return f"{arrow} {d + 1:,.0f}\u00d7"  # multiplication sign
    return f"{arrow} {abs(d) * 100:.1f}%"


@register.filter
def pct(value: float | None) -> str:
    return fmt(value, "pct")


@register.filter
def ms(value: float | None) -> str:
    return fmt(value, "ms")


@register.filter
def usd(value: float | None) -> str:
    return fmt(value, "usd")


@register.filter
def indent_px(depth: int) -> int:
    return min(int(depth), 12) * 18


@register.filter
def truncate_text(value: str | None, length: int = 140) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= length else text[: length - 1] + "…"


@register.filter
def call_preview(call: Any) -> str:
    """What a call was asked: the prompt, else the last user message, else its name."""
    if getattr(call, "prompt", ""):
        return str(call.prompt)
    asked = last_user_message(getattr(call, "messages", None))
    if asked:
        return asked
    return str(getattr(call, "name", "") or "(no prompt)")


@register.filter
def seconds(value: int | None) -> str:
    """A duration in seconds as people say it: "15 min", "2 h", "1 d"."""
    if value is None:
        return "\u2013"
    total = int(value)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if total >= size and total % size == 0:
            return f"{total // size} {unit}"
    return f"{total} s"
