"""``{% safety_settings project as rows %}``: the rows of the settings page's safety section.

A tag rather than view context so that the section is one include in the settings page."""

from __future__ import annotations

from typing import Any

from django import template

from apps.accounts.models import Project
from apps.dashboard.views.safety import FPR_FORM_CHOICES
from apps.quality.scorers.learned import OperatingPointInfo
from apps.quality.selectors import SafetySignalSetting, safety_settings_get

register = template.Library()


@register.simple_tag
def safety_settings(project: Project) -> list[SafetySignalSetting]:
    return safety_settings_get(project=project)


@register.simple_tag
def safety_fpr_choices() -> list[tuple[str, str]]:
    return FPR_FORM_CHOICES


@register.filter
def fpr_value(value: float | None) -> str:
    """The form value of a chosen FPR ("" for the default)."""
    return "" if value is None else f"{value:g}"


@register.filter
def fpr_pct(value: float | None) -> str:
    """A false-positive rate as a percentage with two significant digits ("0.28%", "1%")."""
    if value is None:
        return "\u2013"
    return f"{value * 100:.2g}%"


@register.simple_tag
def safety_points(project: Project) -> dict[str, OperatingPointInfo]:
    """The operating point in force per learned signal for ``project`` (for captions)."""
    return {row.signal: row.point for row in safety_settings_get(project=project)}


@register.filter
def point_of(points: dict[str, OperatingPointInfo], signal: str) -> OperatingPointInfo | None:
    return points.get(signal)


@register.simple_tag
def stored_fpr(signals: Any, signal: str) -> float | None:
    """The benign FPR the stored learned score of ``signal`` was cut at (None: heuristic)."""
    if isinstance(signals, dict):
        value = (signals.get("safety_fpr") or {}).get(signal)
        if isinstance(value, int | float):
            return float(value)
    return None
