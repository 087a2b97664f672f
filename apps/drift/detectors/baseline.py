"""A baseline of "normal" traffic and the combined window test against it.

``Baseline.fit(reference)`` keeps a reference sample of embeddings, fits intent clusters with
readable labels, and calibrates. ``baseline.test(window)`` runs every registered window detector
and combines them.

Calibration (why the false-alarm rate holds): for a window of n calls, ``n_calibration`` windows
of n are drawn without replacement from the reference, and each is compared with the *rest* of
the reference (reference minus that window), exactly as a fresh window is compared with the
whole reference. Under no drift a fresh window and the reference are exchangeable, so these
draws follow the statistic's no-drift distribution (a permutation test). Reference distances
to centroids are leave-one-out, so they behave like fresh calls too.

Multiple testing: the detectors are combined by the single-step min-p method of Westfall and
Young: each detector's p-value comes from its calibration distribution, and the smallest is
compared with the distribution of the smallest p-value over the same calibration windows.
The combined false-alarm rate is the configured one, and the correlation between detectors
is used rather than paid for (Bonferroni would be conservative).

Calibrations are computed per window size on first use and kept in the state, so a stored
baseline tests windows of a size it has seen without recomputing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .base import (
    DetectionResult,
    FloatArray,
    IntArray,
    WindowStats,
    empirical_p_value,
    get_detector,
    pct,
)
from .intents import IntentModel, ctfidf_terms, fit_intents, group_points, term_counts
from .ood import calibrate_ood_threshold
from .serialization import decode_array, encode_array
from .windowed import chi_square_log_p

STATE_VERSION = 1
DEFAULT_DETECTORS: tuple[str, ...] = ("mean_shift", "intent_share", "new_intent")
# Windows smaller than this are not tested: no statistic here means much below it.
MIN_WINDOW = 20
# At most this many window sizes keep their calibration in the state.
MAX_CALIBRATIONS = 16


@dataclass
class BaselineTestResult:
    """The combined verdict on one window, and each detector's own result."""

    drifted: bool
    score: float
    p_value: float
    threshold: float
    false_alarm_rate: float
    window_size: int
    summary: str
    results: dict[str, DetectionResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "score": self.score,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "false_alarm_rate": self.false_alarm_rate,
            "window_size": self.window_size,
            "summary": self.summary,
            "results": {name: result.to_dict() for name, result in self.results.items()},
        }


@dataclass
class Calibration:
    """No-drift statistics of ``B`` resampled windows of one size, one column per detector."""

    null: FloatArray  # (B, J)
    min_p: FloatArray  # (B,)

    @property
    def size(self) -> int:
        return int(self.null.shape[0])


def _self_inclusive_p(null: FloatArray) -> FloatArray:
    """For each calibration draw, the share of draws (itself included) scoring at least as high."""
    out = np.empty_like(null, dtype=np.float64)
    count = null.shape[0]
    for j in range(null.shape[1]):
        column = np.sort(null[:, j])
        below = np.searchsorted(column, null[:, j], side="left")
        out[:, j] = (count - below) / count
    return out


