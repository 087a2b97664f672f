"""A/B comparison of two groups of calls: releases, models or prompt versions.

"Is b worse than a, for which intents, how sure are we?" Every metric side by side with its
effect, interval and significance from ``apps.quality.regression.compare_releases``, stratified
by intent when the project has a fitted baseline: each call with a prompt embedding is given
its nearest intent of the active baseline, so a change in *what users ask* between the two
groups does not read as a change in *how well it is answered*.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.db import connection

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.drift.models import Baseline, BaselineStatus, IntentCluster
from apps.quality.regression import (
    DEFAULT_METRICS,
    MetricSample,
    RegressionResult,
    compare_releases,
)
from apps.traces.group_metrics import RECORD_METRICS, call_metric_records

Dimension = Literal["release", "model", "prompt_version"]
DIMENSIONS: tuple[Dimension, ...] = ("release", "model", "prompt_version")
MAX_CALLS_PER_GROUP = 5000


@dataclass(frozen=True)
class Comparison:
    dimension: str
    a: str
    b: str
    n_a: int
    n_b: int
    results: list[RegressionResult]
    stratified: bool
    intent_mix: list[dict[str, Any]]  # [{"intent", "share_a", "share_b"}], largest change first

    @property
    def regressed(self) -> list[RegressionResult]:
        return [r for r in self.results if r.regressed]

    @property
    def headline(self) -> str:
        """One plain sentence first: what got worse, or that nothing did."""
        if not self.results or all(r.verdict == "insufficient data" for r in self.results):
            return (
                f"Not enough calls to compare {self.b} with {self.a} yet "
                f"({self.n_b} vs {self.n_a} calls)."
            )
        worse = [metric_label(r) for r in self.regressed]
        better = [metric_label(r) for r in self.results if r.improved]
        if worse:
            return f"{self.b} is worse than {self.a} on " + ", ".join(worse) + "."
        if better:
            return f"{self.b} is better than {self.a} on " + ", ".join(better) + "; nothing worse."
        return f"No significant difference between {self.b} and {self.a}."

    def as_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "a": self.a,
            "b": self.b,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "stratified_by_intent": self.stratified,
            "headline": self.headline,
            "regressed": [metric_label(r) for r in self.regressed],
            "intent_mix": self.intent_mix,
            "metrics": [result_as_dict(r) for r in self.results],
        }


def metric_label(r: RegressionResult) -> str:
    return r.metric  # quantile results are named "<metric>.p95" already


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def result_as_dict(r: RegressionResult) -> dict[str, Any]:
    return {
        "metric": metric_label(r),
        "kind": r.kind,
        "verdict": r.verdict,
        "a": _finite(r.baseline_value),
        "b": _finite(r.current_value),
        "effect": _finite(r.effect),
        "effect_kind": r.effect_kind,
        "ci_low": _finite(r.ci_low),
        "ci_high": _finite(r.ci_high),
        "p_value": _finite(r.p_value),
        "q_value": _finite(r.q_value),
        "test": r.test,
        "n_a": r.n_baseline,
        "n_b": r.n_current,
        "summary": r.summary,
        "example_call_ids": list(r.example_ids),
    }


def active_baseline(*, project: Project) -> Baseline | None:
    """The newest ready pinned baseline, else the newest ready one (as drift checks use)."""
    return (
        Baseline.objects.filter(project=project, status=BaselineStatus.READY)
        .defer("state")
        .order_by("-pinned", "-fitted_at")
        .first()
    )


def call_intents(*, project: Project, call_ids: list[str]) -> dict[str, str]:
    """Call id -> the display name of its nearest intent in the active baseline (calls with a
    prompt embedding of the baseline's provider only)."""
    baseline = active_baseline(project=project)
    if baseline is None or not call_ids:
        return {}
    names = {
        c.index: c.display_name
        for c in IntentCluster.objects.filter(baseline=baseline).only("index", "name", "label")
    }
    if not names:
        return {}
    sql = """
        SELECT e.call_id::text, (
            SELECT ic.index FROM drift_intentcluster ic WHERE ic.baseline_id = %s
            ORDER BY ic.centroid <=> e.vector::vector LIMIT 1)
        FROM embeddings_callembedding e
        WHERE e.project_id = %s AND e.kind = 'prompt' AND e.provider_key = %s
          AND e.call_id = ANY(%s::uuid[])
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [baseline.pk, project.pk, baseline.provider_key, call_ids])
        return {cid: names.get(idx, f"intent {idx}") for cid, idx in cursor.fetchall()}


def compare_groups(
    *,
    project: Project,
    dimension: str,
    a: str,
    b: str,
    start: datetime | None = None,
    end: datetime | None = None,
    prompt_name: str | None = None,
    alpha: float = 0.05,
) -> Comparison:
    """Group ``b`` against group ``a`` of one dimension, LLM calls in [start, end)."""
    if dimension not in DIMENSIONS:
        raise ApplicationError(f"dimension: one of {', '.join(DIMENSIONS)}", field="dimension")
    for field, value in (("a", a), ("b", b)):
        if not value or "\x00" in value:
            raise ApplicationError(f"{field}: required", field=field)
    if dimension == "prompt_version" and not prompt_name:
        raise ApplicationError("prompt: required to compare prompt versions", field="prompt")
    base_where = {"prompt_name": prompt_name} if prompt_name else {}
    records_a = call_metric_records(
        project_id=project.pk, where={**base_where, dimension: a}, start=start, end=end,
        limit=MAX_CALLS_PER_GROUP,
    )  # fmt: skip
    records_b = call_metric_records(
        project_id=project.pk, where={**base_where, dimension: b}, start=start, end=end,
        limit=MAX_CALLS_PER_GROUP,
    )  # fmt: skip
    intents = call_intents(project=project, call_ids=[r["id"] for r in records_a + records_b])
    for row in records_a + records_b:
        row["intent"] = intents.get(row["id"], "")
    # Stratify only when most calls of both groups have an intent; calls without one would
    # otherwise form a stratum of their own.
    covered = sum(1 for r in records_a + records_b if r["intent"])
    stratified = bool(records_a and records_b) and covered >= 0.8 * (
        len(records_a) + len(records_b)
    )
    metrics = [m for m in RECORD_METRICS if m in DEFAULT_METRICS]
    key = "intent" if stratified else None
    sample_a = MetricSample.from_records(records_a, metrics, stratum_key=key, label=a)
    sample_b = MetricSample.from_records(records_b, metrics, stratum_key=key, label=b)
    results = compare_releases(
        sample_a, sample_b, alpha=alpha, stratify=stratified,
        metrics={m: DEFAULT_METRICS[m] for m in metrics},
    )  # fmt: skip
    return Comparison(
        dimension=dimension,
        a=a,
        b=b,
        n_a=len(records_a),
        n_b=len(records_b),
        results=results,
        stratified=stratified,
        intent_mix=_intent_mix(records_a, records_b),
    )


def _intent_mix(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    count_a = Counter(r["intent"] for r in a if r["intent"])
    count_b = Counter(r["intent"] for r in b if r["intent"])
    total_a, total_b = sum(count_a.values()) or 1, sum(count_b.values()) or 1
    mix = [
        {
            "intent": name,
            "share_a": round(count_a[name] / total_a, 4),
            "share_b": round(count_b[name] / total_b, 4),
        }
        for name in set(count_a) | set(count_b)
    ]
    mix.sort(key=lambda m: abs(m["share_b"] - m["share_a"]), reverse=True)
    return mix


def dimension_values(
    *, project: Project, dimension: str, prompt_name: str | None = None, limit: int = 50
) -> list[str]:
    """The values seen for a dimension, most recently used first (for pickers)."""
    if dimension not in DIMENSIONS:
        raise ApplicationError(f"dimension: one of {', '.join(DIMENSIONS)}", field="dimension")
    extra = ""
    params: list[Any] = [project.pk]
    if prompt_name:
        extra = " AND prompt_name = %s"
        params.append(prompt_name)
    sql = f"""
        SELECT {dimension} FROM traces_call
        WHERE project_id = %s AND kind = 'llm' AND {dimension} <> ''{extra}
        GROUP BY 1 ORDER BY max(start_time) DESC LIMIT %s
    """  # noqa: S608 - the column is one of DIMENSIONS
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return [row[0] for row in cursor.fetchall()]
