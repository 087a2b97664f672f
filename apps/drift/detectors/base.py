"""The detector contract: a :class:`DetectionResult`, the permutation sample every detector
reads, and a registry of window detectors.

A window detector turns a window of recent vectors and the baseline's reference into one
statistic (larger means more drift) and says in words what it saw (:meth:`WindowDetector.explain`).
It never sets its own threshold: :class:`~.baseline.Baseline` pools the window with the
reference and re-splits the pool at random (:class:`PermutationSample`), so every statistic is
compared with its own exact no-drift distribution for *this* window against *this* reference.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # intents imports this module for the array aliases
    from .intents import IntentModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Nearest pooled rows kept per row for the neighbour statistics. A window row whose L nearest
# rows all fall in its own window is scored at the L-th distance (still a function of the
# split, so the test stays exact); with a window a quarter of the pool that happens with
# probability 0.25^L.
NEIGHBOURS = 24
NEIGHBOUR_BLOCK = 1024


@dataclass(frozen=True)
class DetectionResult:
    """What one detector concluded about one window.

    ``score`` is the detector's statistic (larger means more drift); ``threshold`` is the
    critical value of that statistic at the level the combined test used (a quantile of its
    permutation distribution); ``p_value`` is its exact permutation p-value (``None`` where a
    detector has none). ``summary`` is one or two sentences for a human; ``details`` is
    JSON-able and always carries ``title`` (the test's plain name) and ``votes`` (whether the
    detector takes part in the combined verdict or only explains it).
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


@dataclass
class PermutationSample:
    """The window and the reference pooled (``N = n + m`` rows), and ``B`` random re-splits.

    Row 0 of ``masks`` marks the real window (the first ``n`` pooled rows); rows ``1..B`` each
    mark ``n`` rows drawn without replacement from the pool. Under no drift the window and the
    reference are exchangeable, so a statistic of the real split is one more draw from the
    distribution of the re-splits: the rank of row 0 is an exact p-value (a permutation test),
    whatever the sizes. Everything a statistic may depend on (the pooled covariance, the
    intent labels of pooled rows) is a function of the pool, not of the split, or the
    exactness would be lost.

    Sums over the window rows of each split are computed once (``masks @ x``), so a statistic
    that is a difference of means costs one pass per permutation.
    """

    n: int
    m: int
    masks: npt.NDArray[np.float32]  # (B + 1, N)
    centred: FloatArray  # (N, d): pooled rows centred on the pooled mean
    eigenvectors: FloatArray  # (d, d): columns are the pooled covariance's eigenvectors
    eigenvalues: FloatArray  # (d,) their eigenvalues
    labels: IntArray  # (N,) nearest baseline intent of each pooled row
    far: npt.NDArray[np.bool_]  # (N,) beyond the baseline's "poorly served" distance
    k: int

    @property
    def size(self) -> int:
        """Number of re-splits ``B`` (row 0, the real split, excluded)."""
        return int(self.masks.shape[0]) - 1

    @cached_property
    def mean_gaps(self) -> FloatArray:
        """(B + 1, d): window mean minus rest mean of every split, in the pooled eigenbasis.

        With pooled rows centred, the rest sums to minus the window, so the gap is
        ``S (1/n + 1/m)`` for the window sum ``S``; rotating the (B + 1, d) gaps is cheaper
        than rotating the (N, d) pool.
        """
        sums = np.asarray(self.masks @ self.centred.astype(np.float32), dtype=np.float64)
        return np.asarray(sums @ self.eigenvectors, dtype=np.float64) * (
            1.0 / self.n + 1.0 / self.m
        )

    @cached_property
    def principal_rows(self) -> FloatArray:
        """(N, d): the pooled rows (centred) in the pooled covariance's eigenbasis; column
        ``j`` has squared norm ``(N - 1) * eigenvalues[j]``. A function of the pool only."""
        return np.asarray(self.centred @ self.eigenvectors, dtype=np.float64)

    @cached_property
    def window_rows(self) -> IntArray:
        """(B + 1, n): the pooled rows forming the window of every split (ascending)."""
        _, columns = np.nonzero(self.masks)
        return np.asarray(columns.reshape(len(self.masks), self.n), dtype=np.int64)

    @cached_property
    def neighbours(self) -> tuple[IntArray, FloatArray]:
        """The :data:`NEIGHBOURS` nearest pooled rows of every pooled row, closest first:
        indices (N, L) and squared Euclidean distances (N, L) (twice the cosine distance for
        unit rows). A function of the pool only; computed in row blocks so the (N, N)
        distances are never held at once."""
        rows = self.centred.astype(np.float32)
        norms = np.einsum("nd,nd->n", rows, rows)
        count = len(rows)
        width = min(NEIGHBOURS, count - 1)
        index = np.empty((count, width), dtype=np.int64)
        distance = np.empty((count, width), dtype=np.float64)
        for start in range(0, count, NEIGHBOUR_BLOCK):
            stop = min(start + NEIGHBOUR_BLOCK, count)
            block = norms[start:stop, None] + norms[None, :] - 2.0 * (rows[start:stop] @ rows.T)
            block[np.arange(stop - start), np.arange(start, stop)] = np.inf  # not itself
            part = np.argpartition(block, width - 1, axis=1)[:, :width]
            values = np.take_along_axis(block, part, axis=1)
            order = np.argsort(values, axis=1)
            index[start:stop] = np.take_along_axis(part, order, axis=1)
            distance[start:stop] = np.maximum(np.take_along_axis(values, order, axis=1), 0.0)
        return index, distance

    @cached_property
    def squared_distances(self) -> npt.NDArray[np.float32]:
        """(N, N) squared Euclidean distances between pooled rows."""
        rows = self.centred.astype(np.float32)
        norms = np.einsum("nd,nd->n", rows, rows)
        out = norms[:, None] + norms[None, :] - 2.0 * (rows @ rows.T)
        np.maximum(out, 0.0, out=out)
        np.fill_diagonal(out, 0.0)
        return np.asarray(out, dtype=np.float32)

    @cached_property
    def kernel(self) -> npt.NDArray[np.float32]:
        """(N, N) Gaussian kernel of the pool, bandwidth by the median heuristic: the median of
        the (N, N) squared distances (each pair twice, and the N zeros of the diagonal, which
        at N >= 100 moves it by a hair; no (N^2 / 2) index arrays), a function of the pool."""
        distances = self.squared_distances
        sigma2 = max(float(np.median(distances)), 1e-12)
        return np.asarray(np.exp(distances * np.float32(-1.0 / sigma2)), dtype=np.float32)

    @cached_property
    def neighbour_in_window(self) -> npt.NDArray[np.bool_]:
        """(B + 1, n, L): for each window row of each split, which of its nearest pooled rows
        lie in that split's window too."""
        index, _ = self.neighbours
        inside = self.masks.astype(bool)
        rows = self.window_rows
        return np.take_along_axis(
            inside[:, None, :], index[rows].reshape(len(rows), -1)[:, None, :], axis=2
        ).reshape(len(rows), self.n, index.shape[1])

    @cached_property
    def window_counts(self) -> FloatArray:
        """(B + 1, k): calls of each intent in the window of every split."""
        onehot = np.zeros((len(self.labels), self.k), dtype=np.float32)
        onehot[np.arange(len(self.labels)), self.labels] = 1.0
        return np.asarray(self.masks @ onehot, dtype=np.float64)

    @cached_property
    def total_counts(self) -> FloatArray:
        return np.bincount(self.labels, minlength=self.k).astype(np.float64)

    @cached_property
    def window_far(self) -> FloatArray:
        """(B + 1,): poorly served calls in the window of every split."""
        return np.asarray(self.masks @ self.far.astype(np.float32), dtype=np.float64)


