"""Aggregates of calls grouped by one or more columns (prompt version, session, end user).

One SQL statement per read, scoped to a project and a time range: counts, cost, latency
percentiles, error/flag/refusal rates and negative feedback per group. Used by the prompts,
sessions and users reads; the dashboards' time series read rollups instead (``rollups.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from apps.traces.models import NEGATIVE_LABELS, NEGATIVE_SCORE_BELOW

# Columns a caller may group by (identifiers are never taken from a request).
GROUPABLE = frozenset({"prompt_name", "prompt_version", "session_id", "end_user_id", "model"})


@dataclass(frozen=True)
class GroupMetrics:
    key: tuple[str, ...]
    calls: int
    first_seen: datetime
    last_seen: datetime
    cost_usd: float
    input_tokens: int
    output_tokens: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    errors: int
    flagged: int
    refusals: int
    feedback: int
    negative_feedback: int
    traces: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def flag_rate(self) -> float:
        return self.flagged / self.calls if self.calls else 0.0

    @property
    def refusal_rate(self) -> float:
        return self.refusals / self.calls if self.calls else 0.0

    @property
    def negative_rate(self) -> float | None:
        return self.negative_feedback / self.feedback if self.feedback else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "traces": self.traces,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "cost_usd": round(self.cost_usd, 6),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "error_rate": round(self.error_rate, 4),
            "flag_rate": round(self.flag_rate, 4),
            "refusal_rate": round(self.refusal_rate, 4),
            "feedback": self.feedback,
            "negative_feedback": self.negative_feedback,
            "negative_feedback_rate": (
                round(self.negative_rate, 4) if self.negative_rate is not None else None
            ),
        }


def group_metrics(
    *,
    project_id: int,
    group_by: Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
    where: dict[str, str] | None = None,
    llm_only: bool = False,
    search: str | None = None,
    order: str = "last_seen",
    limit: int = 200,
    offset: int = 0,
) -> list[GroupMetrics]:
    """Per-group aggregates, newest (or costliest: ``order="cost"``) first.

    ``where`` holds equality filters on groupable columns; groups whose first key is "" (calls
    without a prompt name, session or user) are left out.
    """
    columns = list(group_by)
    if not columns or any(c not in GROUPABLE for c in columns):
        raise ValueError(f"group_by: one or more of {sorted(GROUPABLE)}")
    clauses = ["c.project_id = %s", f"c.{columns[0]} <> ''"]
    params: list[Any] = [project_id]
    if start is not None:
        clauses.append("c.start_time >= %s")
        params.append(start)
    if end is not None:
        clauses.append("c.start_time < %s")
        params.append(end)
    for column, value in (where or {}).items():
        if column not in GROUPABLE:
            raise ValueError(f"where: {column} is not groupable")
        clauses.append(f"c.{column} = %s")
        params.append(value)
    if llm_only:
        clauses.append("c.kind = 'llm'")
    if search:
        clauses.append(f"c.{columns[0]} ILIKE %s")
        params.append(f"%{_escape_like(search)}%")
    keys = ", ".join(f"c.{c}" for c in columns)
    order_sql = {"last_seen": "last_seen DESC", "cost": "cost DESC", "calls": "calls DESC"}[order]
    sql = f"""
        WITH calls AS (
            SELECT {keys}, c.id, c.trace_id, c.start_time, c.cost_usd, c.input_tokens,
                   c.output_tokens, c.latency_ms, c.status, c.flagged, c.refusal
            FROM traces_call c WHERE {" AND ".join(clauses)}
        ), fb AS (
            SELECT f.call_id, count(*) AS n,
                   bool_or(f.score < %s OR lower(trim(f.label)) = ANY(%s)) AS negative
            FROM traces_feedback f
            WHERE f.project_id = %s AND f.call_id IN (SELECT id FROM calls)
            GROUP BY f.call_id
        )
        SELECT {", ".join(columns)}, count(*) AS calls, min(start_time) AS first_seen,
               max(start_time) AS last_seen, coalesce(sum(cost_usd), 0) AS cost,
               coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
               count(*) FILTER (WHERE status = 'error'),
               count(*) FILTER (WHERE flagged),
               count(*) FILTER (WHERE refusal),
               count(fb.call_id),
               count(*) FILTER (WHERE fb.negative),
               count(DISTINCT nullif(trace_id, ''))
        FROM calls LEFT JOIN fb ON fb.call_id = calls.id
        GROUP BY {", ".join(columns)}
        ORDER BY {order_sql}
        LIMIT %s OFFSET %s
    """  # noqa: S608 - identifiers come from GROUPABLE, values are bound
    params += [NEGATIVE_SCORE_BELOW, sorted(NEGATIVE_LABELS), project_id, limit, offset]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n = len(columns)
    return [
        GroupMetrics(
            key=tuple(str(v) for v in row[:n]),
            calls=row[n],
            first_seen=row[n + 1],
            last_seen=row[n + 2],
            cost_usd=float(row[n + 3]),
            input_tokens=int(row[n + 4]),
            output_tokens=int(row[n + 5]),
            latency_p50_ms=row[n + 6],
            latency_p95_ms=row[n + 7],
            errors=row[n + 8],
            flagged=row[n + 9],
            refusals=row[n + 10],
            feedback=row[n + 11],
            negative_feedback=row[n + 12],
            traces=row[n + 13],
        )
        for row in rows
    ]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


# Per-call values the regression statistics compare (apps/quality/regression.py's metric names).
RECORD_METRICS = (
    "error", "flagged", "refusal", "injection", "pii", "negative_feedback", "latency_ms",
    "ttft_ms", "cost_usd", "input_tokens", "output_tokens", "total_tokens", "response_chars",
)  # fmt: skip


def call_metric_records(
    *,
    project_id: int,
    where: dict[str, str],
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 5000,
) -> list[dict[str, Any]]:
    """One dict per LLM call (newest first, at most ``limit``) with the values of
    :data:`RECORD_METRICS`: 0/1 for rates, numbers, None where unknown (no feedback yet)."""
    clauses = ["c.project_id = %s", "c.kind = 'llm'"]
    params: list[Any] = [project_id]
    for column, value in where.items():
        if column not in GROUPABLE and column not in {"release", "environment"}:
            raise ValueError(f"where: {column} cannot be filtered on")
        clauses.append(f"c.{column} = %s")
        params.append(value)
    if start is not None:
        clauses.append("c.start_time >= %s")
        params.append(start)
    if end is not None:
        clauses.append("c.start_time < %s")
        params.append(end)
    sql = f"""
        SELECT c.id, c.status = 'error', c.flagged, c.refusal, c.injection >= 0.5,
               cardinality(c.pii) > 0, fb.negative, c.latency_ms, c.ttft_ms, c.cost_usd,
               c.input_tokens, c.output_tokens, c.total_tokens, length(c.response)
        FROM traces_call c
        LEFT JOIN LATERAL (
            SELECT bool_or(f.score < %s OR lower(trim(f.label)) = ANY(%s)) AS negative
            FROM traces_feedback f WHERE f.project_id = c.project_id AND f.call_id = c.id
            HAVING count(*) > 0
        ) fb ON true
        WHERE {" AND ".join(clauses)}
        ORDER BY c.start_time DESC LIMIT %s
    """  # noqa: S608 - identifiers checked above, values bound
    with connection.cursor() as cursor:
        cursor.execute(sql, [NEGATIVE_SCORE_BELOW, sorted(NEGATIVE_LABELS), *params, limit])
        rows = cursor.fetchall()
    return [{"id": str(r[0]), **dict(zip(RECORD_METRICS, r[1:], strict=True))} for r in rows]
