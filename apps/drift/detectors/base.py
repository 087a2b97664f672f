"""The detector contract: a :class:`DetectionResult` and a registry of window detectors.

A window detector compares a window of recent vectors with a fitted baseline through one
statistic (larger means more drift). It never sets its own threshold: :class:`Baseline`
calibrates every statistic on windows resampled from the reference, so the false-alarm rate is
the one asked for, whatever the data look like.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DetectionResult:
    """What one detector concluded about one window.

    ``score`` is the detector's statistic (larger means more drift); ``threshold`` is the
    calibrated critical value of that statistic at the requested false-alarm rate; ``p_value``
    is the share of no-drift calibration windows scoring at least as high (``None`` where a
    detector has no p-value). ``summary`` is one or two sentences for a human; ``details`` is
    JSON-able.
    """

    detector: str
    drifted: bool
    score: float
    threshold: float
    p_value: float | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WindowStats:
    """Sufficient statistics of a window compared with "the rest" of the reference.

    At test time "the rest" is the whole reference; during calibration it is the reference
    minus the resampled window (a permutation-style split, so the no-drift distribution of
    every statistic matches the one seen by fresh data).
    """

    n: int
    m: int
    window_mean: FloatArray
    rest_mean: FloatArray
    window_counts: IntArray
    rest_counts: IntArray
    # Distance of each window point to its nearest baseline centroid.
    window_distances: FloatArray
    # Calibrated "poorly served" distance: a quantile of the rest's distances.
    distance_threshold: float
    # The share of the rest beyond ``distance_threshold`` (close to 1 - quantile).
    rest_far_share: float


class WindowDetector(ABC):
    """One statistic of a window against the baseline; registered by :func:`register`."""

    name: ClassVar[str]

    @abstractmethod
    def statistic(self, stats: WindowStats) -> float:
        """The drift statistic: larger means further from the baseline."""


_REGISTRY: dict[str, type[WindowDetector]] = {}
D = TypeVar("D", bound=type[WindowDetector])


def register(cls: D) -> D:
    """Class decorator adding a window detector to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def get_detector(name: str) -> WindowDetector:
    if name not in _REGISTRY:
        raise ValueError(f"unknown detector {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]()


def registered() -> list[str]:
    return sorted(_REGISTRY)


def empirical_p_value(score: float, null_scores: FloatArray) -> float:
    """``(1 + #{null >= score}) / (B + 1)``: a valid p-value from B null draws."""
    exceed = int(np.count_nonzero(null_scores >= score))
    return (1 + exceed) / (null_scores.size + 1)


Formatter = Callable[[float], str]


def pct(share: float) -> str:
    return f"{100.0 * share:.1f}%"
