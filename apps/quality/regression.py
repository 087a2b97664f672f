"""Regression detection between two windows of calls (pure functions of arrays, no database).

Two questions, one machinery:

* :func:`compare_windows`: has quality, cost, latency or safety got *worse* in the current window
  than in the baseline window? One-sided tests in each metric's bad direction.
* :func:`compare_releases`: A/B view of two releases or models, every metric side by side, better
  or worse, two-sided tests.

Statistics:

* rates (negative feedback, refusals, errors, safety flags): two-proportion z test, or Fisher's
  exact test when an expected cell count is below 5; the difference gets a Newcombe (Wilson
  score) interval.
* continuous metrics (latency, cost, tokens, length): Mann-Whitney U (rank based, so the same on
  log values), effect = ratio of medians with a bootstrap interval; plus a separate comparison of
  the 95th percentile (ratio, bootstrap interval and bootstrap p-value), because tail latency can
  regress while the median does not.
* stratified by intent when both samples carry intent labels: Cochran-Mantel-Haenszel for rates
  (exact conditional test, a convolution of per-intent hypergeometrics, when expected counts are
  small), van Elteren's stratified rank-sum test for continuous metrics, and effects standardised
  to the current window's intent mix. A change in *what users ask* then does not read as a change
  in *how well it is answered*. Intents present in one window only cannot be compared and are left
  out; ``coverage`` says which share of the current window was compared.
* Benjamini-Hochberg across all tests of one comparison (``q_value``), minimum sample sizes before
  any verdict ("insufficient data"), and a minimum practical effect per metric, so a 0.3% latency
  change over a million calls is not an alert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

Kind = Literal["rate", "continuous"]
Worse = Literal["higher", "lower", "either"]
Alternative = Literal["worse", "two-sided"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How to test one metric.

    ``min_effect`` is the smallest change that counts: an absolute difference for rates (0.01 =
    one percentage point), a relative change for continuous metrics (0.05 = 5%).
    """

    name: str
    kind: Kind
    worse: Worse = "higher"
    min_effect: float = 0.0
    label: str = ""
    unit: str = ""
    quantile: float | None = None

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")


DEFAULT_METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("negative_feedback", "rate", "higher", 0.01, "negative feedback rate"),
        MetricSpec("refusal", "rate", "higher", 0.01, "refusal rate"),
        MetricSpec("error", "rate", "higher", 0.005, "error rate"),
        MetricSpec("flagged", "rate", "higher", 0.005, "safety flag rate"),
        MetricSpec("injection", "rate", "higher", 0.005, "injection rate"),
        MetricSpec("pii", "rate", "higher", 0.005, "PII rate"),
        MetricSpec("empty", "rate", "higher", 0.005, "empty answer rate"),
        MetricSpec("truncated", "rate", "higher", 0.01, "truncation rate"),
        MetricSpec("json_invalid", "rate", "higher", 0.01, "invalid JSON rate"),
        MetricSpec("latency_ms", "continuous", "higher", 0.05, "latency", "ms", 0.95),
        MetricSpec("ttft_ms", "continuous", "higher", 0.05, "time to first token", "ms", 0.95),
        MetricSpec("cost_usd", "continuous", "higher", 0.05, "cost per call", "USD", 0.95),
        MetricSpec("input_tokens", "continuous", "higher", 0.05, "input tokens"),
        MetricSpec("output_tokens", "continuous", "higher", 0.05, "output tokens"),
        MetricSpec("total_tokens", "continuous", "higher", 0.05, "total tokens"),
        MetricSpec("response_chars", "continuous", "either", 0.1, "response length", "chars"),
    )
}


@dataclass(frozen=True)
class MetricSample:
    """One window (or release) of calls, columnar.

    ``values`` maps a metric name to one value per call: 0/1 for rates, a number for continuous
    metrics, NaN where the call has no value (no feedback yet, no cost). ``ids`` (optional) names
    the calls, for example links; ``strata`` (optional) is the intent label of each call.
    """

    values: Mapping[str, npt.ArrayLike]
    ids: Sequence[str] | None = None
    strata: npt.ArrayLike | None = None
    label: str = ""

    def __post_init__(self) -> None:
        lengths = {name: len(np.asarray(v, dtype=float)) for name, v in self.values.items()}
        if self.ids is not None:
            lengths["ids"] = len(self.ids)
        if self.strata is not None:
            lengths["strata"] = len(np.asarray(self.strata))
        if len(set(lengths.values())) > 1:
            raise ValueError(f"MetricSample columns differ in length: {lengths}")

    @classmethod
    def from_records(
        cls,
        records: Sequence[Mapping[str, Any]],
        metrics: Sequence[str],
        *,
        id_key: str | None = "id",
        stratum_key: str | None = None,
        label: str = "",
    ) -> MetricSample:
        """Build from row dicts (e.g. selector ``.values()``); None becomes NaN, bools 0/1."""
        values = {
            name: np.array([_number(row.get(name)) for row in records], dtype=float)
            for name in metrics
        }
        ids = [str(row.get(id_key)) for row in records] if id_key else None
        strata = None
        if stratum_key:
            strata = np.array([str(row.get(stratum_key)) for row in records], dtype=object)
        return cls(values=values, ids=ids, strata=strata, label=label)

    def column(self, name: str) -> FloatArray:
        return np.asarray(self.values[name], dtype=float)

    def size(self) -> int:
        for column in self.values.values():
            return len(np.asarray(column, dtype=float))
        return 0


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


