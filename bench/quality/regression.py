"""False-alarm rate and power of :func:`apps.quality.regression.compare_windows` by simulation.

Synthetic windows (three intents with their own refusal rates and latencies, feedback on a third
of the calls) at several window sizes:

* null: both windows from the same distribution -> share of runs with any "regressed" metric
  (target: at most alpha = 5%, Benjamini-Hochberg across metrics);
* refusal 5% -> 8% (REFERENCE.md: ~830 per arm for 80% power at alpha 5%, two-sided);
* median latency x1.10 (0.19 SD of log latency);
* intent mix change only (each intent's rates unchanged): false alarms stratified vs pooled.

Usage: ``.venv/bin/python -m bench.quality.regression [--runs 200]``
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from apps.quality.regression import MetricSample, compare_windows

INTENTS = np.array(["faq", "search", "booking"])
RATES = {"faq": 0.03, "search": 0.05, "booking": 0.09}
LOG_LATENCY = {"faq": 5.5, "search": 6.0, "booking": 6.8}


def window(
    rng: np.random.Generator,
    n: int,
    *,
    mix: tuple[float, float, float] = (0.5, 0.3, 0.2),
    refusal_factor: float = 1.0,
    latency_factor: float = 1.0,
) -> MetricSample:
    labels = rng.choice(INTENTS, size=n, p=mix)
    rates = np.array([RATES[label] for label in labels]) * refusal_factor
    log_latency = np.array([LOG_LATENCY[label] for label in labels]) + np.log(latency_factor)
    feedback = np.where(rng.random(n) < 0.33, (rng.random(n) < 0.1).astype(float), np.nan)
    return MetricSample(
        {
            "refusal": (rng.random(n) < rates).astype(float),
            "latency_ms": np.exp(log_latency + rng.normal(0, 0.5, n)),
            "negative_feedback": feedback,
            "error": (rng.random(n) < 0.01).astype(float),
        },
        strata=labels,
    )


def rate(
    runs: int,
    n: int,
    metric: str | None,
    *,
    stratify: bool = True,
    baseline_mix: tuple[float, float, float] = (0.5, 0.3, 0.2),
    current_mix: tuple[float, float, float] = (0.5, 0.3, 0.2),
    refusal_factor: float = 1.0,
    latency_factor: float = 1.0,
) -> float:
    """Share of ``runs`` simulated comparisons in which ``metric`` (any when None) regressed."""
    hits = 0
    for seed in tqdm(range(runs), desc=f"n={n} {metric or 'any metric'}", leave=False):
        rng = np.random.default_rng(seed)
        baseline = window(rng, n, mix=baseline_mix)
        current = window(
            rng, n, mix=current_mix, refusal_factor=refusal_factor, latency_factor=latency_factor
        )
        results = compare_windows(baseline, current, n_boot=200, seed=seed, stratify=stratify)
        if metric is None:
            hits += any(r.regressed for r in results)
        else:
            hits += next(r for r in results if r.metric == metric).regressed
    return hits / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    runs = args.runs
    # With refusal_factor 8/5 the pooled refusal rate goes from ~4.9% to ~7.8%.
    print(f"{'scenario':58s} {'n/arm':>6s} {'share flagged':>14s}")
    for n in (300, 830, 2000):
        print(
            f"{'null: any metric regressed (false alarm)':58s} {n:6d} {rate(runs, n, None):14.3f}"
        )
    for n in (300, 830, 2000):
        value = rate(runs, n, "refusal", refusal_factor=1.6)
        print(f"{'refusal x1.6 (~4.9% -> 7.8%): power':58s} {n:6d} {value:14.3f}")
    for n in (300, 830, 2000):
        value = rate(runs, n, "latency_ms", latency_factor=1.10)
        print(f"{'median latency x1.10: power':58s} {n:6d} {value:14.3f}")
    mix = {"baseline_mix": (0.6, 0.3, 0.1), "current_mix": (0.3, 0.3, 0.4)}
    for stratify in (True, False):
        label = "stratified" if stratify else "pooled"
        value = rate(runs, 2000, "refusal", stratify=stratify, **mix)  # type: ignore[arg-type]
        print(
            f"{'intent mix change only, refusal false alarm, ' + label:58s} {2000:6d} {value:14.3f}"
        )
        value = rate(runs, 2000, "latency_ms", stratify=stratify, **mix)  # type: ignore[arg-type]
        print(
            f"{'intent mix change only, latency false alarm, ' + label:58s} {2000:6d} {value:14.3f}"
        )


if __name__ == "__main__":
    main()
