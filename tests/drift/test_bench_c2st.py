"""The drift bench's permutation C2ST (``bench.drift.run.c2st_auc_statistics``): the comparison
the default test is held against must be computed as its docstring says, and calibrated."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score

from apps.drift.detectors import Baseline
from bench.drift.run import C2ST_ALPHA, C2ST_FOLDS, c2st_auc_statistics, c2st_folds


def _blobs(rng: np.random.Generator, n: int, shares: list[float]) -> np.ndarray:
    centres = np.random.default_rng(3).normal(size=(len(shares), 16))
    picks = rng.choice(len(shares), n, p=np.asarray(shares) / sum(shares))
    rows = centres[picks] + 0.6 * rng.normal(size=(n, 16))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_auc_of_every_split_equals_refitting_sklearn_ridge_per_fold() -> None:
    rng = np.random.default_rng(5)
    reference = _blobs(rng, 160, [1, 1, 1, 0])
    fitted = Baseline.fit(reference, false_alarm_rate=0.05, k=3, n_calibration=9, seed=1)
    window = _blobs(rng, 60, [1, 1, 1, 1])
    sample, _, _ = fitted.permutation_sample(window)
    values = c2st_auc_statistics(sample)
    rows = sample.centred
    folds = c2st_folds(rows)
    assert sorted(set(folds.tolist())) == list(range(C2ST_FOLDS))
    for split, mask in enumerate(sample.masks.astype(bool)[:4]):
        labels = mask.astype(np.float64)
        scores = np.empty(len(rows))
        for fold in range(C2ST_FOLDS):
            test = folds == fold
            model = Ridge(alpha=C2ST_ALPHA).fit(rows[~test], labels[~test])
            scores[test] = model.predict(rows[test])
        assert abs(values[split] - roc_auc_score(labels, scores)) < 1e-9


def test_permutation_p_value_holds_its_level_and_sees_a_new_group() -> None:
    rng = np.random.default_rng(8)
    reference = _blobs(rng, 240, [1, 1, 1, 0])
    fitted = Baseline.fit(reference, false_alarm_rate=0.05, k=3, n_calibration=99, seed=2)

    def p_value(window: np.ndarray) -> float:
        sample, _, _ = fitted.permutation_sample(window)
        values = c2st_auc_statistics(sample)
        return float((1 + (values[1:] >= values[0]).sum()) / len(values))

    null = [p_value(_blobs(rng, 80, [1, 1, 1, 0])) for _ in range(40)]
    # 40 null windows at 5%: 2 expected; 7 or more has probability < 0.5% under a valid test.
    assert sum(p <= 0.05 for p in null) <= 6
    shifted = [p_value(_blobs(rng, 80, [1, 1, 1, 1])) for _ in range(5)]
    assert max(shifted) <= 0.05
