"""Drift evidence benchmark on real SNIPS intents embedded with the real model.

    .venv/bin/python bench/drift/run.py [--quick]      (or: -m bench.drift.run)

For each fold one SNIPS intent is held out as "the new intent"; a baseline is fitted on 4,000
calls of the other six. Windows are drawn from held-out calls of the six known intents:

* no shift                   -> false-alarm rate (target: within 1.5x of the configured 1%);
* intent-mix shift           -> 10% of the window replaced by one known intent (and whether
                                that intent is the one named as grown);
* new intent at 5/10/20%     -> power (target: >= 0.8 at 10% with windows of 500);

for windows of 200/500/1000, side by side with Evidently's embedding-drift methods (its default
classifier method, and MMD in bootstrap mode with quantile 0.95). The streaming part compares
MEWMA (ARL0 = 5,000 events) with an Evidently-like sliding-window mean distance whose threshold
is calibrated, on held-out no-drift data, to the same run length; it reports the measured
in-control run length of both and the median delay after a 10% new intent appears.

Results are printed as tables and written to bench/results/drift.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Runnable as ``python bench/drift/run.py`` as well as ``python -m bench.drift.run``.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.drift.detectors import Baseline, MewmaDetector
from apps.drift.detectors.streaming import arl_estimate, run_lengths
from bench.drift.data import REPO, snips_vectors

ALPHA = 0.01
ARL0 = 5000
REFERENCE_SIZE = 4000
WINDOWS = (200, 500, 1000)
NEW_SHARES = (0.05, 0.10, 0.20)
MIX_SHARE = 0.10
SLIDING_WINDOWS = (100, 200, 500, 1000)
STREAM_NEW_SHARE = 0.10
# A change not detected within this many events counts as a delay of MAX_DELAY.
MAX_DELAY = 5000
# Evidently's MMD builds an (m + n)^2 kernel and bootstraps it 100 times: it gets a reference
# subsample of this size so the benchmark finishes on 2 shared cores.
EVIDENTLY_MMD_REFERENCE = 1000


def progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, **kwargs)


# --- Evidently ------------------------------------------------------------------------------


def evidently_methods() -> dict[str, Any]:
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import mmd, model

    return {
        "evidently_classifier": model(),  # its default: ROC AUC > 0.55
        "evidently_mmd_q95": mmd(bootstrap=True, quantile_probability=0.95),
    }


def evidently_drifted(method: Any, name: str, reference: np.ndarray, window: np.ndarray) -> bool:
    import pandas as pd

    if name == "evidently_mmd_q95":
        rng = np.random.default_rng(0)
        reference = reference[rng.choice(len(reference), EVIDENTLY_MMD_REFERENCE, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, drifted, _ = method(pd.DataFrame(window.copy()), pd.DataFrame(reference.copy()))
    return bool(drifted)


# --- streaming helpers ------------------------------------------------------------------------


def changed_rows(
    rng: np.random.Generator, test_pool: np.ndarray, new_rows: np.ndarray, count: int
) -> np.ndarray:
    """Rows of drifted traffic: each call is from the new intent with probability 10%."""
    extra = rng.random(count) < STREAM_NEW_SHARE
    return np.where(extra, rng.choice(new_rows, count), rng.choice(test_pool, count))


def sliding_paths(stream: np.ndarray, reference_mean: np.ndarray, window: int) -> np.ndarray:
    """Euclidean distance between the mean of the last ``window`` events and the reference
    mean, at every event (NaN before the window fills): Evidently's "distance" method slid."""
    cumulative = np.vstack([np.zeros(stream.shape[1]), np.cumsum(stream, axis=0)])
    out = np.full(len(stream), np.nan)
    means = (cumulative[window:] - cumulative[:-window]) / window
    out[window - 1 :] = np.linalg.norm(means - reference_mean, axis=1)
    return out


