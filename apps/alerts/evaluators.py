"""Rule evaluators: one per rule kind, found through a registry (PostHog's detector design).

An evaluator reads what it needs and returns one :class:`Observation` per group; it writes
nothing. ``services.rule_evaluate`` turns observations into incident transitions. The metric and
budget evaluators live here; drift and regression evaluators are registered by the apps that own
the detectors::

    from apps.alerts.evaluators import Observation, observation_from_detection, register_evaluator

    @register_evaluator("embedding_drift")
    def evaluate_embedding_drift(rule, now):
        result = ...  # run the detector on the rule's window vs its baseline
        return [observation_from_detection(result, sample_count=n, examples=[...])]

A kind without a registered evaluator evaluates to an error on the rule (visible in the API),
never to an exception in the worker.

Size (~520 lines): the metric and budget evaluators share the grouping, rollup, example and
formatting helpers below; split it (``evaluators/{registry,metric}.py``) when another kind lands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db.models import (
    Aggregate,
    Count,
    Exists,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)

from apps.alerts.durations import format_duration
from apps.alerts.models import AlertRule, Metric, Operator, RuleKind, Severity
from apps.traces.metrics import CallBucket, PeriodTotals
from apps.traces.models import LLM_KINDS, NEGATIVE_LABELS, NEGATIVE_SCORE_BELOW, Call, Feedback
from apps.traces.rollup_selectors import rollup_groups

# Rule fields people may group by / filter on, and the Call column each maps to.
GROUP_BY_FIELDS: dict[str, str] = {
    "model": "model",
    "release": "release",
    "environment": "environment",
    "provider": "provider",
    "name": "name",
    "end_user": "end_user_id",
}
FILTER_FIELDS: dict[str, str] = {**GROUP_BY_FIELDS, "end_user_id": "end_user_id", "kind": "kind"}
SUM_METRICS = frozenset({Metric.COST, Metric.TOKENS, Metric.CALLS})
RATE_METRICS = frozenset(
    {Metric.ERROR_RATE, Metric.NEGATIVE_FEEDBACK_RATE, Metric.SAFETY_FLAG_RATE}
)
# The baseline is the same metric over the preceding BASELINE_WINDOWS windows (capped).
BASELINE_WINDOWS = 24
BASELINE_MAX = timedelta(days=7)
MAX_EXAMPLES = 5


@dataclass
class Observation:
    """The state of one group of a rule at one evaluation."""

    group: dict[str, str]
    value: float | None  # None: no data
    sample_count: int
    severity: str | None  # "warning" / "critical" when breached, None when clear
    threshold: float | None = None
    baseline: float | None = None
    summary: str = ""
    confidence: str = ""
    examples: list[dict[str, str]] = field(default_factory=list)  # {"call_id", "text"}
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def group_key(self) -> str:
        return group_key(self.group)


def group_key(group: dict[str, str]) -> str:
    return json.dumps(group, sort_keys=True, separators=(",", ":")) if group else ""


class Evaluator(Protocol):
    def __call__(self, rule: AlertRule, now: datetime) -> list[Observation]: ...


EVALUATORS: dict[str, Evaluator] = {}


def register_evaluator(kind: str) -> Callable[[Evaluator], Evaluator]:
    def decorate(fn: Evaluator) -> Evaluator:
        EVALUATORS[kind] = fn
        return fn

    return decorate


class EvaluatorMissing(LookupError):
    pass


def evaluator_for(kind: str) -> Evaluator:
    try:
        return EVALUATORS[kind]
    except KeyError:
        raise EvaluatorMissing(f"no evaluator is registered for rules of kind {kind!r}") from None


def observation_from_detection(
    result: Any,
    *,
    sample_count: int,
    group: dict[str, str] | None = None,
    critical_p_value: float | None = None,
    examples: Sequence[dict[str, str]] = (),
) -> Observation:
    """Adapt a detector result (``drifted``/``regressed``, ``score``, ``p_value``, ``summary``)
    to an observation. Breached results are warnings, critical when ``p_value`` is at or below
    ``critical_p_value``."""
    breached = bool(getattr(result, "drifted", False) or getattr(result, "regressed", False))
    p_value = getattr(result, "p_value", None)
    severity: str | None = None
    if breached:
        severity = Severity.WARNING
        if critical_p_value is not None and p_value is not None and p_value <= critical_p_value:
            severity = Severity.CRITICAL
    score = getattr(result, "score", None)
    confidence = f"p-value {p_value:.2g}" if isinstance(p_value, float) else ""
    threshold = getattr(result, "threshold", None)
    return Observation(
        group=group or {},
        value=float(score) if score is not None else None,
        sample_count=sample_count,
        severity=severity,
        threshold=float(threshold) if threshold is not None else None,
        summary=str(getattr(result, "summary", "")),
        confidence=confidence,
        examples=list(examples),
        details={"p_value": p_value},
    )


# --- metric rules -----------------------------------------------------------------------------


class Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY expr)``."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float) -> None:
        super().__init__(expression, fraction=float(fraction))


def compare(value: float, operator: str, threshold: float) -> bool:
    if operator == Operator.GT:
        return value > threshold
    if operator == Operator.GTE:
        return value >= threshold
    if operator == Operator.LT:
        return value < threshold
    return value <= threshold


def severity_for(rule: AlertRule, value: float | None) -> str | None:
    if value is None:
        return None
    if rule.critical_threshold is not None and compare(
        value, rule.operator, rule.critical_threshold
    ):
        return Severity.CRITICAL
    if rule.threshold is not None and compare(value, rule.operator, rule.threshold):
        return Severity.WARNING
    return None


def negative_feedback_exists() -> Exists:
    negative = Q(score__lt=NEGATIVE_SCORE_BELOW) | Q(
        label__iregex=r"^\s*(" + "|".join(sorted(NEGATIVE_LABELS)) + r")\s*$"
    )
    return Exists(
        Feedback.objects.filter(project_id=OuterRef("project_id"), call_id=OuterRef("id")).filter(
            negative
        )
    )


def any_feedback_exists() -> Exists:
    return Exists(
        Feedback.objects.filter(project_id=OuterRef("project_id"), call_id=OuterRef("id"))
    )


def _aggregates(metric: str) -> dict[str, Any]:
    """``n`` (samples) and the parts the value is computed from."""
    if metric == Metric.COST:
        return {"n": Count("id"), "total": Sum("cost_usd")}
    if metric == Metric.TOKENS:
        return {"n": Count("id"), "total": Sum("total_tokens")}
    if metric == Metric.CALLS:
        return {"n": Count("id")}
    if metric == Metric.ERROR_RATE:
        return {"n": Count("id"), "hits": Count("id", filter=Q(status="error"))}
    if metric == Metric.SAFETY_FLAG_RATE:
        return {"n": Count("id"), "hits": Count("id", filter=Q(flagged=True))}
    if metric == Metric.NEGATIVE_FEEDBACK_RATE:
        return {
            "n": Count("id", filter=Q(any_feedback_exists())),
            "hits": Count("id", filter=Q(negative_feedback_exists())),
        }
    if metric == Metric.LATENCY_P95:
        return {"n": Count("latency_ms"), "p95": Percentile("latency_ms", 0.95)}
    raise ValueError(f"unknown metric {metric!r}")


def _value(metric: str, row: dict[str, Any]) -> float | None:
    n = int(row.get("n") or 0)
    if metric in (Metric.COST, Metric.TOKENS):
        return float(row.get("total") or 0.0)
    if metric == Metric.CALLS:
        return float(n)
    if metric in RATE_METRICS:
        return (row.get("hits") or 0) / n if n else None
    p95 = row.get("p95")
    return float(p95) if p95 is not None else None


def rule_calls(rule: AlertRule, start: datetime, end: datetime) -> QuerySet[Call]:
    """The rule's calls with ``start <= start_time < end``, filters applied."""
    qs = Call.objects.filter(project_id=rule.project_id, start_time__gte=start, start_time__lt=end)
    if "kind" not in (rule.filters or {}):
        qs = qs.filter(kind__in=LLM_KINDS)  # LLM calls, unless the rule names a kind
    for name, wanted in (rule.filters or {}).items():
        column = FILTER_FIELDS.get(name)
        if column is None:
            continue  # validated on write; an old unknown key is ignored, not fatal
        if isinstance(wanted, list):
            qs = qs.filter(**{f"{column}__in": [str(v) for v in wanted]})
        else:
            qs = qs.filter(**{column: str(wanted)})
    return qs


