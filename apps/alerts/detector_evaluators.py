"""Evaluators for drift and regression rules, on top of the detectors other apps own.

* ``embedding_drift``, ``intent_shift``, ``new_intent``: read the project's latest drift check
  (``apps.drift``: a periodic task tests a window of embedded calls against the baseline and
  stores a ``DriftCheck``). A check that is too old, or that could not test (too few calls, no
  baseline), is "no data": an open incident stays as it is.
* ``regression``: runs ``apps.quality.regression.compare_windows`` on the rule's window against
  the window before it (one-sided tests in each metric's bad direction, Benjamini-Hochberg,
  minimum sample sizes and effects), one group per metric.
* ``prompt_regression``: for each prompt (or the one in ``params.prompt``), its newest version
  against the version before it, once the newest has ``min_calls`` LLM calls (default 200), with
  the intent-stratified A/B statistics of ``apps.compare``; one group per prompt.

Rule ``params`` (all optional):

* drift rules: ``critical_p_value`` (critical when the check's p-value is at or below it),
  ``max_age`` (seconds a check stays current; default three check intervals);
* score: ``evaluator`` (its name, required), ``aggregate`` (``mean`` or ``failure_rate``);
  the rule's operator and thresholds apply, ``filters`` may narrow by ``model``/``release``;
* prompt_regression: ``prompt``, ``min_calls``, ``alpha`` (default 0.01), ``history``
  (seconds of calls compared; default 7 days);
* regression: ``metrics`` (names from ``DEFAULT_METRICS``), ``alpha`` (default 0.01),
  ``baseline`` (seconds of history to compare against; default 7 windows, at most 7 days),
  ``max_calls`` (newest calls per window; default 5000).

Imported by ``AlertsConfig.ready()`` so the registrations exist in web and worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from apps.alerts.evaluators import (
    Observation,
    call_text,
    negative_feedback_exists,
    register_evaluator,
    rule_calls,
)
from apps.alerts.models import AlertRule, RuleKind, Severity
from apps.core.errors import ApplicationError
from apps.traces.models import Call, Feedback

DEFAULT_REGRESSION_METRICS = ("error", "flagged", "negative_feedback", "latency_ms", "cost_usd")
EXAMPLES = 5


def _examples(project_id: int, call_ids: Sequence[str]) -> list[dict[str, str]]:
    ids = [str(i) for i in call_ids][:EXAMPLES]
    if not ids:
        return []
    rows = {
        str(r["id"]): r
        for r in Call.objects.filter(project_id=project_id, id__in=ids).values(
            "id", "prompt", "messages", "error"
        )
    }
    return [{"call_id": i, "text": call_text(rows[i])} for i in ids if i in rows]


def _latest_check(rule: AlertRule, now: datetime) -> Any | None:
    """The project's latest drift check when it is current and tested, else None."""
    from apps.drift.models import CheckStatus, DriftCheck

    check = (
        DriftCheck.objects.filter(project_id=rule.project_id, window_end__lte=now)
        .select_related("monitor")
        .order_by("-window_end", "-pk")
        .first()
    )
    if check is None or check.status != CheckStatus.TESTED:
        return None
    max_age = rule.params.get("max_age")
    limit = (
        timedelta(seconds=float(max_age))
        if isinstance(max_age, int | float)
        else timedelta(minutes=3 * max(check.monitor.interval_minutes, 1))
    )
    return check if now - check.window_end <= limit else None


def _no_data(group: dict[str, str] | None = None) -> list[Observation]:
    return [Observation(group=group or {}, value=None, sample_count=0, severity=None)]


def _severity(rule: AlertRule, breached: bool, p_value: float | None) -> str | None:
    if not breached:
        return None
    critical = rule.params.get("critical_p_value")
    if isinstance(critical, int | float) and p_value is not None and p_value <= critical:
        return Severity.CRITICAL
    return Severity.WARNING


def _p_text(check: Any) -> str:
    parts = []
    if check.p_value is not None:
        parts.append(f"combined p-value {check.p_value:.2g}")
    if check.threshold is not None:
        parts.append(f"false-alarm rate held to {check.threshold:.2g}")
    parts.append(f"{check.tested_n} of {check.n} embedded calls tested")
    stream = check.stream or {}
    if stream.get("alarm"):
        parts.append(
            f"streaming {stream.get('title', 'chart')} alarm: statistic "
            f"{stream.get('statistic', 0):.1f}, limit {stream.get('limit', 0):.1f}"
        )
    return "; ".join(parts) + "."


@register_evaluator(RuleKind.EMBEDDING_DRIFT)
def evaluate_embedding_drift(rule: AlertRule, now: datetime) -> list[Observation]:
    check = _latest_check(rule, now)
    if check is None:
        return _no_data()
    return [
        Observation(
            group={},
            value=check.score,
            sample_count=check.tested_n,
            severity=_severity(rule, check.drifted, check.p_value),
            summary=check.summary or "What users ask has drifted from the baseline.",
            confidence=_p_text(check),
            examples=_examples(rule.project_id, check.example_call_ids),
            details={"metric": "drift_score", "drift_check_id": check.pk, "p_value": check.p_value},
        )
    ]