def calibrate_sliding(
    pool: np.ndarray, reference_mean: np.ndarray, window: int, rng: np.random.Generator, n: int
) -> float:
    """Threshold with an in-control run length of ARL0 on streams drawn from held-out data."""
    horizon = 2 * ARL0
    paths = np.empty((n, horizon), dtype=np.float32)
    for s in range(n):
        stream = pool[rng.integers(0, len(pool), horizon)]
        path = np.nan_to_num(sliding_paths(stream, reference_mean, window), nan=0.0)
        paths[s] = np.maximum.accumulate(path)
    low, high = 0.0, float(paths.max()) * 2 + 1
    for _ in range(50):
        middle = (low + high) / 2
        if arl_estimate(run_lengths(paths, middle), horizon) < ARL0:
            low = middle
        else:
            high = middle
    return high


def first_alarm_sliding(path: np.ndarray, threshold: float, start: int) -> int | None:
    hits = np.flatnonzero(np.nan_to_num(path[start:], nan=0.0) > threshold)
    return int(hits[0]) + start if hits.size else None


# --- the benchmark ----------------------------------------------------------------------------


def window_for(
    scenario: str,
    n: int,
    r: int,
    *,
    rng: np.random.Generator,
    test_pool: np.ndarray,
    by_intent: dict[str, np.ndarray],
    known_names: list[str],
    new_rows: np.ndarray,
    held_out: str,
) -> tuple[np.ndarray, str]:
    """Row indices of one window and the intent that grew or appeared in it."""
    if scenario == "no_shift":
        rows = rng.choice(test_pool, n, replace=False)
        return rows, ""
    if scenario == "mix_shift":
        grown = known_names[r % len(known_names)]
        extra = round(MIX_SHARE * n)
        rows = np.concatenate(
            [
                rng.choice(test_pool, n - extra, replace=False),
                rng.choice(by_intent[grown], extra, replace=False),
            ]
        )
        return rows, grown
    share = float(scenario.split("_")[1]) / 100
    extra = round(share * n)
    rows = np.concatenate(
        [
            rng.choice(test_pool, n - extra, replace=False),
            rng.choice(new_rows, extra, replace=False),
        ]
    )
    return rows, held_out