# Windows at least this long are read from rollups: they lag raw calls by a flush (seconds),
# which is noise at this length, and a raw read of hours or days of calls is what does not
# scale. Shorter windows read raw calls: an index range over minutes is cheap and fresh.
ROLLUP_MIN_WINDOW = timedelta(hours=1)
ROLLUP_METRICS = frozenset(
    {
        Metric.COST,
        Metric.TOKENS,
        Metric.CALLS,
        Metric.ERROR_RATE,
        Metric.SAFETY_FLAG_RATE,
        Metric.LATENCY_P95,
    }
)


def _rollup_row(metric: str, totals: PeriodTotals) -> dict[str, Any]:
    calls = totals.calls
    if metric == Metric.COST:
        return {"n": calls.calls, "total": calls.cost_usd}
    if metric == Metric.TOKENS:
        return {"n": calls.calls, "total": calls.total_tokens}
    if metric == Metric.ERROR_RATE:
        return {"n": calls.calls, "hits": calls.errors}
    if metric == Metric.SAFETY_FLAG_RATE:
        return {"n": calls.calls, "hits": calls.flagged}
    if metric == Metric.LATENCY_P95:
        return {"n": calls.calls, "p95": calls.p95_ms}
    return {"n": calls.calls}


def _grouped_from_rollups(
    rule: AlertRule, metric: str, start: datetime, end: datetime, group_fields: list[str]
) -> dict[str, tuple[dict[str, str], dict[str, Any]]] | None:
    """``_grouped`` from the rollup tables; None when they cannot answer (the metric, a filter
    or a group on a field that is not rolled up)."""
    if metric not in ROLLUP_METRICS:
        return None
    groups = rollup_groups(
        project_id=rule.project_id,
        start=start,
        end=end,
        filters=rule.filters or {},
        group_by=group_fields,
    )
    if groups is None:
        return None
    out: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
    for values, totals in groups.items():
        group = dict(zip(group_fields, values, strict=True))
        out[group_key(group)] = (group, _rollup_row(metric, totals))
    if not group_fields and "" not in out:
        out[""] = ({}, _rollup_row(metric, PeriodTotals(calls=CallBucket(bucket=start))))
    return out


