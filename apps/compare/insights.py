"""Cost insight: where the money goes and where it need not.

Three reads over the LLM calls of a window (the newest ``MAX_CALLS`` of it):

* cost and quality per (intent, model): calls, cost, cost per call, negative-feedback rate,
  error rate, p50 latency;
* duplicate prompts a response cache keyed on (model, normalised prompt) would have served,
  with the money saved (``apps.quality.insights.duplicate_prompts``);
* intents where a cheaper model is not significantly worse on negative feedback (a one-sided
  non-inferiority test, BH-adjusted; ``apps.quality.insights.routing_suggestions``), with the
  saving over the window and the evidence.

A call's intent is its nearest intent of the active drift baseline when it has a prompt
embedding (as the compare page stratifies), else the ``intent`` the client put in its
metadata, else "(no intent)".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection

from apps.accounts.models import Project
from apps.compare.selectors import call_intents
from apps.quality.insights import DuplicateGroup, RoutingSuggestion, duplicate_prompts
from apps.quality.insights import routing_suggestions as find_routing_suggestions
from apps.traces.models import LLM_KINDS, NEGATIVE_LABELS, NEGATIVE_SCORE_BELOW

MAX_CALLS = 20_000
NO_INTENT = "(no intent)"
# A cache key is the normalised prompt; a prompt longer than this is compared on this prefix
# plus its length and md5, so the read stays bounded while a false match stays impossible.
PROMPT_PREFIX = 2000


@dataclass(frozen=True)
class SegmentCost:
    intent: str
    model: str
    calls: int
    cost_usd: float
    cost_per_call: float | None
    rated: int
    negative_rate: float | None
    error_rate: float
    p50_latency_ms: float | None
    share_of_cost: float


@dataclass(frozen=True)
class CostInsights:
    start: datetime
    end: datetime
    calls: int
    truncated: bool
    total_cost_usd: float
    segments: list[SegmentCost]
    duplicates: list[DuplicateGroup]
    cache_saving_usd: float
    routing: list[RoutingSuggestion]
    routing_saving_usd: float
    margin: float
    min_n: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "calls": self.calls,
            "truncated": self.truncated,
            "total_cost_usd": self.total_cost_usd,
            "segments": [asdict(s) for s in self.segments],
            "cache": {
                "saving_usd": self.cache_saving_usd,
                "groups": [{**asdict(g), "call_ids": list(g.call_ids)} for g in self.duplicates],
            },
            "routing": {
                "margin": self.margin,
                "min_feedback_per_model": self.min_n,
                "saving_usd": self.routing_saving_usd,
                "suggestions": [_finite_dict(asdict(r)) for r in self.routing],
            },
        }


def _finite_dict(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()
    }


def _records(*, project: Project, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    sql = """
        SELECT c.id::text, c.model, c.cost_usd, c.status, c.latency_ms,
               CASE WHEN length(c.prompt) > %(prefix)s
                    THEN left(c.prompt, %(prefix)s) || '…' || length(c.prompt) || ':'
                         || md5(c.prompt)
                    ELSE c.prompt END,
               coalesce(c.metadata ->> 'intent', ''), fb.negative
        FROM traces_call c
        LEFT JOIN LATERAL (
            SELECT bool_or(f.score < %(neg)s OR lower(btrim(f.label)) = ANY(%(labels)s))
                AS negative
            FROM traces_feedback f WHERE f.project_id = c.project_id AND f.call_id = c.id
            HAVING count(*) > 0
        ) fb ON true
        WHERE c.project_id = %(project)s AND c.kind = ANY(%(kinds)s)
          AND c.start_time >= %(start)s AND c.start_time < %(end)s
        ORDER BY c.start_time DESC LIMIT %(limit)s
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "prefix": PROMPT_PREFIX,
                "neg": NEGATIVE_SCORE_BELOW,
                "labels": sorted(NEGATIVE_LABELS),
                "project": project.pk,
                "kinds": list(LLM_KINDS),
                "start": start,
                "end": end,
                "limit": MAX_CALLS + 1,
            },
        )
        return list(cursor.fetchall())


def cost_insights(
    *,
    project: Project,
    start: datetime,
    end: datetime,
    margin: float = 0.02,
    min_n: int = 30,
    duplicate_limit: int = 20,
) -> CostInsights:
    """The three insights over [start, end) (see the module docstring). ``margin`` is the
    largest rise in negative-feedback rate accepted for a cheaper model (absolute), ``min_n``
    the calls with feedback each model needs in an intent before it is tested."""
    rows = _records(project=project, start=start, end=end)
    truncated = len(rows) > MAX_CALLS
    rows = rows[:MAX_CALLS]
    ids = [r[0] for r in rows]
    by_embedding = call_intents(project=project, call_ids=ids)
    intents = [by_embedding.get(r[0]) or r[6] or NO_INTENT for r in rows]
    models = [r[1] or "(unknown model)" for r in rows]
    costs: list[float | None] = [r[2] for r in rows]
    negative: list[float | None] = [None if r[7] is None else float(r[7]) for r in rows]
    total = float(sum(c for c in costs if c is not None and math.isfinite(c)))

    segments = _segments(rows, intents, models, total)
    duplicates = duplicate_prompts(
        [r[5] for r in rows], costs, models=models, ids=ids, limit=duplicate_limit
    )
    # Every group, not only the listed ones, counts toward the saving.
    all_groups = duplicate_prompts([r[5] for r in rows], costs, models=models, limit=len(rows))
    routing = find_routing_suggestions(
        intents=intents,
        models=models,
        negative_feedback=negative,
        costs=costs,
        margin=margin,
        min_n=min_n,
    )
    # One suggestion per (intent, current model): the one that saves most.
    best: dict[tuple[str, str], RoutingSuggestion] = {}
    for s in routing:
        key = (s.intent, s.current_model)
        if key not in best or s.monthly_saving_estimate > best[key].monthly_saving_estimate:
            best[key] = s
    chosen = sorted(best.values(), key=lambda s: -s.monthly_saving_estimate)
    return CostInsights(
        start=start,
        end=end,
        calls=len(rows),
        truncated=truncated,
        total_cost_usd=total,
        segments=segments,
        duplicates=duplicates,
        cache_saving_usd=float(sum(g.avoidable_cost for g in all_groups)),
        routing=chosen,
        routing_saving_usd=float(sum(s.monthly_saving_estimate for s in chosen)),
        margin=margin,
        min_n=min_n,
    )


def _segments(
    rows: list[tuple[Any, ...]], intents: list[str], models: list[str], total: float
) -> list[SegmentCost]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(intents, models, strict=True)):
        groups.setdefault(key, []).append(i)
    out = []
    for (intent, model), members in groups.items():
        priced = [
            rows[i][2] for i in members if rows[i][2] is not None and math.isfinite(rows[i][2])
        ]
        rated = [rows[i][7] for i in members if rows[i][7] is not None]
        latencies = [rows[i][4] for i in members if rows[i][4] is not None]
        cost = float(sum(priced))
        out.append(
            SegmentCost(
                intent=intent,
                model=model,
                calls=len(members),
                cost_usd=cost,
                cost_per_call=cost / len(priced) if priced else None,
                rated=len(rated),
                negative_rate=sum(1 for v in rated if v) / len(rated) if rated else None,
                error_rate=sum(1 for i in members if rows[i][3] == "error") / len(members),
                p50_latency_ms=float(np.median(latencies)) if latencies else None,
                share_of_cost=cost / total if total else 0.0,
            )
        )
    out.sort(key=lambda s: (-s.cost_usd, s.intent, s.model))
    return out