Verdict = Literal[
    "regressed",
    "improved",
    "changed",
    "no change",
    "worse",
    "better",
    "no significant difference",
    "insufficient data",
]


@dataclass(frozen=True)
class RegressionResult:
    """The comparison of one metric (or one quantile of it) between two samples.

    ``effect`` is ``current - baseline`` for rates (``effect_kind="difference"``) and
    ``current / baseline`` for continuous metrics (``"ratio"``), with a ``1 - alpha`` confidence
    interval. ``score`` is ``-log10(p_value)`` (0 when untested).
    """

    metric: str
    kind: Literal["rate", "continuous", "quantile"]
    test: str
    n_baseline: int
    n_current: int
    baseline_value: float | None
    current_value: float | None
    effect: float | None
    effect_kind: Literal["difference", "ratio"]
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    q_value: float | None
    score: float
    regressed: bool
    improved: bool
    significant: bool
    verdict: Verdict
    stratified: bool
    strata_compared: int
    coverage: float
    summary: str
    example_ids: tuple[str, ...] = ()
    worse: Worse = "higher"
    min_effect: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


# --- statistics helpers --------------------------------------------------------------------------


def benjamini_hochberg(p_values: Sequence[float]) -> FloatArray:
    """BH adjusted p-values (q-values), same order as the input."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def wilson_interval(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n <= 0:
        return (0.0, 1.0)
    z = float(stats.norm.isf(alpha / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_interval(
    x1: float, n1: float, x0: float, n0: float, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p1 - p0`` (method 10 of Newcombe 1998)."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson_interval(x1, n1, alpha)
    l0, u0 = wilson_interval(x0, n0, alpha)
    d = p1 - p0
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
    )


def _one_sided(z: float, worse: Worse, alternative: Alternative) -> float:
    """p-value of a standard-normal statistic ``z`` (positive = current higher)."""
    if alternative == "two-sided" or worse == "either":
        return float(2 * stats.norm.sf(abs(z)))
    return float(stats.norm.sf(z) if worse == "higher" else stats.norm.cdf(z))


def _scipy_alternative(worse: Worse, alternative: Alternative) -> str:
    if alternative == "two-sided" or worse == "either":
        return "two-sided"
    return "greater" if worse == "higher" else "less"


def two_proportion_test(
    x1: int, n1: int, x0: int, n0: int, *, worse: Worse, alternative: Alternative
) -> tuple[float, str]:
    """p-value comparing current ``x1/n1`` with baseline ``x0/n0``: z test, or Fisher's exact
    test when an expected cell count is below 5."""
    pooled = (x1 + x0) / (n1 + n0)
    expected = min(n1 * pooled, n1 * (1 - pooled), n0 * pooled, n0 * (1 - pooled))
    if expected < 5:
        table = [[x1, n1 - x1], [x0, n0 - x0]]
        result = stats.fisher_exact(table, alternative=_scipy_alternative(worse, alternative))
        return float(result.pvalue), "Fisher exact"
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    z = (x1 / n1 - x0 / n0) / se if se > 0 else 0.0
    return _one_sided(z, worse, alternative), "two-proportion z"


@dataclass(frozen=True, slots=True)
class _Stratum:
    key: Any
    current: FloatArray
    baseline: FloatArray
    current_index: npt.NDArray[np.intp]


def cmh_test(
    strata: Sequence[tuple[int, int, int, int]], *, worse: Worse, alternative: Alternative
) -> tuple[float, str]:
    """Cochran-Mantel-Haenszel test over ``(x1, n1, x0, n0)`` per stratum (current first).

    Uses the exact conditional distribution of the current arm's total events (a convolution of
    per-stratum hypergeometrics) when the expected total is small, as Fisher's test does for one
    table.
    """
    observed = expected = variance = 0.0
    for x1, n1, x0, n0 in strata:
        total, events = n1 + n0, x1 + x0
        if total < 2:
            continue
        observed += x1
        expected += n1 * events / total
        variance += n1 * n0 * events * (total - events) / (total * total * (total - 1))
    # Mantel-Fleiss criterion: the expected total must sit at least 5 away from both bounds of
    # its support, or the normal approximation is poor.
    lowest = sum(max(0, x1 + x0 - n0) for x1, _, x0, n0 in strata)
    highest = sum(min(n1, x1 + x0) for x1, n1, x0, _ in strata)
    lower_room, upper_room = expected - lowest, highest - expected
    if min(lower_room, upper_room) < 5 or variance <= 0:
        return _exact_stratified(
            strata, worse=worse, alternative=alternative
        ), "exact stratified (CMH)"
    z = (observed - expected) / math.sqrt(variance)
    return _one_sided(z, worse, alternative), "Cochran-Mantel-Haenszel"


def _exact_stratified(
    strata: Sequence[tuple[int, int, int, int]], *, worse: Worse, alternative: Alternative
) -> float:
    pmf = np.array([1.0])
    offset = 0
    observed = 0
    for x1, n1, x0, n0 in strata:
        events = x1 + x0
        low, high = max(0, events - n0), min(n1, events)
        support = np.arange(low, high + 1)
        stratum_pmf = stats.hypergeom.pmf(support, n1 + n0, events, n1)
        pmf = np.convolve(pmf, stratum_pmf)
        offset += low
        observed += x1
    index = observed - offset
    tolerance = 1e-7 * pmf[index]
    upper = float(pmf[index:].sum())
    lower = float(pmf[: index + 1].sum())
    if alternative == "two-sided" or worse == "either":
        # Fisher's two-sided rule: sum the outcomes no more likely than the observed one.
        return float(min(1.0, pmf[pmf <= pmf[index] + tolerance].sum()))
    return min(1.0, upper if worse == "higher" else lower)


def van_elteren_test(
    strata: Sequence[tuple[FloatArray, FloatArray]], *, worse: Worse, alternative: Alternative
) -> float:
    """Van Elteren's stratified Wilcoxon rank-sum test over ``(current, baseline)`` per stratum."""
    statistic = expected = variance = 0.0
    for current, baseline in strata:
        n1, n0 = len(current), len(baseline)
        total = n1 + n0
        if n1 == 0 or n0 == 0:
            continue
        ranks = stats.rankdata(np.concatenate([current, baseline]))
        _, counts = np.unique(ranks, return_counts=True)
        ties = float(((counts**3) - counts).sum())
        weight = 1.0 / (total + 1)
        statistic += weight * float(ranks[:n1].sum())
        expected += weight * n1 * (total + 1) / 2
        tie_factor = (total + 1) - ties / (total * (total - 1)) if total > 1 else 0.0
        variance += weight * weight * n1 * n0 / 12 * tie_factor
    if variance <= 0:
        return 1.0
    return _one_sided((statistic - expected) / math.sqrt(variance), worse, alternative)


