"""Per-call out-of-domain score: mean distance to the k nearest reference vectors.

Kept on plain arrays so the database version can swap the brute-force search for pgvector's
k-NN (``ORDER BY embedding <-> %s LIMIT k``) and reuse :func:`flag_out_of_domain` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .base import FloatArray

_CHUNK = 1024


def knn_distances(
    reference: npt.ArrayLike, queries: npt.ArrayLike, *, k: int, exclude_self: bool = False
) -> FloatArray:
    """Mean Euclidean distance from each query to its ``k`` nearest reference rows.

    With ``exclude_self`` the queries are the reference itself and each row's own match is
    skipped (leave-one-out), which is how the threshold is calibrated.
    """
    ref = np.asarray(reference, dtype=np.float32)
    query = np.asarray(queries, dtype=np.float32)
    k = min(k, len(ref) - int(exclude_self))
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    out = np.empty(len(query), dtype=np.float64)
    for start in range(0, len(query), _CHUNK):
        block = query[start : start + _CHUNK]
        sq = (np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * block @ ref.T + ref_sq).astype(
            np.float64
        )
        if exclude_self:
            rows = np.arange(len(block))
            sq[rows, start + rows] = np.inf
        nearest = np.partition(sq, k - 1, axis=1)[:, :k]
        out[start : start + len(block)] = np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)
    return out


def calibrate_ood_threshold(
    reference: npt.ArrayLike,
    *,
    k: int = 10,
    false_alarm_rate: float = 0.01,
    sample: int = 2000,
    seed: int = 0,
) -> float:
    """The k-NN distance that only ``false_alarm_rate`` of in-domain calls exceed.

    Estimated leave-one-out on up to ``sample`` reference rows against the whole reference.
    """
    vectors = np.asarray(reference, dtype=np.float32)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(vectors))
    if len(rows) > sample:
        rows = np.sort(rng.choice(len(rows), sample, replace=False))
    # Move the sampled rows to the front so exclude_self lines up with their positions.
    order = np.concatenate([rows, np.setdiff1d(np.arange(len(vectors)), rows)])
    distances = knn_distances(vectors[order], vectors[rows], k=k, exclude_self=True)
    return float(np.quantile(distances, 1.0 - false_alarm_rate))


@dataclass(frozen=True)
class OutOfDomainResult:
    """``scores``: k-NN distance per query; ``flagged``: above ``threshold``."""

    scores: FloatArray
    flagged: np.ndarray
    threshold: float

    @property
    def flagged_share(self) -> float:
        return float(self.flagged.mean()) if self.flagged.size else 0.0


def flag_out_of_domain(scores: FloatArray, *, threshold: float) -> OutOfDomainResult:
    scores = np.asarray(scores, dtype=np.float64)
    return OutOfDomainResult(scores=scores, flagged=scores > threshold, threshold=threshold)


def ood_scores(
    reference: npt.ArrayLike, queries: npt.ArrayLike, *, threshold: float, k: int = 10
) -> OutOfDomainResult:
    """Out-of-domain scores of ``queries`` against ``reference`` with a calibrated threshold."""
    return flag_out_of_domain(knn_distances(reference, queries, k=k), threshold=threshold)