class Baseline:
    """A fitted baseline. Build it with :meth:`fit` or :meth:`from_state`."""

    def __init__(
        self,
        *,
        reference: npt.NDArray[np.float32],
        intents: IntentModel,
        members: IntArray,
        terms: Counter[str],
        false_alarm_rate: float,
        distance_quantile: float,
        n_calibration: int,
        detectors: Sequence[str],
        ood_neighbours: int,
        ood_threshold: float,
        seed: int,
        key: str = "",
        calibrations: dict[int, Calibration] | None = None,
    ) -> None:
        if not 0 < false_alarm_rate < 0.5:
            raise ValueError("false_alarm_rate must be in (0, 0.5)")
        self.reference = np.asarray(reference, dtype=np.float32)
        self.intents = intents
        self.members = members
        self.terms = terms
        self.false_alarm_rate = float(false_alarm_rate)
        self.distance_quantile = float(distance_quantile)
        self.n_calibration = int(n_calibration)
        self.detectors = tuple(detectors)
        self.ood_neighbours = int(ood_neighbours)
        self.ood_threshold = float(ood_threshold)
        self.seed = int(seed)
        self.key = key
        self.calibrations: dict[int, Calibration] = dict(calibrations or {})
        for name in self.detectors:
            get_detector(name)  # fail early on an unknown name
        # Derived, never stored: leave-one-out assignment and distances of the reference.
        reference64 = self.reference.astype(np.float64)
        self._reference64 = reference64
        self._labels, self._distances = intents.assign_leave_one_out(reference64, members)
        self._counts = np.bincount(self._labels, minlength=intents.k).astype(np.int64)
        self._sum = reference64.sum(axis=0)
        self._tau = float(np.quantile(self._distances, distance_quantile))
        self._far_share = float(np.mean(self._distances > self._tau))
        # Squared radius of a typical cluster (= its mean pairwise cosine distance for unit
        # rows): how tight a group must be to count as one. New calls are grouped from the
        # outskirts of their intent, so 1.2x this; on SNIPS 1.0x split real intents into
        # specks and 1.4x merged them with stray calls of known intents.
        self._group_radius = 1.2 * float(np.mean(self._distances**2))

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        reference: npt.ArrayLike,
        *,
        false_alarm_rate: float = 0.01,
        texts: Sequence[str] | None = None,
        k: int | None = None,
        k_range: tuple[int, int] = (2, 20),
        max_reference: int = 5000,
        distance_quantile: float = 0.95,
        n_calibration: int = 1000,
        detectors: Sequence[str] = DEFAULT_DETECTORS,
        ood_neighbours: int = 10,
        ood_false_alarm_rate: float = 0.01,
        cluster_sample: int = 2000,
        seed: int = 0,
        key: str = "",
    ) -> Baseline:
        """Fit a baseline on ``reference`` (n, d): rows should be L2-normalised embeddings.

        ``texts`` (same length) only feed the cluster labels. ``k`` fixes the number of intent
        clusters; by default it is chosen by silhouette over ``k_range`` on ``cluster_sample``
        rows. At most ``max_reference`` rows are kept (a uniform subsample); ``key`` records the
        embedding space (``provider.key``) so that vectors of another model are refused.
        """
        vectors = np.asarray(reference, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) < 4 * MIN_WINDOW:
            raise ValueError(f"reference must be (n, d) with n >= {4 * MIN_WINDOW}")
        if texts is not None and len(texts) != len(vectors):
            raise ValueError("texts and reference differ in length")
        rng = np.random.default_rng(seed)
        # The state stores float16; round now so a reloaded baseline is the same baseline.
        vectors = vectors.astype(np.float16).astype(np.float32)
        if len(vectors) > max_reference:
            keep = np.sort(rng.choice(len(vectors), max_reference, replace=False))
            vectors = vectors[keep]
            texts = [texts[i] for i in keep] if texts is not None else None
        intents, members, terms = fit_intents(
            vectors.astype(np.float64),
            texts=texts,
            k=k,
            k_range=k_range,
            sample=cluster_sample,
            rng=rng,
        )
        ood_threshold = calibrate_ood_threshold(
            vectors, k=ood_neighbours, false_alarm_rate=ood_false_alarm_rate, seed=seed
        )
        return cls(
            reference=vectors,
            intents=intents,
            members=members,
            # Keep the most frequent terms only: they label new groups against the baseline.
            terms=Counter(dict(terms.most_common(5000))),
            false_alarm_rate=false_alarm_rate,
            distance_quantile=distance_quantile,
            n_calibration=n_calibration,
            detectors=detectors,
            ood_neighbours=ood_neighbours,
            ood_threshold=ood_threshold,
            seed=seed,
            key=key,
        )

    @property
    def size(self) -> int:
        return len(self.reference)

    @property
    def max_window(self) -> int:
        """Larger windows are subsampled: the calibration needs a rest as large as the window."""
        return self.size // 2

    @property
    def shares(self) -> FloatArray:
        """Reference share of each intent cluster (leave-one-out assignment)."""
        return np.asarray(self._counts / self._counts.sum(), dtype=np.float64)

    # --- calibration ------------------------------------------------------------------------

    def _stats(
        self,
        *,
        window_mean: FloatArray,
        window_labels: IntArray,
        window_distances: FloatArray,
        exclude: IntArray | None,
    ) -> WindowStats:
        n = len(window_labels)
        window_counts = np.bincount(window_labels, minlength=self.intents.k).astype(np.int64)
        if exclude is None:
            return WindowStats(
                n=n,
                m=self.size,
                window_mean=window_mean,
                rest_mean=self._sum / self.size,
                window_counts=window_counts,
                rest_counts=self._counts,
                window_distances=window_distances,
                distance_threshold=self._tau,
                rest_far_share=self._far_share,
            )
        m = self.size - n
        mask = np.ones(self.size, dtype=bool)
        mask[exclude] = False
        rest_distances = self._distances[mask]
        tau = float(np.quantile(rest_distances, self.distance_quantile))
        return WindowStats(
            n=n,
            m=m,
            window_mean=window_mean,
            rest_mean=(self._sum - window_mean * n) / m,
            window_counts=window_counts,
            rest_counts=self._counts - window_counts,
            window_distances=window_distances,
            distance_threshold=tau,
            rest_far_share=float(np.mean(rest_distances > tau)),
        )

    def calibration(self, n: int) -> Calibration:
        """The calibration for windows of ``n`` calls (computed once, then kept)."""
        if n in self.calibrations:
            return self.calibrations[n]
        detectors = [get_detector(name) for name in self.detectors]
        rng = np.random.default_rng([self.seed, n])
        null = np.empty((self.n_calibration, len(detectors)), dtype=np.float64)
        for b in range(self.n_calibration):
            rows = rng.choice(self.size, n, replace=False)
            stats = self._stats(
                window_mean=self._reference64[rows].mean(axis=0),
                window_labels=self._labels[rows],
                window_distances=self._distances[rows],
                exclude=rows,
            )
            null[b] = [detector.statistic(stats) for detector in detectors]
        calibration = Calibration(null=null, min_p=_self_inclusive_p(null).min(axis=1))
        if len(self.calibrations) >= MAX_CALIBRATIONS:
            self.calibrations.pop(next(iter(self.calibrations)))
        self.calibrations[n] = calibration
        return calibration

    def critical_p(self, calibration: Calibration) -> float:
        """Largest per-detector p-value that still keeps the combined rate at the target."""
        ordered = np.sort(calibration.min_p)
        # combined p of a window whose smallest p equals ordered[i] is (1 + i + ties) / (B + 1)
        ranks = np.searchsorted(ordered, ordered, side="right")
        allowed = ordered[(1 + ranks) / (calibration.size + 1) <= self.false_alarm_rate]
        return float(allowed.max()) if allowed.size else 0.0

    # --- testing ----------------------------------------------------------------------------

    def test(
        self,
        window: npt.ArrayLike,
        *,
        texts: Sequence[str] | None = None,
    ) -> BaselineTestResult:
        """Test a window of embeddings (n, d) against the baseline.

        ``texts`` (same length, optional) label new groups of calls. Windows above
        :attr:`max_window` are tested on a uniform subsample of that size.
        """
        vectors = np.asarray(window, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.reference.shape[1]:
            raise ValueError(f"window must be (n, {self.reference.shape[1]}), got {vectors.shape}")
        if texts is not None and len(texts) != len(vectors):
            raise ValueError("texts and window differ in length")
        positions = np.arange(len(vectors))
        if len(vectors) > self.max_window:
            rng = np.random.default_rng([self.seed, len(vectors), 1])
            positions = np.sort(rng.choice(len(vectors), self.max_window, replace=False))
            vectors = vectors[positions]
        n = len(vectors)
        if n < MIN_WINDOW:
            return BaselineTestResult(
                drifted=False,
                score=0.0,
                p_value=1.0,
                threshold=self.false_alarm_rate,
                false_alarm_rate=self.false_alarm_rate,
                window_size=n,
                summary=f"Not tested: {n} calls in the window, at least {MIN_WINDOW} needed.",
            )
        labels, distances = self.intents.assign(vectors)
        stats = self._stats(
            window_mean=vectors.mean(axis=0),
            window_labels=labels,
            window_distances=distances,
            exclude=None,
        )
        calibration = self.calibration(n)
        critical = self.critical_p(calibration)
        scores = [get_detector(name).statistic(stats) for name in self.detectors]
        p_values = [
            empirical_p_value(score, calibration.null[:, j]) for j, score in enumerate(scores)
        ]
        smallest = min(p_values)
        combined = (1 + int(np.count_nonzero(calibration.min_p <= smallest))) / (
            calibration.size + 1
        )
        combined_drifted = combined <= self.false_alarm_rate
        results: dict[str, DetectionResult] = {}
        for j, name in enumerate(self.detectors):
            score, p_value, null = scores[j], p_values[j], calibration.null[:, j]
            threshold = float(np.quantile(null, 1.0 - critical)) if critical > 0 else np.inf
            # A detector fires when its p-value is below the min-p critical level; the one
            # that carried the combined verdict always does (the two rules only differ when
            # the calibration is too small to resolve the level).
            drifted = p_value <= critical or (combined_drifted and p_value == smallest)
            summary, details = self._explain(
                name,
                stats=stats,
                vectors=vectors,
                texts=texts,
                positions=positions,
                drifted=drifted,
                null=null,
                score=score,
            )
            details["critical_p"] = critical
            results[name] = DetectionResult(
                detector=name,
                drifted=drifted,
                score=float(score),
                threshold=threshold,
                p_value=p_value,
                summary=summary,
                details=details,
            )
        return BaselineTestResult(
            drifted=combined_drifted,
            # Higher means more drift; -log10 of the combined p-value.
            score=float(-np.log10(combined)),
            p_value=combined,
            threshold=self.false_alarm_rate,
            false_alarm_rate=self.false_alarm_rate,
            window_size=n,
            summary=self._summary(combined_drifted, combined, n, results),
            results=results,
        )

    # --- explanations -----------------------------------------------------------------------

    def _summary(
        self, drifted: bool, p_value: float, n: int, results: dict[str, DetectionResult]
    ) -> str:
        floor = 1.0 / (self.n_calibration + 1)
        p_text = f"p < {floor:.3g}" if p_value <= floor * 1.0001 else f"p = {p_value:.3g}"
        head = (
            f"Drift detected in {n} calls ({p_text}; false-alarm rate {pct(self.false_alarm_rate)})"
            if drifted
            else f"No drift in {n} calls ({p_text}; false-alarm rate {pct(self.false_alarm_rate)})"
        )
        parts = [r.summary for r in results.values() if r.drifted]
        return head + (": " + " ".join(parts) if parts else ".")

    def _explain(
        self,
        name: str,
        *,
        stats: WindowStats,
        vectors: FloatArray,
        texts: Sequence[str] | None,
        positions: IntArray,
        drifted: bool,
        null: FloatArray,
        score: float,
    ) -> tuple[str, dict[str, Any]]:
        if name == "mean_shift":
            return self._explain_mean(stats, null, score)
        if name == "intent_share":
            return self._explain_shares(stats)
        if name == "new_intent":
            return self._explain_new(stats, vectors, texts, positions, drifted)
        return f"{name}: statistic {score:.3g}.", {}

    def _explain_mean(
        self, stats: WindowStats, null: FloatArray, score: float
    ) -> tuple[str, dict[str, Any]]:
        distance = float(np.linalg.norm(stats.window_mean - stats.rest_mean))
        typical = float(np.median(null))
        ratio = score / typical if typical > 0 else float("inf")
        summary = (
            f"The mean embedding moved by {distance:.3f} ({ratio:.1f}x the typical "
            "no-drift movement for this window size)."
        )
        return summary, {"centroid_distance": distance, "ratio_to_null_median": ratio}

    def _explain_shares(self, stats: WindowStats) -> tuple[str, dict[str, Any]]:
        from scipy import stats as scipy_stats

        n, m = stats.n, stats.m
        window_share = stats.window_counts / n
        rest_share = stats.rest_counts / m
        pooled = (stats.window_counts + stats.rest_counts) / (n + m)
        se = np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / n + 1 / m), 1e-12))
        z = (window_share - rest_share) / se
        # Bonferroni over clusters: only name those that moved beyond chance on their own.
        adjusted = np.minimum(2 * scipy_stats.norm.sf(np.abs(z)) * len(z), 1.0)
        _, chi2, dof = chi_square_log_p(stats.window_counts, stats.rest_counts, n)
        clusters: list[dict[str, Any]] = [
            {
                "cluster": c,
                "label": self.intents.labels[c],
                "baseline_share": float(rest_share[c]),
                "window_share": float(window_share[c]),
                "z": float(z[c]),
                "p_adjusted": float(adjusted[c]),
            }
            for c in range(self.intents.k)
        ]
        moved = [c for c in clusters if c["p_adjusted"] <= self.false_alarm_rate]
        moved.sort(key=lambda c: -abs(c["window_share"] - c["baseline_share"]))
        grew = [c for c in moved if c["z"] > 0][:3]
        shrank = [c for c in moved if c["z"] < 0][:3]

        def describe(c: dict[str, Any]) -> str:
            return f"'{c['label']}' {pct(c['baseline_share'])} -> {pct(c['window_share'])}"

        pieces = []
        if grew:
            pieces.append("grew: " + ", ".join(describe(c) for c in grew))
        if shrank:
            pieces.append("shrank: " + ", ".join(describe(c) for c in shrank))
        summary = (
            "Intent mix changed (" + "; ".join(pieces) + ")."
            if pieces
            else f"Intent shares differ from the baseline (chi-square {chi2:.1f}, {dof} dof)."
        )
        details = {
            "chi2": chi2,
            "dof": dof,
            "clusters": clusters,
            "grew": [c["cluster"] for c in grew],
            "shrank": [c["cluster"] for c in shrank],
        }
        return summary, details

    def _explain_new(
        self,
        stats: WindowStats,
        vectors: FloatArray,
        texts: Sequence[str] | None,
        positions: IntArray,
        drifted: bool,
    ) -> tuple[str, dict[str, Any]]:
        far = np.flatnonzero(stats.window_distances > stats.distance_threshold)
        share = len(far) / stats.n
        groups: list[dict[str, Any]] = []
        if drifted and len(far) >= 3:
            min_size = max(3, int(np.ceil(0.01 * stats.n)))
            for members in group_points(
                vectors[far], distance_threshold=self._group_radius, min_size=min_size
            ):
                rows = far[members]
                centre = vectors[rows].mean(axis=0)
                closest = rows[np.argsort(np.linalg.norm(vectors[rows] - centre, axis=1))]
                nearest, _ = self.intents.assign(centre[None, :])
                group: dict[str, Any] = {
                    "size": len(rows),
                    "share": len(rows) / stats.n,
                    "examples": [int(positions[i]) for i in closest[:5]],
                    "nearest_baseline_cluster": int(nearest[0]),
                    "label": None,
                }
                if texts is not None:
                    counts = term_counts([texts[int(positions[i])] for i in rows])
                    terms = ctfidf_terms(counts, self.terms + counts, n_classes=self.intents.k + 1)
                    group["label"] = " / ".join(terms) if terms else None
                    group["example_texts"] = [texts[int(positions[i])] for i in closest[:3]]
                groups.append(group)
        summary = (
            f"{pct(share)} of calls are poorly served by every baseline intent "
            f"(baseline {pct(stats.rest_far_share)})"
        )
        if groups:
            named = [
                f"'{g['label'] or 'group ' + str(i + 1)}' ({g['size']} calls)"
                for i, g in enumerate(groups[:3])
            ]
            summary += f"; new group{'s' if len(groups) > 1 else ''}: " + ", ".join(named)
        summary += "."
        details = {
            "far_share": share,
            "baseline_far_share": stats.rest_far_share,
            "distance_threshold": stats.distance_threshold,
            "groups": groups,
        }
        return summary, details

    # --- state --------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-able dict (arrays base64-encoded, see :mod:`.serialization`).

        The reference is stored as float16 (about 0.8 KB per row at d=384): the statistics
        only need three significant digits, and the state of a 5,000-row baseline stays near
        5 MB. Calibrations computed so far are kept.
        """
        return {
            "version": STATE_VERSION,
            "key": self.key,
            "reference": encode_array(self.reference.astype(np.float16)),
            "members": encode_array(self.members.astype(np.int32)),
            "centroids": encode_array(self.intents.centroids),
            "sizes": self.intents.sizes.tolist(),
            "labels": list(self.intents.labels),
            # NaN is not JSON (PostgreSQL's jsonb refuses it).
            "silhouette": None if np.isnan(self.intents.silhouette) else self.intents.silhouette,
            "terms": dict(self.terms),
            "false_alarm_rate": self.false_alarm_rate,
            "distance_quantile": self.distance_quantile,
            "n_calibration": self.n_calibration,
            "detectors": list(self.detectors),
            "ood_neighbours": self.ood_neighbours,
            "ood_threshold": self.ood_threshold,
            "seed": self.seed,
            "calibrations": {
                str(n): {"null": encode_array(c.null), "min_p": encode_array(c.min_p)}
                for n, c in self.calibrations.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Baseline:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported baseline state version {state.get('version')!r}")
        silhouette = state.get("silhouette")
        intents = IntentModel(
            centroids=decode_array(state["centroids"]).astype(np.float64),
            sizes=np.asarray(state["sizes"], dtype=np.int64),
            labels=[str(label) for label in state["labels"]],
            silhouette=float("nan") if silhouette is None else float(silhouette),
        )
        calibrations = {
            int(n): Calibration(
                null=decode_array(c["null"]).astype(np.float64),
                min_p=decode_array(c["min_p"]).astype(np.float64),
            )
            for n, c in state.get("calibrations", {}).items()
        }
        return cls(
            reference=decode_array(state["reference"]).astype(np.float32),
            intents=intents,
            members=decode_array(state["members"]).astype(np.int64),
            terms=Counter({str(t): int(c) for t, c in state["terms"].items()}),
            false_alarm_rate=float(state["false_alarm_rate"]),
            distance_quantile=float(state["distance_quantile"]),
            n_calibration=int(state["n_calibration"]),
            detectors=[str(name) for name in state["detectors"]],
            ood_neighbours=int(state["ood_neighbours"]),
            ood_threshold=float(state["ood_threshold"]),
            seed=int(state["seed"]),
            key=str(state.get("key", "")),
            calibrations=calibrations,
        )