def _grouped(
    rule: AlertRule, metric: str, start: datetime, end: datetime, group_fields: list[str]
) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
    if end - start >= ROLLUP_MIN_WINDOW:
        rolled = _grouped_from_rollups(rule, metric, start, end, group_fields)
        if rolled is not None:
            return rolled
    qs = rule_calls(rule, start, end)
    aggregates = _aggregates(metric)
    if not group_fields:
        row = qs.aggregate(**aggregates)
        return {"": ({}, row)}
    columns = [GROUP_BY_FIELDS[f] for f in group_fields]
    out: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
    for row in qs.values(*columns).annotate(**aggregates).order_by():
        group = {f: str(row[c] or "") for f, c in zip(group_fields, columns, strict=True)}
        out[group_key(group)] = (group, row)
    return out


def _two_proportion_p(h1: int, n1: int, h2: int, n2: int) -> float | None:
    if not n1 or not n2:
        return None
    pooled = (h1 + h2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = abs(h1 / n1 - h2 / n2) / se
    return math.erfc(z / math.sqrt(2))


_PERCENT_METRICS = {
    "intent_share",
    *(
        f"regression:{m}"
        for m in (
            "negative_feedback",
            "refusal",
            "error",
            "flagged",
            "injection",
            "pii",
            "empty",
            "truncated",
            "json_invalid",
        )
    ),
}


def format_value(metric: str, value: float | None) -> str:
    """A value as people read it: 12.5%, $3.20, 1,250 ms, 48,000 tokens."""
    if value is None:
        return "no data"
    if metric in RATE_METRICS or metric in _PERCENT_METRICS:
        return f"{value * 100:.1f}%"
    if metric in (Metric.COST, "regression:cost_usd"):
        return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"
    if metric in (Metric.LATENCY_P95, "regression:latency_ms", "regression:ttft_ms"):
        return f"{value:,.0f} ms"
    if metric in (Metric.TOKENS, Metric.CALLS):
        return f"{value:,.0f}"
    return f"{value:.3g}"


METRIC_LABELS: dict[str, str] = {
    Metric.COST: "Cost",
    Metric.TOKENS: "Tokens",
    Metric.CALLS: "Calls",
    Metric.ERROR_RATE: "Error rate",
    Metric.SAFETY_FLAG_RATE: "Safety-flag rate",
    Metric.NEGATIVE_FEEDBACK_RATE: "Negative-feedback rate",
    Metric.LATENCY_P95: "p95 latency",
    "drift_score": "Drift score (-log10 p)",
    "intent_share": "Intent share",
}


def _example_calls(
    rule: AlertRule, metric: str, start: datetime, end: datetime, group: dict[str, str]
) -> list[dict[str, str]]:
    qs = rule_calls(rule, start, end).filter(
        **{GROUP_BY_FIELDS[k]: v for k, v in group.items() if k in GROUP_BY_FIELDS}
    )
    if metric == Metric.ERROR_RATE:
        qs = qs.filter(status="error").order_by("-start_time")
    elif metric == Metric.SAFETY_FLAG_RATE:
        qs = qs.filter(flagged=True).order_by("-start_time")
    elif metric == Metric.NEGATIVE_FEEDBACK_RATE:
        qs = qs.filter(negative_feedback_exists()).order_by("-start_time")
    elif metric == Metric.LATENCY_P95:
        qs = qs.filter(latency_ms__isnull=False).order_by(F("latency_ms").desc())
    elif metric == Metric.COST:
        qs = qs.filter(cost_usd__isnull=False).order_by(F("cost_usd").desc())
    elif metric == Metric.TOKENS:
        qs = qs.filter(total_tokens__isnull=False).order_by(F("total_tokens").desc())
    else:
        qs = qs.order_by("-start_time")
    rows = qs.values("id", "prompt", "messages", "error")[:MAX_EXAMPLES]
    return [{"call_id": str(r["id"]), "text": call_text(r)} for r in rows]


def call_text(row: Mapping[str, Any]) -> str:
    """A short text that identifies the call: its prompt, else the last user message."""
    text = str(row.get("prompt") or "")
    messages = row.get("messages")
    if not text and isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role", "user") == "user":
                content = message.get("content")
                text = content if isinstance(content, str) else json.dumps(content)[:500]
                break
    if row.get("error"):
        text = f"{text} [error: {row['error']}]" if text else f"[error: {row['error']}]"
    return text[:500]


def evaluate_metric_rule(
    rule: AlertRule,
    now: datetime,
    *,
    metric: str | None = None,
    group_fields: Iterable[str] | None = None,
) -> list[Observation]:
    metric = metric or rule.metric
    fields = list(group_fields if group_fields is not None else rule.group_by or [])
    window = timedelta(seconds=rule.window_s)
    start = now - window
    current = _grouped(rule, metric, start, now, fields)
    observations: list[Observation] = []
    breached_any = False
    for group, row in current.values():
        value = _value(metric, row)
        n = int(row.get("n") or 0)
        severity = severity_for(rule, value) if n >= rule.min_samples else None
        breached_any = breached_any or severity is not None
        obs = Observation(group=group, value=value, sample_count=n, severity=severity)
        obs.details = {"metric": metric, "row": {k: _plain(v) for k, v in row.items()}}
        obs.threshold = rule.critical_threshold if severity == Severity.CRITICAL else rule.threshold
        observations.append(obs)
    if not breached_any:
        for obs in observations:
            _describe(rule, metric, obs, window, None, None)
        return observations
    # Baseline and examples cost queries: only when something breached.
    baseline_span = min(window * BASELINE_WINDOWS, max(BASELINE_MAX, window))
    baseline_rows = _grouped(rule, metric, start - baseline_span, start, fields)
    for obs in observations:
        base = baseline_rows.get(obs.group_key)
        base_row = base[1] if base else None
        if base_row is not None:
            base_value = _value(metric, base_row)
            if base_value is not None and metric in SUM_METRICS:
                base_value = base_value * window / baseline_span  # per window
            obs.baseline = base_value
        if obs.severity is not None:
            obs.examples = _example_calls(rule, metric, start, now, obs.group)
        _describe(rule, metric, obs, window, base_row, baseline_span)
    return observations


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str) else float(value)


