"""Reads of the quality app: a project's safety operating points."""

from __future__ import annotations

from dataclasses import dataclass

from apps.accounts.models import Project
from apps.quality.models import SafetySettings
from apps.quality.scorers import learned
from apps.quality.scorers.learned import OperatingPointInfo


def safety_fpr_for_project(*, project_id: int) -> dict[str, float]:
    """The benign FPR a project chose per learned signal (``{"injection": 0.005}``); signals it
    left at the default are absent. One query: callers look it up once per batch of calls."""
    row = SafetySettings.objects.filter(project_id=project_id).first()
    if row is None:
        return {}
    return {
        signal: float(value)
        for signal in learned.SIGNALS
        if (value := getattr(row, f"{signal}_fpr")) is not None
    }


@dataclass(frozen=True, slots=True)
class SafetySignalSetting:
    """One learned signal's operating point as the settings screen and the API show it."""

    signal: str
    chosen_fpr: float | None  # None: the deployment's default
    point: OperatingPointInfo  # the point in force, with its measured figures


def safety_settings_get(*, project: Project) -> list[SafetySignalSetting]:
    """Per learned signal: the project's choice and what is expected at the point in force."""
    chosen = safety_fpr_for_project(project_id=project.pk)
    points = learned.operating_points(None, chosen)
    return [
        SafetySignalSetting(signal=p.signal, chosen_fpr=chosen.get(p.signal), point=p)
        for p in points
    ]
