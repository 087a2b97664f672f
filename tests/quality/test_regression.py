"""Regression statistics on synthetic data with known truth: injected regressions are found,
a null run stays quiet at about alpha, and an intent-mix change is not a quality drop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from apps.quality.regression import (
    MetricSample,
    MetricSpec,
    RegressionResult,
    benjamini_hochberg,
    cmh_test,
    compare_releases,
    compare_windows,
    newcombe_interval,
)

INTENTS = np.array(["weather", "music", "booking"])


def simulate(
    rng: np.random.Generator,
    n: int,
    *,
    refusal: float = 0.05,
    negative: float = 0.10,
    latency_shift: float = 0.0,
    mix: tuple[float, float, float] = (0.5, 0.3, 0.2),
    intent_refusal: dict[str, float] | None = None,
    offset: int = 0,
) -> MetricSample:
    labels = rng.choice(INTENTS, size=n, p=mix)
    rates = (
        np.array([intent_refusal[label] for label in labels])
        if intent_refusal
        else np.full(n, refusal)
    )
    # Intents differ in speed, so a mix change moves the pooled latency too.
    base_log_latency = np.select([labels == "weather", labels == "music"], [5.5, 6.0], default=7.0)
    latency = np.exp(base_log_latency + latency_shift + rng.normal(0, 0.5, n))
    # Feedback arrives for about a third of the calls.
    has_feedback = rng.random(n) < 0.35
    feedback = np.where(has_feedback, (rng.random(n) < negative).astype(float), np.nan)
    return MetricSample(
        values={
            "refusal": (rng.random(n) < rates).astype(float),
            "negative_feedback": feedback,
            "latency_ms": latency,
            "error": (rng.random(n) < 0.01).astype(float),
        },
        ids=[f"call-{offset + i}" for i in range(n)],
        strata=labels,
    )


def by_metric(results: list[RegressionResult]) -> dict[str, RegressionResult]:
    return {result.metric: result for result in results}


def test_refusal_and_latency_regressions_injected_at_a_known_point_are_found() -> None:
    rng = np.random.default_rng(7)
    # One stream: the release at call 6,000 raises refusals 5% -> 9% and latency by 25%.
    before = simulate(rng, 6000)
    after = simulate(rng, 2000, refusal=0.09, latency_shift=np.log(1.25), offset=6000)
    values = {k: np.r_[before.column(k), after.column(k)] for k in before.values}
    ids = list(before.ids or []) + list(after.ids or [])
    strata = np.r_[np.asarray(before.strata), np.asarray(after.strata)]

    def window(start: int, stop: int) -> MetricSample:
        return MetricSample(
            {k: v[start:stop] for k, v in values.items()}, ids[start:stop], strata[start:stop]
        )

    baseline = window(0, 4000)
    quiet = by_metric(compare_windows(baseline, window(4000, 6000)))
    assert not any(result.regressed for result in quiet.values())

    found = by_metric(compare_windows(baseline, window(6000, 8000)))
    refusal = found["refusal"]
    assert refusal.regressed
    assert refusal.verdict == "regressed"
    assert refusal.ci_low is not None
    assert refusal.ci_low > 0
    assert refusal.ci_low < 0.04 < (refusal.ci_high or 0)  # the true +4 pp is covered
    assert refusal.q_value is not None
    assert refusal.q_value <= 0.05
    assert all(int(i.split("-")[1]) >= 6000 for i in refusal.example_ids)
    assert "Refusal rate rose" in refusal.summary
    latency = found["latency_ms"]
    assert latency.regressed
    assert latency.ci_low is not None
    assert latency.ci_low < 1.25 < (latency.ci_high or 0)
    assert found["latency_ms.p95"].regressed
    assert not found["error"].regressed
    assert not found["negative_feedback"].regressed


def test_new_release_with_worse_feedback_is_reported_worse_in_the_ab_view() -> None:
    rng = np.random.default_rng(11)
    release_a = simulate(rng, 5000, negative=0.10)
    release_b = simulate(rng, 5000, negative=0.15, latency_shift=np.log(0.8), offset=5000)
    results = by_metric(compare_releases(release_a, release_b))
    assert results["negative_feedback"].verdict == "worse"
    assert results["negative_feedback"].regressed
    # Faster is better, and the A/B view says so rather than hiding it.
    assert results["latency_ms"].verdict == "better"
    assert results["latency_ms"].improved
    assert results["refusal"].verdict == "no significant difference"
    assert set(results) == {
        "refusal", "negative_feedback", "latency_ms", "latency_ms.p95", "error"
    }  # fmt: skip


def test_null_runs_stay_quiet_at_about_alpha() -> None:
    runs = 100
    any_alarm = 0
    refusal_alarms = 0
    for seed in range(runs):
        rng = np.random.default_rng(1000 + seed)
        results = compare_windows(simulate(rng, 800), simulate(rng, 800), n_boot=200, seed=seed)
        any_alarm += any(result.regressed for result in results)
        refusal_alarms += by_metric(results)["refusal"].regressed
    # Expected at most alpha = 5% (BH across metrics); 10% leaves ~2.3 binomial SDs of room.
    assert any_alarm / runs <= 0.10
    assert refusal_alarms / runs <= 0.08


def test_pure_intent_mix_change_is_not_a_quality_drop() -> None:
    rates = {"weather": 0.02, "music": 0.05, "booking": 0.20}
    rng = np.random.default_rng(3)
    # Each intent keeps its refusal rate; only what users ask changes (booking 10% -> 40%).
    baseline = simulate(rng, 3000, mix=(0.6, 0.3, 0.1), intent_refusal=rates)
    current = simulate(rng, 3000, mix=(0.3, 0.3, 0.4), intent_refusal=rates)
    stratified = by_metric(compare_windows(baseline, current))
    pooled = by_metric(compare_windows(baseline, current, stratify=False))
    assert pooled["refusal"].regressed  # the naive test raises a false alarm...
    assert pooled["latency_ms"].regressed
    assert not stratified["refusal"].regressed  # ...the stratified one does not
    assert not stratified["latency_ms"].regressed
    assert not stratified["latency_ms.p95"].regressed
    assert stratified["refusal"].stratified
    assert stratified["refusal"].test == "Cochran-Mantel-Haenszel"
    assert stratified["refusal"].strata_compared == 3


def test_stratified_test_still_finds_a_drop_inside_one_intent() -> None:
    rng = np.random.default_rng(5)
    baseline = simulate(rng, 4000, intent_refusal={"weather": 0.02, "music": 0.05, "booking": 0.2})
    current = simulate(
        rng, 4000, intent_refusal={"weather": 0.02, "music": 0.12, "booking": 0.2}, offset=4000
    )
    refusal = by_metric(compare_windows(baseline, current))["refusal"]
    assert refusal.regressed
    assert refusal.stratified


def test_small_samples_give_insufficient_data_not_a_verdict() -> None:
    rng = np.random.default_rng(0)
    results = by_metric(compare_windows(simulate(rng, 60), simulate(rng, 60, refusal=0.5)))
    refusal = results["refusal"]
    assert refusal.verdict == "insufficient data"
    assert not refusal.regressed
    assert refusal.p_value is None
    assert refusal.q_value is None
    assert "insufficient data" in refusal.summary
    assert results["latency_ms.p95"].verdict == "insufficient data"
    assert results["latency_ms"].verdict != "insufficient data"  # 60 >= 30 for medians


def test_rare_events_use_fisher_exact() -> None:
    baseline = MetricSample({"error": np.r_[np.ones(1), np.zeros(499)]})
    current = MetricSample({"error": np.r_[np.ones(7), np.zeros(493)]})
    error = compare_windows(baseline, current)[0]
    assert error.test == "Fisher exact"
    expected = stats.fisher_exact([[7, 493], [1, 499]], alternative="greater").pvalue
    assert error.p_value == pytest.approx(expected)
    assert error.regressed


def test_exact_stratified_test_for_small_expected_counts() -> None:
    strata = [(3, 200, 0, 200), (2, 150, 0, 150)]
    p_value, test = cmh_test(strata, worse="higher", alternative="worse")
    assert test == "exact stratified (CMH)"
    # One stratum alone is Fisher's test: the exact stratified test must agree with it.
    single, _ = cmh_test([(3, 200, 0, 200)], worse="higher", alternative="worse")
    fisher = stats.fisher_exact([[3, 197], [0, 200]], alternative="greater").pvalue
    assert single == pytest.approx(fisher)
    assert p_value < single


def test_minimum_effect_keeps_tiny_significant_changes_quiet() -> None:
    rng = np.random.default_rng(2)
    n = 200_000
    baseline = MetricSample({"latency_ms": np.exp(rng.normal(6, 0.5, n))})
    current = MetricSample({"latency_ms": np.exp(rng.normal(6.02, 0.5, n))})  # +2%
    result = compare_windows(baseline, current, n_boot=100)[0]
    assert result.q_value is not None
    assert result.q_value < 0.001
    assert not result.regressed  # below the 5% minimum effect for latency
    strict = {"latency_ms": MetricSpec("latency_ms", "continuous", "higher", 0.01)}
    assert compare_windows(baseline, current, metrics=strict, n_boot=100)[0].regressed


def test_unknown_metrics_are_inferred_and_lower_can_be_worse() -> None:
    rng = np.random.default_rng(4)
    baseline = MetricSample({"custom_flag": (rng.random(2000) < 0.1).astype(float)})
    current = MetricSample({"custom_flag": (rng.random(2000) < 0.2).astype(float)})
    assert compare_windows(baseline, current)[0].kind == "rate"
    thumbs = {"thumbs_up": MetricSpec("thumbs_up", "rate", "lower", 0.01)}
    up_base = MetricSample({"thumbs_up": (rng.random(2000) < 0.8).astype(float)})
    up_cur = MetricSample({"thumbs_up": (rng.random(2000) < 0.7).astype(float)})
    result = compare_windows(up_base, up_cur, metrics=thumbs)[0]
    assert result.regressed
    assert "fell" in result.summary


def test_from_records_and_length_validation() -> None:
    records = [
        {"id": "a", "refusal": True, "latency_ms": 120.0, "intent": "x"},
        {"id": "b", "refusal": False, "latency_ms": None, "intent": "y"},
    ]
    sample = MetricSample.from_records(records, ["refusal", "latency_ms"], stratum_key="intent")
    assert sample.column("refusal").tolist() == [1.0, 0.0]
    assert np.isnan(sample.column("latency_ms")[1])
    assert sample.ids == ["a", "b"]
    with pytest.raises(ValueError, match="differ in length"):
        MetricSample({"a": [1, 0], "b": [1]})


def test_benjamini_hochberg_and_newcombe() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.2])
    # Sorted 0.01, 0.03, 0.04, 0.2 -> 0.04, 0.06, 0.0533, 0.2 -> running minimum from the top.
    assert q.tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])
    low, high = newcombe_interval(56, 70, 48, 80)  # Newcombe (1998), example (a)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_direction_neutral_metric_is_changed_not_regressed() -> None:
    rng = np.random.default_rng(8)
    baseline = MetricSample({"response_chars": np.exp(rng.normal(6.0, 0.4, 1500))})
    current = MetricSample({"response_chars": np.exp(rng.normal(6.4, 0.4, 1500))})  # +49%
    windows = compare_windows(baseline, current)[0]
    assert windows.verdict == "changed"
    assert windows.significant
    assert not windows.regressed
    releases = compare_releases(baseline, current)[0]
    assert releases.verdict == "changed"
    assert releases.effect is not None
    assert releases.effect > 1.3
