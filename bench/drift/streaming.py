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
# References drawn a fold, and null segments of 2 x ARL0 events a reference draw.
REFERENCE_DRAWS = 4
NULL_SEGMENTS = 20


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
    variance 1/n - 1/N of the spread; fresh traffic sees 1/n). That draw takes C from the
    traffic half: the reference half's own rows, seen through a whitening fitted on half of
    them, are calmer in the top directions than fresh calls: on chatterbot (reference = the
    whole half) the limit that gives ARL0 on this traffic came out 8% lower with them (the
    fitted limit 1.10x it, against 1.02x with the traffic half's C), a run length ~2x.
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
        """The stream's shift: the reference's mean error (a draw of covariance C/N_own, C
        from the traffic half: the reference half's own covariance, seen through a whitening
        fitted on half of its rows, is not what fresh calls' error looks like when the
        reference is the whole half, as on chatterbot) plus the pair correction."""
        # Only the pair weight of the chart (lam 0.01) within the no-repeat memory.
        within = 1 - 0.99 ** min(MEMORY, len(self.pool) // 2)
        fresh = len(self.fresh_centred)
        share = 1 / len(self.own_centred) + within / fresh
        # Random signs, not normal weights (as in ``MewmaDetector._calibrate``): the squared
        # norm of a normal combination spreads by sum(g_i^2 |c_i|^2), which the mean of fresh
        # calls does not have.
        draw = self.signs(fresh) @ self.fresh_centred
        return np.asarray(self.centre + np.sqrt(share / fresh) * draw)

    def signs(self, n: int) -> np.ndarray:
        return np.asarray(self.rng.choice(np.array([-1.0, 1.0]), size=n))

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


def limit_for(paths_max: np.ndarray, arl0: float = ARL0) -> float:
    """The threshold at which the censored run-length estimate of ``paths_max`` is ``arl0``."""
    horizon = paths_max.shape[1]
    low, high = float(min(paths_max.min(), 0.0)), float(paths_max.max()) * 2 + 1
    for _ in range(50):
        middle = (low + high) / 2
        if arl_estimate(run_lengths(paths_max, middle), horizon) < arl0:
            low = middle
        else:
            high = middle
    return high


def pooled_arl(draws: list[dict[str, Any]], scale: float = 1.0) -> tuple[float, int]:
    """Run length and alarms over every reference draw's null segments, each at its own
    threshold times ``scale``."""
    exposure, alarms = 0.0, 0
    for draw in draws:
        paths_max = draw["null_max"]
        lengths = run_lengths(paths_max, scale * draw["limit"])
        exposure += float(np.minimum(lengths, paths_max.shape[1]).sum())
        alarms += int((lengths <= paths_max.shape[1]).sum())
    return (exposure / alarms if alarms else float("inf")), alarms


def matched_scale(draws: list[dict[str, Any]]) -> float:
    """The common factor on every draw's threshold that puts the pooled run length at ARL0:
    delays compared at the same measured run length, whatever each method's calibration."""
    low, high = 0.25, 4.0
    for _ in range(40):
        middle = (low * high) ** 0.5
        if pooled_arl(draws, middle)[0] < ARL0:
            low = middle
        else:
            high = middle
    return high


def mewma_delay(chart: MewmaDetector, before: np.ndarray, after: np.ndarray, limit: float) -> int:
    """Events after the change until the product's chart (limit ``limit``) alarms."""
    detector = chart.clone()
    detector.limit = limit
    detector.update(before)
    update = detector.update(after)
    return update.alarm_positions[0] + 1 if update.alarm else MAX_DELAY


def streaming(
    quick: bool,
    datasets: tuple[str, ...] = ("snips",),
    configs: tuple[tuple[float, int, float], ...] = STREAM_CONFIGS,
) -> dict[str, Any]:
    """Per data set, held-out class and reference draw: MEWMA configurations and sliding
    windows on the same null segments (run length) and the same change streams (delay after a
    10% new intent), all calibrated for ARL0 = 5,000 events.

    The run length is estimated on null segments of 2 x ARL0 events from a fresh start (a
    chart restarts from zero after an alarm, so a segment is one run), pooled over
    ``REFERENCE_DRAWS`` references a fold: the reference's own mean error moves a chart's run
    length by about 2x from one reference to the next, so one reference a fold (as before)
    could not tell a calibration error of 20% from that spread. Delays are reported at the
    calibrated thresholds and at thresholds scaled to the same measured run length (matched).
    """
    draws_n = 2 if quick else REFERENCE_DRAWS
    delay_reps = 4 if quick else 8
    segments = NULL_SEGMENTS // (2 if quick else 1)
    horizon = 2 * ARL0
    out: dict[str, Any] = {}
    for name in datasets:
        vectors, _, labels_list = dataset_vectors(name)
        labels = np.asarray(labels_list)
        draws: dict[str, list[dict[str, Any]]] = defaultdict(list)
        folds = stream_folds(labels, quick)
        tasks = [(held_out, r) for held_out in folds for r in range(draws_n)]
        size = 0
        traffic: Traffic | None = None
        for held_out, r in progress(tasks, desc=f"streaming {name}"):
            seed = int.from_bytes(f"{name}/{held_out}".encode()[:8].ljust(8, b"."), "little")
            if r == 0:
                rng = np.random.default_rng(seed % (1 << 31))
                known = rng.permutation(np.flatnonzero(labels != held_out))
                new_rows = np.flatnonzero(labels == held_out)
                reference_pool, traffic_pool = known[: len(known) // 2], known[len(known) // 2 :]
                size = min(STREAM_REFERENCE, len(reference_pool))
                traffic = Traffic(vectors, reference_pool, traffic_pool, rng)
            assert traffic is not None
            # The first draw is the one the bench always used; later ones resample the half
            # (on the small sets the reference is the whole half: only the fit's seed moves).
            chosen = (
                reference_pool[:size]
                if r == 0
                else np.sort(rng.choice(reference_pool, size, replace=False))
            )
            reference = vectors[chosen]
            null_rows = traffic.pool[
                distinct_rows(len(traffic.pool), horizon, segments, MEMORY, rng)
            ]
            null_offsets = np.stack([traffic.offset() for _ in range(segments)])
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
                    seed=1 + r,
                    n_streams=100 if quick else 300,
                )
                fit_s = time.perf_counter() - began
                # whiten(x + o) = whiten(x) + W o: the data set is whitened once a draw.
                whitened = mewma.whiten(vectors)
                shifts = null_offsets @ mewma.whitening.T
                null_max = np.stack(
                    [
                        np.maximum.accumulate(
                            mewma.path(whitened[null_rows[:, s]] + shifts[s], whitened=True)
                        )
                        for s in range(segments)
                    ]
                )
                draws[key].append(
                    {
                        "limit": mewma.limit,
                        "null_max": null_max,
                        "fit_s": fit_s,
                        "chart": mewma,
                        "changes": changes,
                    }
                )
            reference_mean = reference.astype(np.float64).mean(axis=0)
            # Calibrated on streams made as the null segments are (favours the windows).
            thresholds = calibrate_sliding(
                traffic, reference_mean, SLIDING_WINDOWS, 15 if quick else 30
            )
            null_streams = [traffic.rows(null_rows[:, s], null_offsets[s]) for s in range(segments)]
            for window in SLIDING_WINDOWS:
                null_max = np.stack(
                    [
                        np.maximum.accumulate(
                            np.nan_to_num(sliding_paths(stream, reference_mean, window), nan=0.0)
                        )
                        for stream in null_streams
                    ]
                )
                change_paths = [
                    np.nan_to_num(
                        sliding_paths(np.vstack([before[-window:], after]), reference_mean, window)[
                            window:
                        ],
                        nan=0.0,
                    )
                    for before, after in changes
                ]
                draws[f"sliding_w{window}"].append(
                    {
                        "limit": thresholds[window],
                        "null_max": null_max,
                        "change_paths": change_paths,
                    }
                )
        table = {}
        for key, method_draws in draws.items():
            scale = matched_scale(method_draws)
            delays: dict[float, list[int]] = {1.0: [], scale: []}
            for draw in method_draws:
                for factor in delays:
                    if "chart" in draw:
                        delays[factor] += [
                            mewma_delay(draw["chart"], before[-500:], after, factor * draw["limit"])
                            for before, after in draw["changes"]
                        ]
                    else:
                        for path in draw["change_paths"]:
                            hits = np.flatnonzero(path > factor * draw["limit"])
                            delays[factor].append(int(hits[0]) + 1 if hits.size else MAX_DELAY)
            arl, alarms = pooled_arl(method_draws)
            per_draw = [pooled_arl([draw])[0] for draw in method_draws]
            fits = [draw["fit_s"] for draw in method_draws if "fit_s" in draw]
            table[key] = {
                "measured_arl0": arl,
                "null_alarms": alarms,
                "null_segments": sum(len(d["null_max"]) for d in method_draws),
                "arl0_per_reference": [min(per_draw), max(per_draw)],
                "median_delay": float(np.median(delays[1.0])),
                "matched_scale": scale,
                "matched_delay": float(np.median(delays[scale])),
                "runs": len(delays[1.0]),
                "fit_s": float(np.mean(fits)) if fits else None,
            }
        out[name] = {
            "folds": folds,
            "reference": size,
            "reference_draws": draws_n,
            "methods": table,
        }
    return out


def print_streaming(results: dict[str, Any]) -> None:
    for name, data in results.items():
        print(
            f"\nStreaming on {name} at ARL0 = {ARL0} events, 10% new intent after the change "
            f"(held out {', '.join(data['folds'])}; reference {data['reference']}, "
            f"{data.get('reference_draws', 1)} draws a fold)"
        )
        print(
            f"{'method':28} {'ARL0':>6} {'per ref':>11} {'alarms':>6} {'delay':>6} "
            f"{'scale':>6} {'matched':>8} {'runs':>5} {'fit s':>6}"
        )
        for key, row in data["methods"].items():
            low, high = row["arl0_per_reference"]
            fit = f"{row['fit_s']:.1f}" if row["fit_s"] is not None else "-"
            print(
                f"{key:28} {row['measured_arl0']:>6.0f} {f'{low:.0f}-{high:.0f}':>11} "
                f"{row['null_alarms']:>6} {row['median_delay']:>6.0f} {row['matched_scale']:>6.3f} "
                f"{row['matched_delay']:>8.0f} {row['runs']:>5} {fit:>6}"
            )
        rows = data["methods"]
        sliding = {k: r for k, r in rows.items() if k.startswith("sliding")}
        for key, row in rows.items():
            if key.startswith("mewma") and sliding:
                matched = min(r["matched_delay"] for r in sliding.values())
                calibrated = min(r["median_delay"] for r in sliding.values())
                print(
                    f"  {key}: delay ratio to the best sliding window at matched ARL0 "
                    f"{row['matched_delay'] / matched:.2f}x "
                    f"(calibrated {row['median_delay'] / calibrated:.2f}x)"
                )