@register_evaluator(RuleKind.INTENT_SHIFT)
def evaluate_intent_shift(rule: AlertRule, now: datetime) -> list[Observation]:
    check = _latest_check(rule, now)
    if check is None:
        return _no_data()
    observations = []
    for share in check.intent_shares:
        name = str(share.get("name") or f"intent {share.get('index')}")
        base, window = float(share["baseline_share"]), float(share["window_share"])
        moved = str(share.get("moved") or "")
        z = share.get("z")
        summary = (
            f"Share of intent '{name}' {moved or 'is'} {base:.1%} -> {window:.1%} "
            f"of calls (baseline -> now)."
        )
        observations.append(
            Observation(
                group={"intent": name},
                value=window,
                baseline=base,
                sample_count=check.tested_n,
                severity=_severity(rule, bool(moved), check.p_value),
                summary=summary,
                confidence=(f"z = {float(z):.1f}; " if z is not None else "") + _p_text(check),
                examples=_examples(rule.project_id, share.get("example_call_ids", [])),
                details={"metric": "intent_share", "drift_check_id": check.pk},
            )
        )
    return observations or _no_data()


@register_evaluator(RuleKind.NEW_INTENT)
def evaluate_new_intent(rule: AlertRule, now: datetime) -> list[Observation]:
    check = _latest_check(rule, now)
    if check is None:
        return _no_data()
    groups = list(check.new_intents)
    share = sum(float(g.get("share", 0.0)) for g in groups)
    described = "; ".join(
        f"'{g.get('label') or 'unnamed'}' ({int(g.get('size', 0))} calls, "
        f"{float(g.get('share', 0.0)):.1%})"
        + (
            f", nearest known intent '{g['nearest_cluster_name']}'"
            if g.get("nearest_cluster_name")
            else ""
        )
        for g in groups
    )
    examples: list[str] = []
    for g in groups:
        examples.extend(str(i) for i in g.get("example_call_ids", [])[:2])
    return [
        Observation(
            group={},
            value=share,
            sample_count=check.tested_n,
            severity=_severity(rule, bool(groups), check.p_value),
            summary=f"New kind of request: {described}." if groups else "No new intent.",
            confidence=_p_text(check),
            examples=_examples(rule.project_id, examples),
            details={"metric": "intent_share", "drift_check_id": check.pk, "groups": groups},
        )
    ]