def run(quick: bool) -> dict[str, Any]:
    vectors, texts, intents = snips_vectors()
    intents_arr = np.asarray(intents)
    names = sorted(set(intents))
    folds = names[:3] if quick else names
    reps = 60 if quick else 250  # windows per (fold, size, scenario) for Driftline
    reps_shift = 30 if quick else 100
    ev_reps = 4 if quick else 10  # Evidently is far slower per window
    delay_reps = 20 if quick else 50
    null_streams = 4 if quick else 8
    evidently = evidently_methods()

    counts: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    named: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    group_found: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    timings: dict[str, list[float]] = defaultdict(list)
    streaming: dict[str, Any] = defaultdict(lambda: {"delays": [], "alarms": 0, "events": 0})
    fold_info = []
    master = np.random.default_rng(2026)

    for held_out in progress(folds, desc="folds"):
        rng = np.random.default_rng(master.integers(1 << 31))
        known = np.flatnonzero(intents_arr != held_out)
        new_rows = np.flatnonzero(intents_arr == held_out)
        known = known[rng.permutation(len(known))]
        ref_rows = known[:REFERENCE_SIZE]
        rest = known[REFERENCE_SIZE:]
        cal_pool, test_pool = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        # No-drift streams come from every held-out known call: a small pool's own mean error
        # would count as drift for slow detectors.
        null_pool = rest
        by_intent = {name: test_pool[intents_arr[test_pool] == name] for name in names}
        reference = vectors[ref_rows]
        started = time.perf_counter()
        baseline = Baseline.fit(
            reference, false_alarm_rate=ALPHA, texts=[texts[i] for i in ref_rows], seed=1
        )
        timings["baseline_fit_s"].append(time.perf_counter() - started)
        # Which true intent dominates each cluster (to check the named intent).
        majority = []
        for c in range(baseline.intents.k):
            members = intents_arr[ref_rows][baseline.members == c]
            values, freq = np.unique(members, return_counts=True)
            majority.append(str(values[np.argmax(freq)]))
        fold_info.append(
            {
                "held_out": held_out,
                "k": baseline.intents.k,
                "labels": baseline.intents.labels,
                "majority_intent": majority,
            }
        )
        known_names = [name for name in names if name != held_out]

        scenarios = ["no_shift", "mix_shift"] + [f"new_{round(s * 100)}" for s in NEW_SHARES]
        for n in WINDOWS:
            started = time.perf_counter()
            baseline.calibration(n)
            timings[f"calibration_s_n{n}"].append(time.perf_counter() - started)
            for scenario in scenarios:
                total = reps if scenario == "no_shift" else reps_shift
                for r in range(total):
                    rows, target = window_for(
                        scenario,
                        n,
                        r,
                        rng=rng,
                        test_pool=test_pool,
                        by_intent=by_intent,
                        known_names=known_names,
                        new_rows=new_rows,
                        held_out=held_out,
                    )
                    window = vectors[rows]
                    window_texts = [texts[i] for i in rows]
                    started = time.perf_counter()
                    result = baseline.test(window, texts=window_texts)
                    timings["test_ms"].append(1000 * (time.perf_counter() - started))
                    cell = counts[("driftline", scenario, n)]
                    cell[0] += int(result.drifted)
                    cell[1] += 1
                    # The combined p-value is valid at any level: the same windows at 5%, the
                    # level of Evidently's MMD with quantile 0.95.
                    cell = counts[("driftline@5%", scenario, n)]
                    cell[0] += int(result.p_value <= 0.05)
                    cell[1] += 1
                    for name, detail in result.results.items():
                        sub = counts[(f"driftline:{name}", scenario, n)]
                        sub[0] += int(detail.drifted)
                        sub[1] += 1
                    if scenario == "mix_shift" and result.drifted:
                        grew = result.results["intent_share"].details.get("grew", [])
                        hit = any(majority[c] == target for c in grew)
                        named[n][0] += int(hit)
                        named[n][1] += 1
                    if scenario.startswith("new_") and result.results["new_intent"].drifted:
                        groups = result.results["new_intent"].details["groups"]
                        hit = any(
                            np.mean(intents_arr[rows[g["examples"]]] == target) > 0.5
                            for g in groups
                        )
                        group_found[(scenario, n)][0] += int(hit)
                        group_found[(scenario, n)][1] += 1
                    if r < ev_reps:
                        for name, method in evidently.items():
                            started = time.perf_counter()
                            drifted = evidently_drifted(method, name, reference, window)
                            timings[f"{name}_ms"].append(1000 * (time.perf_counter() - started))
                            cell = counts[(name, scenario, n)]
                            cell[0] += int(drifted)
                            cell[1] += 1

        # Streaming: MEWMA vs a sliding mean-distance window, both at ARL0 = 5,000 events.
        for lam in (0.005, 0.01, 0.02):
            started = time.perf_counter()
            mewma = MewmaDetector.fit(reference, arl0=ARL0, lam=lam, seed=1)
            timings[f"mewma_fit_s_lam{lam}"].append(time.perf_counter() - started)
            key = f"mewma_lam{lam}"
            for _ in range(null_streams):
                stream = vectors[rng.choice(null_pool, 4 * ARL0)]
                detector = MewmaDetector.from_state(mewma.to_state())
                update = detector.update(stream)
                streaming[key]["alarms"] += len(update.alarm_positions)
                streaming[key]["events"] += len(stream)
            for _ in range(delay_reps):
                detector = MewmaDetector.from_state(mewma.to_state())
                # The statistic reaches its steady state before the change.
                detector.update(vectors[rng.choice(test_pool, 500)])
                delay = None
                for chunk in range(0, MAX_DELAY, 500):
                    update = detector.update(vectors[changed_rows(rng, test_pool, new_rows, 500)])
                    if update.alarm:
                        delay = chunk + update.alarm_positions[0] + 1
                        break
                streaming[key]["delays"].append(delay if delay is not None else MAX_DELAY)
        reference_mean = reference.astype(np.float64).mean(axis=0)
        for window in SLIDING_WINDOWS:
            key = f"sliding_w{window}"
            threshold = calibrate_sliding(
                vectors[cal_pool], reference_mean, window, rng, 40 if quick else 100
            )
            for _ in range(null_streams):
                stream = vectors[rng.choice(null_pool, 4 * ARL0)]
                path = sliding_paths(stream, reference_mean, window)
                # After an alarm the window refills, so the next one can come a window later.
                start, alarms = window - 1, 0
                while (alarm_at := first_alarm_sliding(path, threshold, start)) is not None:
                    alarms += 1
                    start = alarm_at + window
                streaming[key]["alarms"] += alarms
                streaming[key]["events"] += len(stream)
            for _ in range(delay_reps):
                # The window is full of no-drift calls when the change starts.
                rows = np.concatenate(
                    [
                        rng.choice(test_pool, window),
                        changed_rows(rng, test_pool, new_rows, MAX_DELAY),
                    ]
                )
                path = sliding_paths(vectors[rows], reference_mean, window)
                first = first_alarm_sliding(path, threshold, window)
                streaming[key]["delays"].append(
                    (first - window + 1) if first is not None else MAX_DELAY
                )
    return summarise(counts, named, group_found, timings, streaming, fold_info, quick)


