"""Reads for the incident page: earlier incidents like this one (when, how long, how bad)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Max, Min, Q

from apps.alerts.evaluators import format_value
from apps.alerts.models import Incident, Operator


@dataclass(frozen=True)
class PastIncident:
    incident: Incident
    reason: str  # "same rule" or "same metric and scope"
    duration: timedelta | None  # None while it is still open
    peak: str  # the worst value seen, in the metric's unit

    @property
    def lasted(self) -> str:
        return "still open" if self.duration is None else human_duration(self.duration)


def human_duration(duration: timedelta) -> str:
    """ "40 s", "45 min", "3 h 5 min", "2 d 4 h": two units at most."""
    seconds = int(duration.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    if seconds < 3600:
        return f"{seconds // 60} min"
    if days == 0:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{days} d" + (f" {hours} h" if hours else "")


def incidents_similar_past(*, incident: Incident, limit: int = 10) -> list[PastIncident]:
    """Incidents of the same project that started earlier, of the same rule, or of another rule
    on the same metric and the same scope (group), newest first. The peak is the worst value of
    the incident's evaluations: the highest for a "rises above" rule, the lowest for "below"."""
    rule = incident.rule
    same = Q(rule_id=rule.pk)
    if rule.metric:
        same |= Q(rule__metric=rule.metric, group_key=incident.group_key)
    rows = (
        Incident.objects.filter(project_id=incident.project_id, started_at__lt=incident.started_at)
        .filter(same)
        .exclude(pk=incident.pk)
        .select_related("rule")
        .annotate(highest=Max("events__value"), lowest=Min("events__value"))
        .order_by("-started_at", "-id")[:limit]
    )
    out = []
    for past in rows:
        below = past.rule.operator in (Operator.LT, Operator.LTE)
        worst = past.lowest if below else past.highest
        values = [v for v in (worst, past.value) if v is not None]
        peak = (min(values) if below else max(values)) if values else None
        metric = past.rule.metric or str((past.details or {}).get("metric", ""))
        out.append(
            PastIncident(
                incident=past,
                reason="same rule" if past.rule_id == rule.pk else "same metric and scope",
                duration=past.resolved_at - past.started_at if past.resolved_at else None,
                peak=format_value(metric, peak) if peak is not None else "\u2013",
            )
        )
    return out
