"""The window detectors combined by :class:`~.baseline.Baseline`.

Each returns one statistic from :class:`~.base.WindowStats`; thresholds and p-values come from
the baseline's calibration, never from constants here.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from .base import WindowDetector, WindowStats, register

# Below this expected count a cell of the intent table is merged with the other small ones:
# the chi-square approximation needs about 5 expected per cell.
MIN_EXPECTED = 5.0


@register
class MeanShiftDetector(WindowDetector):
    """Centroid distance (the linear-kernel MMD): ``||mean(W) - mean(R)||^2 / (1/n + 1/m)``.

    Scaling by ``1/n + 1/m`` makes the no-drift distribution nearly independent of the window
    size (a weighted chi-square under the CLT). Most powerful for a shift of the intent mix
    and for a new intent once it holds a few percent of the traffic.
    """

    name = "mean_shift"

    def statistic(self, stats: WindowStats) -> float:
        gap = stats.window_mean - stats.rest_mean
        return float(gap @ gap) / (1.0 / stats.n + 1.0 / stats.m)


def merged_table(window: np.ndarray, rest: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Window and rest counts with the cells expected below ``MIN_EXPECTED`` merged into one."""
    expected = rest / max(rest.sum(), 1) * n
    small = expected < MIN_EXPECTED
    if small.sum() <= 1:
        return window, rest
    return (
        np.append(window[~small], window[small].sum()),
        np.append(rest[~small], rest[small].sum()),
    )


def chi_square_log_p(window: np.ndarray, rest: np.ndarray, n: int) -> tuple[float, float, int]:
    """Chi-square test of homogeneity (2 x k): ``(-log10 p, chi2, dof)``."""
    w, r = merged_table(window.astype(np.float64), rest.astype(np.float64), n)
    used = (w + r) > 0
    w, r = w[used], r[used]
    if len(w) < 2:
        return 0.0, 0.0, 0
    table = np.vstack([w, r])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    dof = len(w) - 1
    log_p = -float(scipy_stats.chi2.logsf(chi2, dof)) / np.log(10.0)
    return log_p, chi2, dof


@register
class IntentShareDetector(WindowDetector):
    """Chi-square test of the window's intent shares against the reference's.

    The statistic is ``-log10 p`` of the 2 x k homogeneity test (small cells merged), so it is
    comparable across degrees of freedom; it is then calibrated like the others, which also
    absorbs any error of the chi-square approximation.
    """

    name = "intent_share"

    def statistic(self, stats: WindowStats) -> float:
        return chi_square_log_p(stats.window_counts, stats.rest_counts, stats.n)[0]


@register
class NewIntentDetector(WindowDetector):
    """Share of calls poorly served by every baseline cluster, as a binomial z-score.

    "Poorly served" means farther from the nearest centroid than a quantile of the reference's
    (leave-one-out) distances. The z-score uses the rest's own far share as the null rate.
    """

    name = "new_intent"

    def statistic(self, stats: WindowStats) -> float:
        far = float(np.count_nonzero(stats.window_distances > stats.distance_threshold))
        rate = min(max(stats.rest_far_share, 1e-6), 1 - 1e-6)
        expected = rate * stats.n
        return float((far - expected) / np.sqrt(expected * (1 - rate) * (1 + stats.n / stats.m)))
