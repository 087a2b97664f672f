"""The overview's KPI cards (current against previous period), its filter facets and the links
from a number or a chart point to the calls behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from apps.accounts.models import Project
from apps.traces.metrics import CALL_TABLE, OverviewFilters, PeriodTotals, TimeWindow, fetch_rows
from apps.traces.models import Call
from apps.traces.rollups import ALPHA


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | None
    previous: float | None
    fmt: str  # "int" | "usd" | "ms" | "pct" | "score"
    # True when a rise is good news (volume, score); False when it is bad (cost, errors).
    higher_is_better: bool | None = None

    @property
    def delta(self) -> float | None:
        """Relative change against the previous period; None when it cannot be computed."""
        if self.value is None or self.previous in (None, 0):
            return None
        assert self.previous is not None
        return (self.value - self.previous) / abs(self.previous)

    @property
    def tone(self) -> str:
        d = self.delta
        if d is None or abs(d) < 0.005 or self.higher_is_better is None:
            return "neutral"
        return "good" if (d > 0) == self.higher_is_better else "bad"


def overview_kpis(current: PeriodTotals, previous: PeriodTotals) -> list[Kpi]:
    c, p = current.calls, previous.calls
    return [
        Kpi("calls", "LLM calls", c.calls, p.calls, "int", None),
        Kpi("cost", "Cost", c.cost_usd, p.cost_usd, "usd", False),
        Kpi("tokens", "Tokens", c.total_tokens, p.total_tokens, "int", None),
        Kpi("p50", "Latency p50", c.p50_ms, p.p50_ms, "ms", False),
        Kpi("p95", "Latency p95", c.p95_ms, p.p95_ms, "ms", False),
        Kpi("p99", "Latency p99", c.p99_ms, p.p99_ms, "ms", False),
        Kpi("errors", "Error rate", c.error_rate, p.error_rate, "pct", False),
        Kpi(
            "feedback",
            "Feedback score",
            current.feedback_score,
            previous.feedback_score,
            "score",
            True,
        ),
        Kpi("flagged", "Flagged", c.rate("flagged"), p.rate("flagged"), "pct", False),
    ]


# --- Facets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facets:
    models: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def call_facets(*, project: Project, since: datetime, limit: int = 100) -> Facets:
    """Distinct models, releases, environments and tags seen since ``since`` (for filters)."""
    where = "project_id = %s AND start_time >= %s"
    sql = f"""
        SELECT
          ARRAY(SELECT DISTINCT model FROM {CALL_TABLE} WHERE {where} AND model <> ''
                ORDER BY 1 LIMIT %s) AS models,
          ARRAY(SELECT DISTINCT release FROM {CALL_TABLE} WHERE {where} AND release <> ''
                ORDER BY 1 LIMIT %s) AS releases,
          ARRAY(SELECT DISTINCT environment FROM {CALL_TABLE} WHERE {where}
                AND environment <> '' ORDER BY 1 LIMIT %s) AS environments,
          ARRAY(SELECT DISTINCT tag FROM {CALL_TABLE}, unnest(tags) AS tag WHERE {where}
                ORDER BY 1 LIMIT %s) AS tags
    """  # noqa: S608 - identifiers are ours; values are parameters
    args: list[Any] = []
    for _ in range(4):
        args += [project.pk, since, limit]
    row = fetch_rows(sql, args)[0]
    return Facets(
        models=list(row["models"]),
        releases=list(row["releases"]),
        environments=list(row["environments"]),
        tags=list(row["tags"]),
    )


def project_has_calls(*, project: Project) -> bool:
    return Call.objects.filter(project=project).exists()


# --- Trace tree --------------------------------------------------------------------------------


# --- Click-through: the calls behind a number --------------------------------------------------


def calls_query(
    *, start: datetime, end: datetime, filters: OverviewFilters, **extra: str | float
) -> str:
    """The calls explorer's query string for the LLM calls of [start, end) under the overview's
    filters, plus ``extra`` explorer parameters (a sort, a latency floor, a status)."""
    params: dict[str, str] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "kind": "metrics",  # what the overview counts: LLM calls, not the spans around them
    }
    for name in ("model", "release", "environment", "tag"):
        value = getattr(filters, name)
        if value:
            params[name] = value
    params.update({k: str(v) for k, v in extra.items() if v not in (None, "")})
    return urlencode(params)


def latency_floor(value: float | None) -> str:
    """A latency lower bound that keeps every call at or above a sketched percentile (the sketch
    is within ALPHA of the exact value, either side)."""
    return "" if value is None else str(math.floor(value / (1 + ALPHA)))


def kpi_links(*, window: TimeWindow, filters: OverviewFilters, kpis: list[Kpi]) -> dict[str, str]:
    """KPI key -> the calls explorer's query for the calls behind it (the slowest call is one
    click from the p99 card: sorted by latency, slowest first)."""
    by_key = {k.key: k for k in kpis}

    def q(**extra: str | float) -> str:
        return calls_query(start=window.start, end=window.end, filters=filters, **extra)

    return {
        "calls": q(),
        "cost": q(sort="-cost"),
        "tokens": q(sort="-tokens"),
        "p50": q(sort="-latency", latency_min=latency_floor(by_key["p50"].value)),
        "p95": q(sort="-latency", latency_min=latency_floor(by_key["p95"].value)),
        "p99": q(sort="-latency", latency_min=latency_floor(by_key["p99"].value)),
        "errors": q(status="error"),
        "flagged": q(flagged="1"),
    }
