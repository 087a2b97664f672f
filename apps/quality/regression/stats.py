"""Generic statistics, no metric names: multiple testing, proportion intervals and tests,
stratified tests (CMH, van Elteren), weighted quantiles and the bootstrap helpers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

Worse = Literal["higher", "lower", "either"]


Alternative = Literal["worse", "two-sided"]


FloatArray = npt.NDArray[np.float64]


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


def one_sided(z: float, worse: Worse, alternative: Alternative) -> float:
    """p-value of a standard-normal statistic ``z`` (positive = current higher)."""
    if alternative == "two-sided" or worse == "either":
        return float(2 * stats.norm.sf(abs(z)))
    return float(stats.norm.sf(z) if worse == "higher" else stats.norm.cdf(z))


def scipy_alternative(worse: Worse, alternative: Alternative) -> str:
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
        result = stats.fisher_exact(table, alternative=scipy_alternative(worse, alternative))
        return float(result.pvalue), "Fisher exact"
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    z = (x1 / n1 - x0 / n0) / se if se > 0 else 0.0
    return one_sided(z, worse, alternative), "two-proportion z"


@dataclass(frozen=True, slots=True)
class Stratum:
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
    return one_sided(z, worse, alternative), "Cochran-Mantel-Haenszel"


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
    return one_sided((statistic - expected) / math.sqrt(variance), worse, alternative)


def weighted_quantile(values: FloatArray, weights: FloatArray, q: float) -> float:
    """The ``q`` quantile of ``values`` under ``weights`` (inverse of the weighted CDF)."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    position = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(values[order][min(position, len(values) - 1)])


# Bootstrap resamples hold at most this many calls per arm: a window of 200k calls resampled 500
# times would need gigabytes. Larger windows use an m-out-of-n bootstrap whose spread is rescaled
# by sqrt(m/n), which is valid for medians and quantiles.
MAX_BOOTSTRAP_N = 10_000


def boot_fraction(strata: Sequence[Stratum]) -> float:
    biggest = max(sum(len(s.current) for s in strata), sum(len(s.baseline) for s in strata))
    return min(1.0, MAX_BOOTSTRAP_N / max(biggest, 1))


def resample(
    rng: np.random.Generator, arrays: Sequence[FloatArray], n_boot: int, fraction: float
) -> list[FloatArray]:
    """Per array, ``n_boot`` resamples (rows) of ``fraction`` of its size (at least 1)."""
    out = []
    for values in arrays:
        size = max(1, round(len(values) * fraction))
        out.append(values[rng.integers(0, len(values), size=(n_boot, size))])
    return out


def rescale(boot: FloatArray, point: float, fraction: float) -> FloatArray:
    if fraction >= 1.0:
        return boot
    rescaled: FloatArray = point + (boot - boot.mean()) * math.sqrt(fraction)
    return rescaled
