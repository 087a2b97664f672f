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

Modules: ``stats`` (generic statistics), ``metrics`` (the catalogue and result types),
``compare`` (the engine), ``summary`` (English sentences). The names below are the public API,
re-exported here because the bench and the compare/prompt pages import them from this path.
"""

from apps.quality.regression.compare import compare_releases, compare_windows
from apps.quality.regression.metrics import (
    DEFAULT_METRICS,
    MetricSample,
    MetricSpec,
    RegressionResult,
    Verdict,
)
from apps.quality.regression.stats import (
    benjamini_hochberg,
    cmh_test,
    newcombe_interval,
    two_proportion_test,
    van_elteren_test,
    weighted_quantile,
    wilson_interval,
)

__all__ = [
    "DEFAULT_METRICS",
    "MetricSample",
    "MetricSpec",
    "RegressionResult",
    "Verdict",
    "benjamini_hochberg",
    "cmh_test",
    "compare_releases",
    "compare_windows",
    "newcombe_interval",
    "two_proportion_test",
    "van_elteren_test",
    "weighted_quantile",
    "wilson_interval",
]