def _records(rule: AlertRule, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
    qs = (
        rule_calls(rule, start, end)
        .annotate(negative=negative_feedback_exists())
        .order_by("-start_time")
    )
    rows = list(
        qs.values(
            "id",
            "status",
            "flagged",
            "negative",
            "latency_ms",
            "cost_usd",
            "total_tokens",
            "refusal",
        )[:limit]
    )
    with_feedback = set(
        Feedback.objects.filter(
            project_id=rule.project_id, call_id__in=[r["id"] for r in rows]
        ).values_list("call_id", flat=True)
    )
    return [
        {
            "id": str(r["id"]),
            "error": r["status"] == "error",
            "flagged": bool(r["flagged"]),
            # No feedback is "unknown" (NaN), not "positive".
            "negative_feedback": bool(r["negative"]) if r["id"] in with_feedback else None,
            "refusal": r["refusal"],
            "latency_ms": r["latency_ms"],
            "cost_usd": r["cost_usd"],
            "total_tokens": r["total_tokens"],
        }
        for r in rows
    ]


@register_evaluator(RuleKind.REGRESSION)
def evaluate_regression(rule: AlertRule, now: datetime) -> list[Observation]:
    from apps.quality.regression.compare import compare_windows
    from apps.quality.regression.metrics import DEFAULT_METRICS, MetricSample

    params = rule.params or {}
    wanted = params.get("metrics") or list(DEFAULT_REGRESSION_METRICS)
    metrics = [m for m in wanted if m in DEFAULT_METRICS]
    alpha = float(params.get("alpha", 0.01))
    limit = int(params.get("max_calls", 5000))
    window = timedelta(seconds=rule.window_s)
    baseline_span = timedelta(
        seconds=float(params.get("baseline") or min(7 * rule.window_s, 7 * 86400))
    )
    current_rows = _records(rule, now - window, now, limit)
    baseline_rows = _records(rule, now - window - baseline_span, now - window, limit)
    current = MetricSample.from_records(current_rows, metrics, label="current")
    baseline = MetricSample.from_records(baseline_rows, metrics, label="baseline")
    results = compare_windows(
        baseline, current, alpha=alpha, metrics={m: DEFAULT_METRICS[m] for m in metrics}
    )
    observations = []
    for result in results:
        tested = result.verdict != "insufficient data"
        p = result.q_value if result.q_value is not None else result.p_value
        interval = ""
        if result.ci_low is not None and result.ci_high is not None:
            interval = (
                f"; {result.effect_kind} 95% interval {result.ci_low:.3g}-{result.ci_high:.3g}"
            )
        observations.append(
            Observation(
                group={"metric": result.metric + ("" if result.kind != "quantile" else " p95")},
                value=result.current_value if tested else None,
                baseline=result.baseline_value,
                sample_count=result.n_current,
                severity=_severity(rule, result.regressed, p),
                summary=result.summary,
                confidence=(
                    f"{result.test}: p = {result.p_value:.2g}, q (BH) = {result.q_value:.2g}"
                    f"{interval}; {result.n_current} vs {result.n_baseline} calls."
                    if result.p_value is not None and result.q_value is not None
                    else f"{result.n_current} vs {result.n_baseline} calls."
                ),
                examples=_examples(rule.project_id, list(result.example_ids)),
                details={"metric": f"regression:{result.metric}", "p_value": result.p_value},
            )
        )
    return observations


@register_evaluator(RuleKind.PROMPT_REGRESSION)
def evaluate_prompt_regression(rule: AlertRule, now: datetime) -> list[Observation]:
    from apps.compare.selectors import compare_groups
    from apps.traces.prompt_selectors import prompt_list, prompt_versions

    params = rule.params or {}
    min_calls = int(params.get("min_calls", 200))
    alpha = float(params.get("alpha", 0.01))
    start = now - timedelta(seconds=float(params.get("history") or 7 * 86400))
    project = rule.project
    names = (
        [str(params["prompt"])]
        if params.get("prompt")
        else [p.name for p in prompt_list(project=project, start=start)][:20]
    )
    observations = []
    for name in names:
        group = {"prompt": name}
        try:
            versions = [v for v in prompt_versions(project=project, name=name, start=start)
                        if v.metrics is not None]  # fmt: skip
        except ApplicationError:
            versions = []
        if len(versions) < 2 or versions[0].metrics is None:
            observations.extend(_no_data(group))
            continue
        new, old = versions[0], versions[1]
        assert new.metrics is not None  # narrowed above; for mypy
        if new.metrics.calls < min_calls:
            observations.append(
                Observation(
                    group=group, value=None, sample_count=new.metrics.calls, severity=None,
                    summary=f"{name}@{new.version}: {new.metrics.calls} of {min_calls} calls "
                    "needed before it is compared.",
                )
            )  # fmt: skip
            continue
        comparison = compare_groups(
            project=project, dimension="prompt_version", a=old.version, b=new.version,
            start=start, end=now, prompt_name=name, alpha=alpha,
        )  # fmt: skip
        worse = comparison.regressed
        q_values = [r.q_value for r in worse if r.q_value is not None]
        examples: list[str] = []
        for result in worse:
            examples.extend(result.example_ids[:2])
        observations.append(
            Observation(
                group=group,
                value=float(len(worse)),
                sample_count=comparison.n_b,
                severity=_severity(rule, bool(worse), min(q_values) if q_values else None),
                summary=f"Prompt {name}: {comparison.headline}",
                confidence="; ".join(r.summary for r in worse)
                or f"{comparison.n_b} vs {comparison.n_a} calls, nothing significant.",
                examples=_examples(rule.project_id, examples),
                details={
                    "metric": "prompt_regression",
                    "prompt": name,
                    "a": old.version,
                    "b": new.version,
                    "regressed": [r.metric for r in worse],
                    "stratified_by_intent": comparison.stratified,
                },
            )
        )
    return observations


@register_evaluator(RuleKind.SCORE)
def evaluate_score(rule: AlertRule, now: datetime) -> list[Observation]:
    """An evaluator's mean score (or failure rate) over the rule's window, against its
    thresholds: quality on calls nobody labelled."""
    from apps.alerts.evaluators import severity_for
    from apps.evaluators.selectors import score_metric

    params = rule.params or {}
    name = str(params.get("evaluator", ""))
    aggregate: Literal["mean", "failure_rate"] = (
        "failure_rate" if params.get("aggregate") == "failure_rate" else "mean"
    )
    filters = rule.filters or {}
    metric = score_metric(
        project=rule.project_id,
        evaluator_name=name,
        start=now - timedelta(seconds=rule.window_s),
        end=now,
        aggregate=aggregate,
        model=filters.get("model") or None,
        release=filters.get("release") or None,
    )
    if metric.value is None or metric.count < rule.min_samples:
        return [
            Observation(
                group={}, value=None, sample_count=metric.count, severity=None,
                summary=f"{metric.count} scores of {name} (minimum {rule.min_samples}).",
            )
        ]  # fmt: skip
    label = "failure rate" if aggregate == "failure_rate" else "mean score"
    shown = f"{metric.value:.1%}" if aggregate == "failure_rate" else f"{metric.value:.3f}"
    return [
        Observation(
            group={},
            value=metric.value,
            sample_count=metric.count,
            severity=severity_for(rule, metric.value),
            threshold=rule.threshold,
            summary=f"Evaluator {name}: {label} {shown} over {metric.count} scored calls.",
            confidence=f"{metric.count} scores in the window.",
            details={"metric": f"score:{name}", "aggregate": aggregate},
        )
    ]
