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
from apps.drift.detectors.streaming import arl_estimate, distinct_rows, run_lengths
from bench.drift.data import dataset_vectors

ARL0 = 5000
SLIDING_WINDOWS = (100, 200, 500, 1000)
STREAM_NEW_SHARE = 0.10
MAX_DELAY = 5000
# Events over which a lam-0.01 chart keeps 0.1% of a call's weight: no repeats within it.
MEMORY = 690


def progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, **kwargs)


def sliding_paths(stream: np.ndarray, reference_mean: np.ndarray, window: int) -> np.ndarray:
    cumulative = np.vstack([np.zeros(stream.shape[1]), np.cumsum(stream, axis=0, dtype=np.float64)])
    out = np.full(len(stream), np.nan)
    means = (cumulative[window:] - cumulative[:-window]) / window
    out[window - 1 :] = np.linalg.norm(means - reference_mean, axis=1)
    return out


# (lam, n_components, shrinkage): the product's default (``--stream-configs`` adds others).
STREAM_CONFIGS = ((0.01, 384, 1.0),)
STREAM_REFERENCE = 1500
STREAM_NULL_EVENTS = 200_000


class Traffic:
    """In-control traffic for one fold: independent-looking fresh calls whose mean differs from
    the reference's by exactly the reference's own sampling error, as a deployed chart sees.

    The known classes are split in two disjoint halves: the reference is drawn from the first,
    traffic from the second (never a reference call again, so the whitening meets only
    out-of-sample calls). A finite pool misleads a chart that sums products of different
    calls over ~1/lam of them: independent draws repeat calls within that memory (each repeat
    adds a call's squared norm), and passes without repeats pair distinct calls of a pool
    centred on its own mean (covariance -C/(N-1)). So no call repeats within the chart's
    memory (``distinct_rows``) and every stream is moved by a random combination of the pool's
    centred calls with covariance C/N, which cancels that negative covariance. It is also
    moved by the difference of the halves' means (that split's error is not the reference's)
    plus a draw of the error the reference lacks (a sample of n from a half of N has error
    variance 1/n - 1/N of the spread; fresh traffic sees 1/n).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        reference_pool: np.ndarray,
        traffic_pool: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        self.vectors = vectors
        self.pool = traffic_pool
        self.rng = rng
        own = vectors[reference_pool].astype(np.float64)
        fresh = vectors[traffic_pool].astype(np.float64)
        self.centre = own.mean(axis=0) - fresh.mean(axis=0)
        self.own_centred = own - own.mean(axis=0)
        self.fresh_centred = fresh - fresh.mean(axis=0)

    def offset(self) -> np.ndarray:
        own = self.rng.normal(size=len(self.own_centred)) @ self.own_centred
        fresh = self.rng.normal(size=len(self.fresh_centred)) @ self.fresh_centred
        # Only the pair weight of the chart (lam 0.01) within the no-repeat memory.
        within = np.sqrt(1 - 0.99 ** min(MEMORY, len(self.pool) // 2))
        return np.asarray(
            self.centre + own / len(self.own_centred) + within * fresh / len(self.fresh_centred)
        )

    def passes(self, length: int) -> np.ndarray:
        """Calls never repeated within the chart's memory (690 events at lam 0.01)."""
        return np.asarray(
            self.pool[distinct_rows(len(self.pool), length, 1, MEMORY, self.rng)[:, 0]]
        )

    def rows(self, rows: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return (self.vectors[rows].astype(np.float64) + offset).astype(np.float32)

    def stream(self, length: int) -> np.ndarray:
        return self.rows(self.passes(length), self.offset())


def calibrate_sliding(
    traffic: Traffic, reference_mean: np.ndarray, windows: tuple[int, ...], n: int
) -> dict[int, float]:
    """Per window, the threshold whose run length on ``n`` null streams is ARL0 (the same
    streams for every window, made as the measured null streams are)."""
    horizon = 2 * ARL0
    rows = distinct_rows(len(traffic.pool), horizon, n, MEMORY, traffic.rng)
    paths = {window: np.empty((n, horizon), dtype=np.float32) for window in windows}
    for s in range(n):
        stream = traffic.rows(traffic.pool[rows[:, s]], traffic.offset())
        for window in windows:
            paths[window][s] = np.maximum.accumulate(
                np.nan_to_num(sliding_paths(stream, reference_mean, window), nan=0.0)
            )
    thresholds = {}
    for window, window_paths in paths.items():
        low, high = 0.0, float(window_paths.max()) * 2 + 1
        for _ in range(50):
            middle = (low + high) / 2
            if arl_estimate(run_lengths(window_paths, middle), horizon) < ARL0:
                low = middle
            else:
                high = middle
        thresholds[window] = high
    return thresholds


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
            reference_pool, traffic_pool = known[: len(known) // 2], known[len(known) // 2 :]
            size = min(STREAM_REFERENCE, len(reference_pool))
            reference = vectors[reference_pool[:size]]
            traffic = Traffic(vectors, reference_pool, traffic_pool, rng)
            nulls = [traffic.stream(null_events // 4) for _ in range(4)]
            changes = []
            for _ in range(delay_reps):
                calls = traffic.passes(max(SLIDING_WINDOWS) + MAX_DELAY)
                before, after = calls[: max(SLIDING_WINDOWS)], calls[max(SLIDING_WINDOWS) :]
                extra = rng.random(MAX_DELAY) < STREAM_NEW_SHARE
                after = np.where(extra, rng.choice(new_rows, MAX_DELAY), after)
                offset = traffic.offset()
                changes.append((traffic.rows(before, offset), traffic.rows(after, offset)))
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
                    update = MewmaDetector.from_state(mewma.to_state()).update(stream)
                    rows_out[key]["alarms"] += len(update.alarm_positions)
                    rows_out[key]["events"] += len(stream)
                for before, after in changes:
                    detector = MewmaDetector.from_state(mewma.to_state())
                    detector.update(before[:500])
                    update = detector.update(after)
                    delay = update.alarm_positions[0] + 1 if update.alarm else MAX_DELAY
                    rows_out[key]["delays"].append(delay)
            reference_mean = reference.astype(np.float64).mean(axis=0)
            # Calibrated on streams made as the null streams are (favours the windows).
            thresholds = calibrate_sliding(
                traffic, reference_mean, SLIDING_WINDOWS, 30 if quick else 60
            )
            for window in SLIDING_WINDOWS:
                key = f"sliding_w{window}"
                threshold = thresholds[window]
                for stream in nulls:
                    path = sliding_paths(stream, reference_mean, window)
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
                    path = sliding_paths(
                        np.vstack([before[:window], after]), reference_mean, window
                    )
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
