"""Drift detectors: pure functions and classes over numpy arrays (no Django, no database).

Public contract:

* :class:`Baseline` -- ``Baseline.fit(reference, *, false_alarm_rate=0.01, texts=None)`` and
  ``baseline.test(window, *, texts=None) -> BaselineTestResult``; ``to_state()`` /
  ``from_state()`` for storage (JSON-able, arrays base64-encoded).
* Window detectors (registry: :func:`register`, :func:`get_detector`, the only way to find
  one): ``kernel_mmd_classifier`` (votes by default: the kernel MMD and a leave-one-out
  ridge classifier; ``kernel_mmd`` and ``ridge_classifier`` alone), ``mean_shift``,
  ``intent_share`` and ``new_intent`` (explainers), ``whitened_shift`` and ``knn_novelty``
  (on request), each a
  :class:`WindowDetector` with ``statistics(sample)`` over a :class:`PermutationSample` and
  ``explain(context)``, each reported as a :class:`DetectionResult`.
* :func:`ood_scores` / :func:`calibrate_ood_threshold`: per-call out-of-domain scores.
* :class:`MewmaDetector`: streaming alarms with a calibrated in-control run length.
"""

from . import windowed as _windowed  # noqa: F401  (registers the window detectors)
from .base import (
    DetectionResult,
    ExplainContext,
    PermutationSample,
    WindowDetector,
    get_detector,
    register,
    registered,
)
from .baseline import DEFAULT_DETECTORS, EXPLAINERS, Baseline, BaselineTestResult
from .intents import IntentModel
from .ood import (
    OutOfDomainResult,
    calibrate_ood_threshold,
    flag_out_of_domain,
    knn_distances,
    ood_scores,
)
from .streaming import MewmaDetector, StreamUpdate

__all__ = [
    "DEFAULT_DETECTORS",
    "EXPLAINERS",
    "Baseline",
    "BaselineTestResult",
    "DetectionResult",
    "ExplainContext",
    "IntentModel",
    "MewmaDetector",
    "OutOfDomainResult",
    "PermutationSample",
    "StreamUpdate",
    "WindowDetector",
    "calibrate_ood_threshold",
    "flag_out_of_domain",
    "get_detector",
    "knn_distances",
    "ood_scores",
    "register",
    "registered",
]
