"""English sentences for comparison results ("p95 latency rose 34% (1.2 s -> 1.6 s) ...")."""

from __future__ import annotations

import math

from apps.quality.regression.metrics import DEFAULT_METRICS, RegressionResult, Settings


def effect_direction(result: RegressionResult) -> int:
    """+1 when the effect points the bad way, -1 the good way, 0 for no change."""
    if result.effect is None:
        return 0
    change = (
        result.effect
        if result.effect_kind == "difference"
        else math.log(max(result.effect, 1e-300))
    )
    if change == 0:
        return 0
    if result.worse == "lower":
        change = -change
    return 1 if change > 0 else -1


def effect_magnitude(result: RegressionResult) -> float:
    if result.effect is None:
        return 0.0
    if result.effect_kind == "difference":
        return abs(result.effect)
    return (
        abs(result.effect - 1.0)
        if result.effect >= 1
        else abs(1.0 / max(result.effect, 1e-300) - 1.0)
    )


def _fmt_value(result: RegressionResult, value: float | None) -> str:
    if value is None:
        return "n/a"
    if result.effect_kind == "difference":
        return f"{value:.1%}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def summary_sentence(result: RegressionResult, settings: Settings) -> str:
    spec = DEFAULT_METRICS.get(result.metric.split(".")[0])
    title = (spec.title if spec else result.metric.replace("_", " ")).capitalize()
    if result.kind == "quantile":
        title = f"{result.metric.rsplit('.', 1)[1]} {title.lower()}"
    elif result.kind == "continuous":
        title = f"Median {title.lower()}"
    unit = f" {spec.unit}" if spec and spec.unit and result.kind != "rate" else ""
    base, cur = _fmt_value(result, result.baseline_value), _fmt_value(result, result.current_value)
    level = f"{1 - settings.alpha:.0%}"
    if result.effect_kind == "difference":
        effect = (
            f"{(result.effect or 0) * 100:+.1f} pp, {level} CI {(result.ci_low or 0) * 100:+.1f} "
            f"to {(result.ci_high or 0) * 100:+.1f} pp"
        )
    else:
        effect = f"x{result.effect:.2f}, {level} CI x{result.ci_low:.2f} to x{result.ci_high:.2f}"
    moved = (
        "rose" if effect_direction(result) * (1 if result.worse != "lower" else -1) > 0 else "fell"
    )
    if result.effect is not None and effect_magnitude(result) == 0:
        moved = "stayed"
    change_text = f"at {cur}{unit}" if moved == "stayed" else f"from {base}{unit} to {cur}{unit}"
    what = {
        "regressed": "regression",
        "worse": "worse",
        "better": "better",
        "improved": "improvement",
        "changed": "significant change",
    }.get(result.verdict, "not significant")
    strat = ""
    if result.stratified:
        strat = (
            f"; stratified by intent ({result.strata_compared} intents, "
            f"{result.coverage:.0%} of current calls)"
        )
    small = ""
    if (
        result.q_value is not None
        and result.q_value <= settings.alpha
        and effect_magnitude(result) < result.min_effect
    ):
        small = " below the minimum effect"
    return (
        f"{title} {moved} {change_text} ({effect}); {result.test} "
        f"p={fmt_p(result.p_value)}, q={fmt_p(result.q_value)}: {what}{small}{strat}."
    )


def fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