def _describe(
    rule: AlertRule,
    metric: str,
    obs: Observation,
    window: timedelta,
    base_row: dict[str, Any] | None,
    baseline_span: timedelta | None,
) -> None:
    label = METRIC_LABELS.get(metric, metric)
    where = ", ".join(f"{k} {v or '(none)'}" for k, v in obs.group.items())
    span = format_duration(int(window.total_seconds()))
    summary = f"{label} is {format_value(metric, obs.value)} over the last {span}"
    if where:
        summary += f" for {where}"
    if obs.threshold is not None:
        summary += f" (threshold {rule.operator} {format_value(metric, obs.threshold)})"
    if obs.baseline is not None and baseline_span is not None:
        base_span = format_duration(int(baseline_span.total_seconds()))
        summary += f"; baseline {format_value(metric, obs.baseline)} over the previous {base_span}"
    obs.summary = summary + "."
    n = obs.sample_count
    if metric in RATE_METRICS:
        hits = int(obs.details.get("row", {}).get("hits") or 0)
        # Imported here: scipy is loaded by the worker that evaluates, not by every process.
        from apps.quality.regression.stats import wilson_interval

        low, high = wilson_interval(hits, n)
        confidence = f"{hits} of {n} calls; 95% interval {low * 100:.1f}-{high * 100:.1f}%"
        if base_row is not None:
            p = _two_proportion_p(hits, n, int(base_row.get("hits") or 0), int(base_row["n"] or 0))
            if p is not None:
                confidence += f"; two-proportion test vs baseline p = {p:.2g}"
        obs.confidence = confidence + "."
    elif metric == Metric.LATENCY_P95:
        obs.confidence = f"p95 of {n} calls with a latency (minimum {rule.min_samples})."
    else:
        obs.confidence = f"Exact sum over {n} calls (no sampling)."


@register_evaluator(RuleKind.METRIC)
def _evaluate_metric(rule: AlertRule, now: datetime) -> list[Observation]:
    return evaluate_metric_rule(rule, now)


@register_evaluator(RuleKind.BUDGET)
def _evaluate_budget(rule: AlertRule, now: datetime) -> list[Observation]:
    """Cost per end user over the window against the budget (``threshold``)."""
    observations = evaluate_metric_rule(rule, now, metric=Metric.COST, group_fields=["end_user"])
    # Calls without an end user are not anyone's budget.
    return [o for o in observations if o.group.get("end_user")]