@dataclass
class ExplainContext:
    """What a detector may read to explain a tested window (real split only)."""

    intents: IntentModel
    terms: Counter[str]
    false_alarm_rate: float
    group_radius: float
    vectors: FloatArray  # the tested window rows
    texts: Sequence[str] | None
    positions: IntArray  # row of each tested window row in the caller's window
    window_labels: IntArray
    window_distances: FloatArray
    reference_counts: IntArray  # leave-one-out intent counts of the reference
    distance_threshold: float
    reference_far_share: float
    reference_mean: FloatArray
    # The outcome of this detector on this window.
    score: float
    p_value: float
    null: FloatArray  # the statistic over the re-splits
    drifted: bool
    # A combined statistic's parts at the real split, each in standard deviations of its own
    # permutation distribution (``WindowDetector.statistics_and_parts``); empty for one statistic.
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.window_labels)


class WindowDetector(ABC):
    """One statistic of a window against the baseline; registered by :func:`register`.

    ``title`` names the test in plain words (it is what the drift page, the API and Slack show
    as "the test that fired"); ``votes`` says whether the statistic takes part in the combined
    verdict (the others are computed on the same permutations but only explain it).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    votes: ClassVar[bool] = True

    @abstractmethod
    def statistics(self, sample: PermutationSample) -> FloatArray:
        """The statistic of every split, shape (B + 1,): row 0 is the real window."""

    def statistics_and_parts(
        self, sample: PermutationSample
    ) -> tuple[FloatArray, dict[str, float]]:
        """:meth:`statistics`, and for a combined statistic its parts at the real split (for
        :attr:`ExplainContext.parts`), computed together so nothing is computed twice."""
        return self.statistics(sample), {}

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        """One or two sentences about what this statistic saw, and JSON-able details."""
        ratio = _ratio_to_typical(context.score, context.null)
        return (
            f"{self.title.capitalize()}: {ratio:.1f}x its typical no-drift value "
            f"(p = {context.p_value:.3g}).",
            {"ratio_to_null_median": ratio},
        )


def _ratio_to_typical(score: float, null: FloatArray) -> float:
    typical = float(np.median(null)) if null.size else 0.0
    return score / typical if typical > 0 else float("inf")


_REGISTRY: dict[str, type[WindowDetector]] = {}
D = TypeVar("D", bound=type[WindowDetector])


def register(cls: D) -> D:
    """Class decorator adding a window detector to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def get_detector(name: str) -> WindowDetector:
    """The registry is the only way to find a detector (plug-ins register themselves)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown detector {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]()


def registered() -> list[str]:
    return sorted(_REGISTRY)


def permutation_p_values(statistics: FloatArray) -> FloatArray:
    """For every split, the share of splits (itself and the real one included) scoring at
    least as high: row 0 is the real window's exact p-value ``(1 + #{b: T_b >= T_0}) / (B+1)``.
    """
    ordered = np.sort(statistics)
    below = np.searchsorted(ordered, statistics, side="left")
    return np.asarray((len(statistics) - below) / len(statistics), dtype=np.float64)


def empirical_p_value(score: float, null_scores: FloatArray) -> float:
    """``(1 + #{null >= score}) / (B + 1)``: a valid p-value from B null draws."""
    exceed = int(np.count_nonzero(null_scores >= score))
    return (1 + exceed) / (null_scores.size + 1)


Formatter = Callable[[float], str]


def pct(share: float) -> str:
    return f"{100.0 * share:.1f}%"
