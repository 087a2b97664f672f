"""Streaming part of the drift benchmark: the product's MEWMA against calibrated sliding
mean-distance windows, on the same null streams (measured run length) and the same change streams
(median delay after a 10% new intent), all calibrated for ARL0 = 5,000 events.

Run through ``python -m bench.drift.run --streaming-only`` (or beside the window tables).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np

from apps.drift.detectors import MewmaDetector
from apps.drift.detectors.streaming import arl_estimate, run_lengths
from bench.drift.data import dataset_vectors

ARL0 = 5000
SLIDING_WINDOWS = (100, 200, 500, 1000)
STREAM_NEW_SHARE = 0.10
MAX_DELAY = 5000


def progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, **kwargs)


def sliding_paths(stream: np.ndarray, reference_mean: np.ndarray, window: int) -> np.ndarray:
    cumulative = np.vstack([np.zeros(stream.shape[1]), np.cumsum(stream, axis=0)])
    out = np.full(len(stream), np.nan)
    means = (cumulative[window:] - cumulative[:-window]) / window
    out[window - 1 :] = np.linalg.norm(means - reference_mean, axis=1)
    return out


def calibrate_sliding(
    pool: np.ndarray, reference_mean: np.ndarray, window: int, rng: np.random.Generator, n: int
) -> float:
    horizon = 2 * ARL0
    paths = np.empty((n, horizon), dtype=np.float32)
    for s in range(n):
        stream = pool[null_stream(np.arange(len(pool)), horizon, rng)]
        paths[s] = np.maximum.accumulate(
            np.nan_to_num(sliding_paths(stream, reference_mean, window), nan=0.0)
        )
    low, high = 0.0, float(paths.max()) * 2 + 1
    for _ in range(50):
        middle = (low + high) / 2
        if arl_estimate(run_lengths(paths, middle), horizon) < ARL0:
            low = middle
        else:
            high = middle
    return high


# (lam, n_components, shrinkage): the product's default first, then the ones it was chosen from.
STREAM_CONFIGS = ((0.01, 384, 1.0), (0.01, 384, 0.3), (0.01, 32, 0.0))
STREAM_REFERENCE = 1500
STREAM_NULL_EVENTS = 200_000


def null_stream(pool: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of an in-control stream: passes over the pool in fresh random orders.

    Drawing with replacement from a small pool gives every window the pool's own mean error
    as a persistent shift (a drift of 1/len(pool)); without replacement inside a pass the
    window means scatter around the population mean as fresh traffic would.
    """
    passes = -(-length // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(passes)])[:length]


def stream_folds(labels: np.ndarray, quick: bool) -> list[str]:
    """Held-out classes: the largest ones (a 10% share must be drawable many times) that are
    not a third of the data or more (the rest must still make a reference and a null pool)."""
    names, counts = np.unique(labels, return_counts=True)
    order = [
        str(n)
        for n, c in zip(
            names[np.argsort(-counts, kind="stable")], np.sort(counts)[::-1], strict=True
        )
        if 3 * c < len(labels)
    ]
    return order[:1] if quick else order[:2]


def streaming(
    quick: bool,
    datasets: tuple[str, ...] = ("snips",),
    configs: tuple[tuple[float, int, float], ...] = STREAM_CONFIGS,
) -> dict[str, Any]:
    """Per data set and held-out class: MEWMA configurations and sliding windows on the same
    null streams (measured run length) and the same change streams (delay after a 10% new
    intent), all calibrated for ARL0 = 5,000 events."""
    delay_reps = 10 if quick else 20
    null_events = STREAM_NULL_EVENTS // (4 if quick else 1)
    out: dict[str, Any] = {}
    for name in datasets:
        vectors, _, labels_list = dataset_vectors(name)
        labels = np.asarray(labels_list)
        rows_out: dict[str, Any] = defaultdict(
            lambda: {"delays": [], "alarms": 0, "events": 0, "fit_s": []}
        )
        folds = stream_folds(labels, quick)
        for held_out in progress(folds, desc=f"streaming {name}"):
            seed = int.from_bytes(f"{name}/{held_out}".encode()[:8].ljust(8, b"."), "little")
            rng = np.random.default_rng(seed % (1 << 31))
            known = rng.permutation(np.flatnonzero(labels != held_out))
            new_rows = np.flatnonzero(labels == held_out)
            size = min(STREAM_REFERENCE, len(known) // 2)
            ref, rest = known[:size], known[size:]
            reference = vectors[ref]
            nulls = [null_stream(rest, null_events // 4, rng) for _ in range(4)]
            changes = []
            for _ in range(delay_reps):
                extra = rng.random(MAX_DELAY) < STREAM_NEW_SHARE
                after = np.where(
                    extra, rng.choice(new_rows, MAX_DELAY), rng.choice(rest, MAX_DELAY)
                )
                changes.append((rng.choice(rest, max(SLIDING_WINDOWS)), after))
            for lam, comps, shrink in configs:
                key = f"mewma_lam{lam}_q{comps}_s{shrink}"
                began = time.perf_counter()
                mewma = MewmaDetector.fit(
                    reference,
                    arl0=ARL0,
                    lam=lam,
                    n_components=min(comps, size // 2),
                    shrinkage=shrink,
                    block_size=1,
                    seed=1,
                    n_streams=100 if quick else 300,
                )
                rows_out[key]["fit_s"].append(time.perf_counter() - began)
                for stream in nulls:
                    update = MewmaDetector.from_state(mewma.to_state()).update(vectors[stream])
                    rows_out[key]["alarms"] += len(update.alarm_positions)
                    rows_out[key]["events"] += len(stream)
                for before, after in changes:
                    detector = MewmaDetector.from_state(mewma.to_state())
                    detector.update(vectors[before[:500]])
                    update = detector.update(vectors[after])
                    delay = update.alarm_positions[0] + 1 if update.alarm else MAX_DELAY
                    rows_out[key]["delays"].append(delay)
            reference_mean = reference.astype(np.float64).mean(axis=0)
            half = len(rest) // 2
            for window in SLIDING_WINDOWS:
                key = f"sliding_w{window}"
                threshold = calibrate_sliding(
                    vectors[rest[:half]], reference_mean, window, rng, 30 if quick else 60
                )
                for stream in nulls:
                    path = sliding_paths(vectors[stream], reference_mean, window)
                    start, alarms = window - 1, 0
                    while True:
                        hits = np.flatnonzero(np.nan_to_num(path[start:], nan=0.0) > threshold)
                        if not hits.size:
                            break
                        alarms += 1
                        start = int(hits[0]) + start + window
                    rows_out[key]["alarms"] += alarms
                    rows_out[key]["events"] += len(stream)
                for before, after in changes:
                    stream = np.concatenate([before[:window], after])
                    path = sliding_paths(vectors[stream], reference_mean, window)
                    hits = np.flatnonzero(np.nan_to_num(path[window:], nan=0.0) > threshold)
                    rows_out[key]["delays"].append(int(hits[0]) + 1 if hits.size else MAX_DELAY)
        table = {}
        for key, value in rows_out.items():
            delays = np.asarray(value["delays"], dtype=np.float64)
            table[key] = {
                "measured_arl0": value["events"] / value["alarms"] if value["alarms"] else None,
                "null_alarms": value["alarms"],
                "null_events": value["events"],
                "median_delay": float(np.median(delays)),
                "runs": int(delays.size),
                "fit_s": float(np.mean(value["fit_s"])) if value["fit_s"] else None,
            }
        out[name] = {"folds": folds, "reference": size, "methods": table}
    return out


def print_streaming(results: dict[str, Any]) -> None:
    for name, data in results.items():
        print(
            f"\nStreaming on {name} at ARL0 = {ARL0} events, 10% new intent after the change "
            f"(held out {', '.join(data['folds'])}; reference {data['reference']})"
        )
        print(
            f"{'method':28} {'measured ARL0':>14} {'alarms':>6} {'median delay':>13} "
            f"{'runs':>5} {'fit s':>6}"
        )
        for key, row in data["methods"].items():
            arl = f"{row['measured_arl0']:.0f}" if row["measured_arl0"] else "> all"
            fit = f"{row['fit_s']:.1f}" if row["fit_s"] is not None else "-"
            print(
                f"{key:28} {arl:>14} {row['null_alarms']:>6} {row['median_delay']:>13.0f} "
                f"{row['runs']:>5} {fit:>6}"
            )
        sliding = [r["median_delay"] for k, r in data["methods"].items() if k.startswith("sliding")]
        if sliding:
            print(f"  best sliding window median delay: {min(sliding):.0f}")