def weighted_quantile(values: FloatArray, weights: FloatArray, q: float) -> float:
    """The ``q`` quantile of ``values`` under ``weights`` (inverse of the weighted CDF)."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    position = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(values[order][min(position, len(values) - 1)])


# --- the comparison ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Settings:
    alpha: float
    alternative: Alternative
    stratify: bool
    min_n_rate: int
    min_n_continuous: int
    min_n_quantile: int
    n_boot: int
    seed: int
    max_examples: int
    mode: Literal["window", "release"]


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
    settings = _Settings(
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
    settings = _Settings(
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
    settings: _Settings,
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
    spec: MetricSpec, baseline: MetricSample, current: MetricSample, settings: _Settings
) -> tuple[list[_Stratum], bool, float]:
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
                    _Stratum(
                        key,
                        cur_values[cur_mask],
                        base_values[base_ok & (base_labels == key)],
                        np.flatnonzero(cur_mask),
                    )
                )
            compared = sum(len(s.current) for s in strata)
            return strata, True, compared / max(int(cur_ok.sum()), 1)
    single = _Stratum(None, cur_values[cur_ok], base_values[base_ok], np.flatnonzero(cur_ok))
    return [single], False, 1.0


def _compare_rate(
    spec: MetricSpec, baseline: MetricSample, current: MetricSample, settings: _Settings
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
    strata: list[_Stratum],
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


# Bootstrap resamples hold at most this many calls per arm: a window of 200k calls resampled 500
# times would need gigabytes. Larger windows use an m-out-of-n bootstrap whose spread is rescaled
# by sqrt(m/n), which is valid for medians and quantiles.
MAX_BOOTSTRAP_N = 10_000


def _boot_fraction(strata: Sequence[_Stratum]) -> float:
    biggest = max(sum(len(s.current) for s in strata), sum(len(s.baseline) for s in strata))
    return min(1.0, MAX_BOOTSTRAP_N / max(biggest, 1))


def _resample(
    rng: np.random.Generator, arrays: Sequence[FloatArray], n_boot: int, fraction: float
) -> list[FloatArray]:
    """Per array, ``n_boot`` resamples (rows) of ``fraction`` of its size (at least 1)."""
    out = []
    for values in arrays:
        size = max(1, round(len(values) * fraction))
        out.append(values[rng.integers(0, len(values), size=(n_boot, size))])
    return out


def _rescale(boot: FloatArray, point: float, fraction: float) -> FloatArray:
    if fraction >= 1.0:
        return boot
    rescaled: FloatArray = point + (boot - boot.mean()) * math.sqrt(fraction)
    return rescaled


def _compare_continuous(
    spec: MetricSpec,
    baseline: MetricSample,
    current: MetricSample,
    settings: _Settings,
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
    strata: list[_Stratum],
    common: dict[str, Any],
    current: MetricSample,
    settings: _Settings,
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
            alternative=_scipy_alternative(spec.worse, settings.alternative),
            method="asymptotic",
        )
        p_value, test = float(result.pvalue), "Mann-Whitney U (log scale)"
    # Effect: ratio of medians, per intent on the log scale, weighted by the current mix.
    eps = _epsilon(strata)
    cur_medians = np.array([np.median(s.current) for s in strata])
    base_medians = np.array([np.median(s.baseline) for s in strata])
    effect = float(np.exp((weights * np.log((cur_medians + eps) / (base_medians + eps))).sum()))
    fraction = _boot_fraction(strata)
    cur_boot = _resample(rng, [s.current for s in strata], settings.n_boot, fraction)
    base_boot = _resample(rng, [s.baseline for s in strata], settings.n_boot, fraction)
    boot = np.zeros(settings.n_boot)
    for k in range(len(strata)):
        cur_m = np.median(cur_boot[k], axis=1)
        base_m = np.median(base_boot[k], axis=1)
        boot += weights[k] * np.log((cur_m + eps) / (base_m + eps))
    boot = _rescale(boot, math.log(effect), fraction)
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


def _epsilon(strata: list[_Stratum]) -> float:
    # Keeps log ratios finite when a median is 0 (e.g. zero output tokens), negligible otherwise.
    values = np.concatenate([np.concatenate([s.current, s.baseline]) for s in strata])
    positive = np.abs(values[values != 0])
    return float(positive.min() * 1e-3) if positive.size else 1e-12


def _quantile_comparison(
    spec: MetricSpec,
    quantile: float,
    strata: list[_Stratum],
    common: dict[str, Any],
    settings: _Settings,
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
    fraction = _boot_fraction(strata)
    cur_parts = _resample(rng, [s.current for s in strata], settings.n_boot, fraction)
    base_parts = _resample(rng, [s.baseline for s in strata], settings.n_boot, fraction)
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
    log_ratio = _rescale(np.log((cur_qs + eps) / (base_qs + eps)), math.log(effect), fraction)
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
    spec: MetricSpec, current: MetricSample, strata: list[_Stratum], limit: int
) -> tuple[str, ...]:
    if current.ids is None or limit <= 0:
        return ()
    index = np.concatenate([s.current_index for s in strata])
    values = np.concatenate([s.current for s in strata])
    order = np.argsort(values if spec.worse == "lower" else -values, kind="stable")[:limit]
    return tuple(str(current.ids[int(index[i])]) for i in order)


def _finalise(results: list[RegressionResult], settings: _Settings) -> list[RegressionResult]:
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    q_values = benjamini_hochberg([results[i].p_value or 1.0 for i in tested])
    final = list(results)
    for position, index in enumerate(tested):
        result = results[index]
        q = float(q_values[position])
        direction = _direction(result)
        big_enough = _magnitude(result) >= result.min_effect
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
        final[index] = replace(updated, summary=_summary(updated, settings))
    return final


def _direction(result: RegressionResult) -> int:
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


def _magnitude(result: RegressionResult) -> float:
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


def _summary(result: RegressionResult, settings: _Settings) -> str:
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
    moved = "rose" if _direction(result) * (1 if result.worse != "lower" else -1) > 0 else "fell"
    if result.effect is not None and _magnitude(result) == 0:
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
        and _magnitude(result) < result.min_effect
    ):
        small = " below the minimum effect"
    return (
        f"{title} {moved} {change_text} ({effect}); {result.test} "
        f"p={_fmt_p(result.p_value)}, q={_fmt_p(result.q_value)}: {what}{small}{strat}."
    )


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