def summarise(
    counts: dict[tuple[str, str, int], list[int]],
    named: dict[int, list[int]],
    group_found: dict[tuple[str, int], list[int]],
    timings: dict[str, list[float]],
    streaming: dict[str, Any],
    fold_info: list[dict[str, Any]],
    quick: bool,
) -> dict[str, Any]:
    rates = {
        f"{method}|{scenario}|{n}": {"rate": hits / total, "windows": total}
        for (method, scenario, n), (hits, total) in counts.items()
    }
    stream_rows = {}
    for key, value in streaming.items():
        delays = np.asarray(value["delays"], dtype=np.float64)
        stream_rows[key] = {
            "measured_arl0": value["events"] / value["alarms"] if value["alarms"] else None,
            "null_events": value["events"],
            "null_alarms": value["alarms"],
            "median_delay": float(np.median(delays)) if delays.size else None,
            "p90_delay": float(np.quantile(delays, 0.9)) if delays.size else None,
            "runs": int(delays.size),
        }
    return {
        "quick": quick,
        "alpha": ALPHA,
        "arl0": ARL0,
        "reference_size": REFERENCE_SIZE,
        "rates": rates,
        "grown_intent_named": {str(n): h / t for n, (h, t) in named.items() if t},
        "new_group_found": {f"{s}|{n}": h / t for (s, n), (h, t) in group_found.items() if t},
        "timings": {key: float(np.median(values)) for key, values in timings.items()},
        "streaming": stream_rows,
        "folds": fold_info,
    }


def print_tables(results: dict[str, Any]) -> None:
    rates = results["rates"]
    methods = sorted({key.split("|")[0] for key in rates})
    scenarios = ["no_shift", "mix_shift", "new_5", "new_10", "new_20"]
    print(f"\nWindow tests (alpha = {results['alpha']}): share of windows flagged")
    header = f"{'method':34} {'n':>5} " + " ".join(f"{s:>10}" for s in scenarios) + "   windows"
    print(header)
    print("-" * len(header))
    for method in methods:
        for n in WINDOWS:
            cells = []
            windows = []
            for scenario in scenarios:
                entry = rates.get(f"{method}|{scenario}|{n}")
                cells.append(f"{entry['rate']:10.3f}" if entry else f"{'-':>10}")
                windows.append(str(entry["windows"]) if entry else "-")
            print(f"{method:34} {n:>5} " + " ".join(cells) + "   " + "/".join(windows))
    print(
        "\nGrown intent named correctly (share of detected mix shifts):",
        results["grown_intent_named"],
    )
    print("New group found (share of new-intent detections):", results["new_group_found"])
    print(f"\nStreaming at ARL0 = {results['arl0']} events, 10% new intent after the change")
    print(
        f"{'method':20} {'measured ARL0':>14} {'null alarms':>12} {'median delay':>13} "
        f"{'p90 delay':>10}"
    )
    for key, row in results["streaming"].items():
        arl = f"{row['measured_arl0']:.0f}" if row["measured_arl0"] else "> all"
        print(
            f"{key:20} {arl:>14} {row['null_alarms']:>12} {row['median_delay']:>13.0f} "
            f"{row['p90_delay']:>10.0f}"
        )
    print("\nTimings (median):", {k: round(v, 3) for k, v in results["timings"].items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer folds and repetitions")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args.quick)
    results["wall_s"] = time.perf_counter() - started
    print_tables(results)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = Path(out / ("drift-quick.json" if args.quick else "drift.json"))
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {path} in {results['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
