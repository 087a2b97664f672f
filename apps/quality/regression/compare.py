"""The comparison engine: two windows (one-sided, "has it got worse?") or two releases/models
(two-sided, side by side), rate and continuous metrics, stratified by intent when labelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats

from apps.quality.regression.metrics import (
    DEFAULT_METRICS,
    MetricSample,
    MetricSpec,
    RegressionResult,
    Settings,
    Verdict,
)
from apps.quality.regression.stats import (
    FloatArray,
    Stratum,
    benjamini_hochberg,
    boot_fraction,
    cmh_test,
    newcombe_interval,
    resample,
    rescale,
    scipy_alternative,
    two_proportion_test,
    van_elteren_test,
    weighted_quantile,
)
from apps.quality.regression.summary import effect_direction, effect_magnitude, summary_sentence


def compare_windows(
    baseline: MetricSample,
    current: MetricSample,
    *,
    alpha: float = 0.05,
    metrics: Mapping[str, MetricSpec] | None = None,
    stratify: bool = True,
    min_n_rate: int = 100,
    min_n_continuous: int = 30,
    min_n_quantile: int = 200,
    n_boot: int = 500,
    seed: int = 0,
    max_examples: int = 5,
) -> list[RegressionResult]:
    """Regressions of ``current`` against ``baseline``, one result per metric (and quantile).

    Every metric present in both samples is tested, one-sided in its bad direction (``worse``);
    metrics not in ``metrics``/:data:`DEFAULT_METRICS` are inferred (0/1 columns are rates,
    higher is worse). ``regressed`` means: enough data, BH q-value at most ``alpha``, effect in
    the bad direction and at least ``min_effect``. With intent labels on both samples and
    ``stratify``, tests and effects are stratified by intent.
    """
    settings = Settings(
        alpha, "worse", stratify, min_n_rate, min_n_continuous, min_n_quantile, n_boot, seed,
        max_examples, "window",
    )  # fmt: skip
    return _compare(baseline, current, metrics, settings)


def compare_releases(
    a: MetricSample,
    b: MetricSample,
    *,
    alpha: float = 0.05,
    metrics: Mapping[str, MetricSpec] | None = None,
    stratify: bool = True,
    min_n_rate: int = 100,
    min_n_continuous: int = 30,
    min_n_quantile: int = 200,
    n_boot: int = 500,
    seed: int = 0,
    max_examples: int = 5,
) -> list[RegressionResult]:
    """A/B comparison of release (or model) ``b`` against ``a``: every metric side by side.

    Two-sided tests; ``verdict`` is "worse", "better", "changed" (direction-neutral metrics),
    "no significant difference" or "insufficient data"; ``regressed``/``improved`` follow.
    """
    settings = Settings(
        alpha, "two-sided", stratify, min_n_rate, min_n_continuous, min_n_quantile, n_boot,
        seed, max_examples, "release",
    )  # fmt: skip
    return _compare(a, b, metrics, settings)


def _spec_for(name: str, values: FloatArray, metrics: Mapping[str, MetricSpec]) -> MetricSpec:
    if name in metrics:
        return metrics[name]
    if name in DEFAULT_METRICS:
        return DEFAULT_METRICS[name]
    finite = values[np.isfinite(values)]
    is_rate = finite.size > 0 and bool(np.isin(finite, (0.0, 1.0)).all())
    return MetricSpec(name, "rate" if is_rate else "continuous", "higher")


def _compare(
    baseline: MetricSample,
    current: MetricSample,
    metrics: Mapping[str, MetricSpec] | None,
    settings: Settings,
) -> list[RegressionResult]:
    specs = dict(metrics or {})
    names = [name for name in current.values if name in baseline.values]
    rng = np.random.default_rng(settings.seed)
    results: list[RegressionResult] = []
    for name in names:
        spec = _spec_for(name, np.r_[baseline.column(name), current.column(name)], specs)
        if spec.kind == "rate":
            results.append(_compare_rate(spec, baseline, current, settings))
        else:
            results.extend(_compare_continuous(spec, baseline, current, settings, rng))
    return _finalise(results, settings)


def _strata_pairs(
    spec: MetricSpec, baseline: MetricSample, current: MetricSample, settings: Settings
) -> tuple[list[Stratum], bool, float]:
    """Per-stratum (current, baseline) values with NaNs dropped; unstratified as one stratum."""
    base_values = baseline.column(spec.name)
    cur_values = current.column(spec.name)
    base_ok = np.isfinite(base_values)
    cur_ok = np.isfinite(cur_values)
    use_strata = settings.stratify and baseline.strata is not None and current.strata is not None
    if use_strata:
        base_labels = np.asarray(baseline.strata, dtype=object)
        cur_labels = np.asarray(current.strata, dtype=object)
        shared = sorted(
            set(base_labels[base_ok].tolist()) & set(cur_labels[cur_ok].tolist()), key=str
        )
        if len(shared) >= 2:
            strata = []
            for key in shared:
                cur_mask = cur_ok & (cur_labels == key)
                strata.append(
                    Stratum(
                        key,
                        cur_values[cur_mask],
                        base_values[base_ok & (base_labels == key)],
                        np.flatnonzero(cur_mask),
                    )
                )
            compared = sum(len(s.current) for s in strata)
            return strata, True, compared / max(int(cur_ok.sum()), 1)
    single = Stratum(None, cur_values[cur_ok], base_values[base_ok], np.flatnonzero(cur_ok))
    return [single], False, 1.0


def _compare_rate(
    spec: MetricSpec, baseline: MetricSample, current: MetricSample, settings: Settings
) -> RegressionResult:
    strata, stratified, coverage = _strata_pairs(spec, baseline, current, settings)
    n1 = sum(len(s.current) for s in strata)
    n0 = sum(len(s.baseline) for s in strata)
    x1 = int(sum(float((s.current > 0).sum()) for s in strata))
    x0 = int(sum(float((s.baseline > 0).sum()) for s in strata))
    common: dict[str, Any] = {
        "metric": spec.name, "kind": "rate", "n_baseline": n0, "n_current": n1,
        "effect_kind": "difference", "stratified": stratified, "strata_compared": len(strata),
        "coverage": coverage, "worse": spec.worse, "min_effect": spec.min_effect,
    }  # fmt: skip
    if min(n0, n1) < settings.min_n_rate:
        return _insufficient(spec, common, settings.min_n_rate)
    z_ci = float(stats.norm.isf(settings.alpha / 2))
    if stratified:
        counts = [
            (
                int((s.current > 0).sum()),
                len(s.current),
                int((s.baseline > 0).sum()),
                len(s.baseline),
            )
            for s in strata
        ]
        p_value, test = cmh_test(counts, worse=spec.worse, alternative=settings.alternative)
        # Direct standardisation: the baseline's per-intent rates applied to the current mix.
        weights = np.array([c[1] for c in counts], dtype=float) / n1
        p1 = np.array([c[0] / c[1] for c in counts])
        p0 = np.array([c[2] / c[3] for c in counts])
        # Variances from add-half rates so an intent with 0 events still carries uncertainty.
        v1 = np.array([(c[0] + 0.5) / (c[1] + 1) for c in counts])
        v0 = np.array([(c[2] + 0.5) / (c[3] + 1) for c in counts])
        n1k = np.array([c[1] for c in counts], dtype=float)
        n0k = np.array([c[3] for c in counts], dtype=float)
        effect = float((weights * (p1 - p0)).sum())
        se = math.sqrt(float((weights**2 * (v1 * (1 - v1) / n1k + v0 * (1 - v0) / n0k)).sum()))
        ci = (effect - z_ci * se, effect + z_ci * se)
        current_value = x1 / n1
        baseline_value = float((weights * p0).sum())
        increase = {s.key: float(p1[i] - p0[i]) for i, s in enumerate(strata)}
    else:
        p_value, test = two_proportion_test(
            x1, n1, x0, n0, worse=spec.worse, alternative=settings.alternative
        )
        current_value, baseline_value = x1 / n1, x0 / n0
        effect = current_value - baseline_value
        ci = newcombe_interval(x1, n1, x0, n0, settings.alpha)
        increase = {}
    examples = _rate_examples(spec, current, strata, increase, settings.max_examples)
    return RegressionResult(
        **common, test=test, baseline_value=baseline_value, current_value=current_value,
        effect=effect, ci_low=ci[0], ci_high=ci[1], p_value=p_value, q_value=None, score=0.0,
        regressed=False, improved=False, significant=False, verdict="no change", summary="",
        example_ids=examples,
    )  # fmt: skip


def _rate_examples(
    spec: MetricSpec,
    current: MetricSample,
    strata: list[Stratum],
    increase: Mapping[Any, float],
    limit: int,
) -> tuple[str, ...]:
    if current.ids is None or limit <= 0:
        return ()
    bad_value = 0.0 if spec.worse == "lower" else 1.0
    # Events from the intents whose rate rose most come first.
    ordered = sorted(strata, key=lambda s: -increase.get(s.key, 0.0))
    picked: list[str] = []
    for stratum in ordered:
        for position, value in zip(stratum.current_index, stratum.current, strict=True):
            if (value > 0) == (bad_value > 0):
                picked.append(str(current.ids[int(position)]))
                if len(picked) >= limit:
                    return tuple(picked)
    return tuple(picked)


def _insufficient(spec: MetricSpec, common: dict[str, Any], needed: int) -> RegressionResult:
    return RegressionResult(
        **common, test="none", baseline_value=None, current_value=None, effect=None,
        ci_low=None, ci_high=None, p_value=None, q_value=None, score=0.0, regressed=False,
        improved=False, significant=False, verdict="insufficient data",
        summary=(
            f"{spec.title.capitalize()}: insufficient data ({common['n_baseline']} baseline and "
            f"{common['n_current']} current calls with a value; {needed} each needed)."
        ),
    )  # fmt: skip


def _compare_continuous(
    spec: MetricSpec,
    baseline: MetricSample,
    current: MetricSample,
    settings: Settings,
    rng: np.random.Generator,
) -> list[RegressionResult]:
    strata, stratified, coverage = _strata_pairs(spec, baseline, current, settings)
    n1 = sum(len(s.current) for s in strata)
    n0 = sum(len(s.baseline) for s in strata)
    common: dict[str, Any] = {
        "metric": spec.name, "kind": "continuous", "n_baseline": n0, "n_current": n1,
        "effect_kind": "ratio", "stratified": stratified, "strata_compared": len(strata),
        "coverage": coverage, "worse": spec.worse, "min_effect": spec.min_effect,
    }  # fmt: skip
    results: list[RegressionResult] = []
    if min(n0, n1) < settings.min_n_continuous:
        results.append(_insufficient(spec, common, settings.min_n_continuous))
    else:
        results.append(_median_comparison(spec, strata, common, current, settings, rng))
    quantile = spec.quantile
    if quantile is not None:
        q_common = {**common, "metric": f"{spec.name}.p{round(quantile * 100)}", "kind": "quantile"}
        q_spec = replace(
            spec, name=q_common["metric"], label=f"p{round(quantile * 100)} {spec.title}"
        )
        if min(n0, n1) < settings.min_n_quantile:
            results.append(_insufficient(q_spec, q_common, settings.min_n_quantile))
        else:
            quantile_result = _quantile_comparison(
                q_spec, quantile, strata, q_common, settings, rng
            )
            examples = _continuous_examples(spec, current, strata, settings.max_examples)
            results.append(replace(quantile_result, example_ids=examples))
    return results


def _median_comparison(
    spec: MetricSpec,
    strata: list[Stratum],
    common: dict[str, Any],
    current: MetricSample,
    settings: Settings,
    rng: np.random.Generator,
) -> RegressionResult:
    n1 = common["n_current"]
    weights = np.array([len(s.current) / n1 for s in strata])
    if common["stratified"]:
        pairs = [(s.current, s.baseline) for s in strata]
        p_value = van_elteren_test(pairs, worse=spec.worse, alternative=settings.alternative)
        test = "van Elteren (stratified Mann-Whitney)"
    else:
        result = stats.mannwhitneyu(
            strata[0].current,
            strata[0].baseline,
            alternative=scipy_alternative(spec.worse, settings.alternative),
            method="asymptotic",
        )
        p_value, test = float(result.pvalue), "Mann-Whitney U (log scale)"
    # Effect: ratio of medians, per intent on the log scale, weighted by the current mix.
    eps = _epsilon(strata)
    cur_medians = np.array([np.median(s.current) for s in strata])
    base_medians = np.array([np.median(s.baseline) for s in strata])
    effect = float(np.exp((weights * np.log((cur_medians + eps) / (base_medians + eps))).sum()))
    fraction = boot_fraction(strata)
    cur_boot = resample(rng, [s.current for s in strata], settings.n_boot, fraction)
    base_boot = resample(rng, [s.baseline for s in strata], settings.n_boot, fraction)
    boot = np.zeros(settings.n_boot)
    for k in range(len(strata)):
        cur_m = np.median(cur_boot[k], axis=1)
        base_m = np.median(base_boot[k], axis=1)
        boot += weights[k] * np.log((cur_m + eps) / (base_m + eps))
    boot = rescale(boot, math.log(effect), fraction)
    low, high = np.exp(np.quantile(boot, [settings.alpha / 2, 1 - settings.alpha / 2]))
    all_current = np.concatenate([s.current for s in strata])
    # Shown values: per-intent medians averaged over the current mix (plain medians unstratified).
    baseline_value = float((weights * base_medians).sum())
    current_value = float((weights * cur_medians).sum())
    if not common["stratified"]:
        current_value = float(np.median(all_current))
    return RegressionResult(
        **common, test=test, baseline_value=baseline_value, current_value=current_value,
        effect=effect, ci_low=float(low), ci_high=float(high), p_value=p_value, q_value=None,
        score=0.0, regressed=False, improved=False, significant=False, verdict="no change",
        summary="", example_ids=_continuous_examples(spec, current, strata, settings.max_examples),
        details={"statistic": "median"},
    )  # fmt: skip


def _epsilon(strata: list[Stratum]) -> float:
    # Keeps log ratios finite when a median is 0 (e.g. zero output tokens), negligible otherwise.
    values = np.concatenate([np.concatenate([s.current, s.baseline]) for s in strata])
    positive = np.abs(values[values != 0])
    return float(positive.min() * 1e-3) if positive.size else 1e-12


def _quantile_comparison(
    spec: MetricSpec,
    quantile: float,
    strata: list[Stratum],
    common: dict[str, Any],
    settings: Settings,
    rng: np.random.Generator,
) -> RegressionResult:
    """Quantile ratio with a (stratified) bootstrap; the baseline is reweighted to the current
    intent mix, so a shift towards slow intents is not a tail regression."""
    n1 = common["n_current"]
    cur_all = np.concatenate([s.current for s in strata])
    base_all = np.concatenate([s.baseline for s in strata])
    base_weights = np.concatenate(
        [np.full(len(s.baseline), (len(s.current) / n1) / len(s.baseline)) for s in strata]
    )
    eps = _epsilon(strata)
    cur_q = float(np.quantile(cur_all, quantile))
    base_q = weighted_quantile(base_all, base_weights, quantile)
    effect = (cur_q + eps) / (base_q + eps)
    fraction = boot_fraction(strata)
    cur_parts = resample(rng, [s.current for s in strata], settings.n_boot, fraction)
    base_parts = resample(rng, [s.baseline for s in strata], settings.n_boot, fraction)
    cur_qs = np.quantile(np.concatenate(cur_parts, axis=1), quantile, axis=1)
    base_boot = np.concatenate(base_parts, axis=1)
    # Each resampled baseline call weighs its intent's share of the current window.
    column_weights = np.concatenate(
        [
            np.full(part.shape[1], (len(s.current) / n1) / part.shape[1])
            for s, part in zip(strata, base_parts, strict=True)
        ]
    )
    order = np.argsort(base_boot, axis=1)
    sorted_values = np.take_along_axis(base_boot, order, axis=1)
    cumulative = np.cumsum(column_weights[order], axis=1)
    positions = (cumulative < quantile * cumulative[:, -1:]).sum(axis=1)
    positions = np.minimum(positions, base_boot.shape[1] - 1)
    base_qs = sorted_values[np.arange(settings.n_boot), positions]
    log_ratio = rescale(np.log((cur_qs + eps) / (base_qs + eps)), math.log(effect), fraction)
    low, high = np.exp(np.quantile(log_ratio, [settings.alpha / 2, 1 - settings.alpha / 2]))
    # Bootstrap p-value: how often the resampled ratio falls on the other side of 1.
    below = (1 + (log_ratio <= 0).sum()) / (settings.n_boot + 1)
    above = (1 + (log_ratio >= 0).sum()) / (settings.n_boot + 1)
    if settings.alternative == "two-sided" or spec.worse == "either":
        p_value = min(1.0, 2 * min(below, above))
    else:
        p_value = below if spec.worse == "higher" else above
    return RegressionResult(
        **common, test=f"bootstrap p{round(quantile * 100)} ratio", baseline_value=base_q,
        current_value=cur_q, effect=float(effect), ci_low=float(low), ci_high=float(high),
        p_value=float(p_value), q_value=None, score=0.0, regressed=False, improved=False,
        significant=False, verdict="no change", summary="", details={"statistic": f"q{quantile}"},
    )  # fmt: skip


def _continuous_examples(
    spec: MetricSpec, current: MetricSample, strata: list[Stratum], limit: int
) -> tuple[str, ...]:
    if current.ids is None or limit <= 0:
        return ()
    index = np.concatenate([s.current_index for s in strata])
    values = np.concatenate([s.current for s in strata])
    order = np.argsort(values if spec.worse == "lower" else -values, kind="stable")[:limit]
    return tuple(str(current.ids[int(index[i])]) for i in order)


def _finalise(results: list[RegressionResult], settings: Settings) -> list[RegressionResult]:
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    q_values = benjamini_hochberg([results[i].p_value or 1.0 for i in tested])
    final = list(results)
    for position, index in enumerate(tested):
        result = results[index]
        q = float(q_values[position])
        direction = effect_direction(result)
        big_enough = effect_magnitude(result) >= result.min_effect
        significant = q <= settings.alpha and direction != 0 and big_enough
        regressed = improved = False
        if settings.mode == "window":
            if result.worse == "either":
                verdict: Verdict = "changed" if significant else "no change"
            else:
                regressed = significant and direction > 0
                verdict = "regressed" if regressed else "no change"
        elif not significant:
            verdict = "no significant difference"
        elif result.worse == "either":
            verdict = "changed"
        else:
            regressed, improved = direction > 0, direction < 0
            verdict = "worse" if regressed else "better"
        p = result.p_value or 1.0
        updated = replace(
            result, q_value=q, score=-math.log10(max(p, 1e-300)), significant=significant,
            regressed=regressed, improved=improved, verdict=verdict,
        )  # fmt: skip
        final[index] = replace(updated, summary=summary_sentence(updated, settings))
    return final
