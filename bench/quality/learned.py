"""Training and leave-one-source-out evaluation of the learned safety scorers.

Features: the text's embedding (bundled MiniLM, as the embed worker computes it) and the
signal's heuristic score. Model: L2-regularised logistic regression; every positive *family*
carries the same total weight (a 650-prompt family must not drown a 17-prompt one), and benign
text as much as all positives together, shared equally by the benign families (hard negatives
count as much as SNIPS).

* :func:`build` fits the shipped model on every family (benign: the train split), picks the
  threshold for each FPR of :data:`~apps.quality.scorers.learned.FPR_GRID` on the benign *dev*
  split, fits the Platt slope on out-of-fold positive logits and benign dev logits, and writes
  ``apps/quality/data/learned_<signal>.json``.
* :func:`leave_one_out` trains without one positive family and reports its recall at the
  operating point (threshold from benign dev) and the benign FPR on the benign *test* split.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from apps.quality.scorers import learned
from apps.quality.scorers.injection import injection_heuristic
from apps.quality.scorers.refusal import is_refusal
from apps.quality.scorers.toxicity import toxicity, word_score
from bench.quality import corpus

PROVIDER_KEY = "sentence-transformers:all-MiniLM-L6-v2:384"
# Regularisation per signal, chosen by the worst held-out family (``python -m
# bench.quality.signals --grid``), never by in-distribution figures; a choice must also keep the
# hand-written attacks/refusals of tests/quality/test_learned.py (styles no training family has).
# Injection (before the hard negatives of five styles): C=0.3, worst family at 1% 0.933.
# Toxicity (two heads, benign by family, hard benign text and fiction among
# the benign): worst family at 1% by C: 0.1: 0.313, 0.3: 0.297, 1: 0.343, 3: 0.361, 10: 0.340
# (RealToxicityPrompts each time); with the word head (FEATURE_HEADS), at 1% [2%]: 0.1: 0.334
# [0.417], 0.3: 0.356 [0.452], 1: 0.368 [0.462], 3: 0.422 [0.482], 10: 0.413 [0.492].
# Refusal: benign by family at C=3 lifted garak's mitigation phrases 0.51 -> 0.67 but lost a
# hand-written refusal ("that's not something I'm able to do"): not taken.
# Injection with the 200 hand-written hard negatives of five styles (bench.quality.data) among
# the benign (and in the dev split that sets the threshold), each hard negative weighing
# HARD_WEIGHT benign texts; chosen by the worst held-out attack family *and* the held-out hard
# negative families' FPR (leave one benign family out), at 1% [2%]:
#   C=0.3 w=1: worst attack 0.857 [0.933], hard negatives 0.235 [0.428]
#   C=1   w=2: worst attack 0.857 [0.893], hard negatives 0.235 [0.368]  <- taken
#   C=3   w=5: worst attack 0.714 [0.750], hard negatives 0.186 [0.249]  (sysprompt fails)
#   C=3  w=20: worst attack 0.571 [0.607], hard negatives 0.147 [0.189]  (sysprompt fails)
#   benign by family: worst attack 0.536, hard negatives 0.161 (sysprompt fails)
# (the first two rows with the heuristic's "mention in a short question" halving, the others
# without it; without it C=1 w=2 gave 0.786 [0.893] and 0.242 [0.347]). System-prompt
# extraction attacks and questions about system prompts lie close together in MiniLM space:
# the trade-off is there.
C_BY_SIGNAL = {"injection": 1.0, "toxicity": 3.0, "refusal": 1.0}
BENIGN_BY_FAMILY = {"injection": False, "toxicity": True, "refusal": False}
HARD_WEIGHT = {"injection": 2.0}
HEURISTICS: dict[str, Callable[[str], float]] = {
    "injection": injection_heuristic,
    "toxicity": toxicity,
    "refusal": lambda text: float(is_refusal(text)),
}
# Further heuristic features after the first, in the order the scorer passes them. The trained
# heads are fitted with them at 0 (their weights are 0): they feed the :data:`FEATURE_HEADS`.
EXTRA_FEATURES: dict[str, Callable[[str], tuple[float, ...]]] = {
    "toxicity": lambda text: (word_score(text),),
}


@dataclass
class Data:
    """One signal's labelled text: vectors, heuristic scores, labels, family, benign split."""

    signal: str
    texts: list[str]
    vectors: npt.NDArray[np.float32]
    heuristic: npt.NDArray[np.float64]
    positive: npt.NDArray[np.bool_]
    family: npt.NDArray[np.str_]
    split: npt.NDArray[np.str_]  # benign: train/dev/test; positives: "pos"
    extra: npt.NDArray[np.float64] | None = None  # further heuristic features, one row per text

    def features(self, mask: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.float64]:
        columns = [self.vectors, self.heuristic[:, None]]
        if self.extra is not None:
            columns.append(self.extra)
        x = np.hstack(columns).astype(np.float64)
        return x if mask is None else x[mask]

    @property
    def positive_families(self) -> list[str]:
        return list(dict.fromkeys(self.family[self.positive].tolist()))

    @property
    def benign_families(self) -> list[str]:
        return list(dict.fromkeys(self.family[~self.positive].tolist()))


def load(signal: str) -> Data:
    texts: list[str] = []
    vectors: list[npt.NDArray[np.float32]] = []
    positive: list[bool] = []
    family: list[str] = []
    split: list[str] = []
    seen: set[str] = set()
    for fam in corpus.families(signal):
        fam_vectors = corpus.family_vectors(fam)
        for text, vector in zip(fam.texts, fam_vectors, strict=True):
            if text in seen:  # a text in two families counts once, for the first
                continue
            seen.add(text)
            texts.append(text)
            vectors.append(vector)
            positive.append(fam.positive)
            family.append(fam.name)
            split.append(
                "pos"
                if fam.positive
                else "train"
                if fam.name in corpus.TRAIN_ONLY
                else corpus.bucket(text)
            )
    heuristic_fn = HEURISTICS[signal]
    extra_fn = EXTRA_FEATURES.get(signal)
    return Data(
        signal=signal,
        texts=texts,
        vectors=np.vstack(vectors),
        heuristic=np.asarray([heuristic_fn(t) for t in texts], dtype=np.float64),
        positive=np.asarray(positive),
        family=np.asarray(family),
        split=np.asarray(split),
        extra=None
        if extra_fn is None
        else np.asarray([extra_fn(t) for t in texts], dtype=np.float64),
    )


def _weights(data: Data, mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    weights = np.zeros(len(data.texts))
    pos_families = [f for f in data.positive_families if (mask & (data.family == f)).any()]
    for name in pos_families:
        members = mask & (data.family == name)
        weights[members] = 1.0 / members.sum()
    # Benign: as much weight as all positives together; with BENIGN_BY_FAMILY shared equally by
    # the benign families (85 hand-written hard negatives then count as much as 2,400 SNIPS
    # requests), else by text.
    benign = mask & ~data.positive
    if not BENIGN_BY_FAMILY.get(data.signal, False):
        # By text, the hand-written hard negatives counting HARD_WEIGHT texts each.
        per_text = np.where(
            np.isin(data.family, corpus.HARD_BENIGN_FAMILIES.get(data.signal, ())),
            HARD_WEIGHT.get(data.signal, 1.0),
            1.0,
        )
        weights[benign] = per_text[benign] * len(pos_families) / max(per_text[benign].sum(), 1)
    else:
        ben_families = [f for f in data.benign_families if (benign & (data.family == f)).any()]
        for name in ben_families:
            members = benign & (data.family == name)
            weights[members] = len(pos_families) / len(ben_families) / members.sum()
    return np.asarray(
        weights[mask] * (mask.sum() / max(weights[mask].sum(), 1e-12)), dtype=np.float64
    )


def fit(data: Data, mask: npt.NDArray[np.bool_], c: float) -> LogisticRegression:
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(data.features(mask), data.positive[mask], sample_weight=_weights(data, mask))
    return model


def logits(model: LogisticRegression, data: Data, mask: npt.NDArray[np.bool_]) -> Any:
    return model.decision_function(data.features(mask))


def threshold_for(benign_logits: npt.NDArray[Any], fpr: float) -> float:
    """The smallest threshold with at most ``fpr`` of ``benign_logits`` at or above it."""
    ordered = np.sort(benign_logits)[::-1]
    allowed = math.floor(fpr * len(ordered))
    if allowed >= len(ordered):
        return float(ordered[-1])
    # Flag iff logit >= threshold: put it just above the (allowed+1)-th highest benign logit.
    return float(np.nextafter(ordered[allowed], np.inf))


def _platt_slope(benign: npt.NDArray[Any], positive: npt.NDArray[Any]) -> float:
    x = np.concatenate([benign, positive])[:, None]
    y = np.concatenate([np.zeros(len(benign)), np.ones(len(positive))])
    w = np.concatenate(
        [np.full(len(benign), 0.5 / len(benign)), np.full(len(positive), 0.5 / len(positive))]
    )
    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(x, y, sample_weight=w * len(x))
    return float(model.coef_[0][0])


# Signals scored by more than one linear head: each head is trained on its own positive
# families against all benign text, and the signal flags when any head is over its threshold
# (the thresholds are set together, so that the union's benign FPR is the target). Toxicity:
# abusive language and harmful *requests* lie in different directions of the embedding space;
# one head for both lost the requests (Do-Not-Answer 0.43 at 1% held out, 0.54 with two heads;
# worst family 0.16 -> 0.28). The abuse head also learns from the lexicon's strong terms as
# texts of their own (``profanity_terms``): slurs 0.28 -> 0.39 held out.
HEADS: dict[str, dict[str, tuple[str, ...]]] = {
    "toxicity": {
        "abuse": ("realtoxicity", "slurs", "profanity_terms"),
        "harm": ("donotanswer", "harmbench", "tense_rephrased"),
        "words": ("realtoxicity", "slurs", "profanity_terms"),
    },
}
# Heads that are not trained: the logit is one heuristic feature as it is (index into the
# heuristic features), and the threshold lies just above the highest benign dev score at every
# operating point, so such a head takes none of the FPR budget from the trained heads (it adds
# ~1/n of benign dev, 1/1,852, to the benign FPR on unseen text). Toxicity: alt-profanity-check's
# SVM score (``word_score``; its ~200k labelled comments are data we do not have).
# Leave-one-source-out, two heads -> with the word head, at 0.1% / 1% / 2%: pooled recall
# 0.154 / 0.527 / 0.622 -> 0.189 / 0.543 / 0.634; worst family harmbench 0.051 (both) / profanity
# terms 0.380 -> slurs 0.422 / slurs 0.479 -> 0.482; no family lower at any point; benign test
# FPR 0.0021 / 0.0133 / 0.0222 -> 0.0027 / 0.0138 / 0.0227. Tried and not taken: the word score
# (and the strongest word's coefficient) as features of the abuse head: worst family at 1% 0.349
# (score alone) or 0.400 with a *negative* weight on the strongest word; the word head sharing
# the budget equally (union thresholds): Do-Not-Answer 0.545 -> 0.522, HarmBench 0.628 -> 0.581
# at 1%.
FEATURE_HEADS: dict[str, dict[str, int]] = {"toxicity": {"words": 1}}


def head_families(data: Data) -> list[tuple[str, list[str]]]:
    """``(head name, its positive families)``; one head named after the signal by default."""
    spec = HEADS.get(data.signal)
    if not spec:
        return [(data.signal, data.positive_families)]
    return [(name, [f for f in fams if f in data.positive_families]) for name, fams in spec.items()]


def fit_heads(data: Data, mask: npt.NDArray[np.bool_], c: float) -> list[Any]:
    """One model per head on ``mask``: its own positive families and every benign text (a
    :class:`FeatureHead` for a head of :data:`FEATURE_HEADS`)."""
    models: list[Any] = []
    features = FEATURE_HEADS.get(data.signal, {})
    # The trained heads see the extra features at 0: they are the feature heads' input.
    trained_data = data if data.extra is None else replace(data, extra=np.zeros_like(data.extra))
    for name, fams in head_families(data):
        if name in features:
            models.append(
                FeatureHead(data.vectors.shape[1], data.features().shape[1], features[name])
            )
            continue
        head_mask = mask & (~data.positive | np.isin(data.family, fams))
        models.append(fit(trained_data, head_mask, c))
    return models


@dataclass(frozen=True)
class FeatureHead:
    """An untrained head (:data:`FEATURE_HEADS`): its logit is heuristic feature ``index``; the
    attributes of a fitted linear model, so that it is written and scored like one."""

    dimension: int
    width: int  # of a feature row: the vector, then the heuristic features
    index: int

    @property
    def coef_(self) -> npt.NDArray[np.float64]:
        coef = np.zeros((1, self.width))
        coef[0, self.dimension + self.index] = 1.0
        return coef

    @property
    def intercept_(self) -> npt.NDArray[np.float64]:
        return np.zeros(1)

    def decision_function(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(x[:, self.dimension + self.index], dtype=np.float64)


def budgeted(data: Data) -> list[bool]:
    """Per head: whether it takes a share of the FPR budget (feature heads do not)."""
    features = FEATURE_HEADS.get(data.signal, {})
    return [name not in features for name, _ in head_families(data)]


def union_thresholds(
    dev: list[npt.NDArray[Any]], fpr: float, budget: list[bool] | None = None
) -> list[float]:
    """Per-head thresholds that flag the same number of benign dev texts each, as many as keep
    the union's benign FPR at most ``fpr`` (one head: :func:`threshold_for`). A head whose
    ``budget`` is False flags no benign dev text (its threshold is above the highest)."""
    n = len(dev[0])
    shares = budget or [True] * len(dev)
    ordered = [np.sort(d)[::-1] for d in dev]
    for allowed in range(min(math.floor(fpr * n), n - 1), -1, -1):
        ts = [
            float(np.nextafter(o[allowed if share else 0], np.inf))
            for o, share in zip(ordered, shares, strict=True)
        ]
        if _any_over(dev, ts).mean() <= fpr or allowed == 0:
            return ts
    raise AssertionError("unreachable")


def _any_over(scores: list[npt.NDArray[Any]], ts: list[float]) -> npt.NDArray[np.bool_]:
    out = np.zeros(len(scores[0]), dtype=bool)
    for s, t in zip(scores, ts, strict=True):
        out |= s >= t
    return out


def _head_json(model: LogisticRegression, slope: float, dimension: int) -> dict[str, Any]:
    weights = model.coef_[0]
    heuristic = [round(float(w), 6) for w in weights[dimension:]]
    return {
        "slope": round(slope, 6),
        "bias": round(float(model.intercept_[0]), 6),
        # One heuristic feature as a number (as files before several had it), else a list.
        "heuristic_weight": heuristic[0] if len(heuristic) == 1 else heuristic,
        "weights": [round(float(w), 6) for w in weights[:dimension]],
    }


def build(signal: str, *, write: bool = True) -> dict[str, Any]:
    """Fit, choose the operating points, calibrate; write the coefficient file."""
    started = time.perf_counter()
    data = load(signal)
    c = C_BY_SIGNAL[signal]
    heads = head_families(data)
    train = data.positive | (data.split == "train")
    dev = data.split == "dev"
    models = fit_heads(data, train, c)
    dimension = data.vectors.shape[1]
    budget = budgeted(data)
    benign_dev = [logits(m, data, dev) for m in models]
    # Out-of-fold logits of the positives under every head (5 folds stratified by family), for
    # the slopes and the recall expected at each point; the benign train split stays in every
    # fold.
    pos_index = np.flatnonzero(data.positive)
    oof = np.zeros((len(models), len(pos_index)))
    kfold = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for fit_idx, held_idx in kfold.split(pos_index, data.family[pos_index]):
        mask = (data.split == "train").copy()
        mask[pos_index[fit_idx]] = True
        held = np.zeros(len(data.texts), dtype=bool)
        held[pos_index[held_idx]] = True
        for h, fold_model in enumerate(fit_heads(data, mask, c)):
            oof[h, held_idx] = logits(fold_model, data, held)
    oof_list = list(oof)
    points: list[dict[str, Any]] = []
    for fpr in learned.FPR_GRID:
        ts = union_thresholds(benign_dev, fpr, budget)
        point: dict[str, Any] = {
            "target_fpr": fpr,
            "threshold": round(ts[0], 6),
            "dev_fpr": round(float(_any_over(benign_dev, ts).mean()), 5),
            "dev_recall": round(float(_any_over(oof_list, ts).mean()), 4),
        }
        if len(ts) > 1:
            point["head_thresholds"] = [round(t, 6) for t in ts[1:]]
        points.append(point)
    # What a user can expect at each point on sources never trained on (the settings page and
    # API show it beside the point): leave-one-source-out, as bench.quality.signals prints it.
    folds = _folds(data, c)
    for point in points:
        rows = [_held_out(data, fold, float(point["target_fpr"])) for fold in folds]
        point.update(heldout_summary(data, rows))
    pos_family = data.family[pos_index]
    slopes = [
        _platt_slope(benign_dev[h], oof[h][np.isin(pos_family, fams)])
        for h, (_, fams) in enumerate(heads)
    ]
    oof_union = np.max(
        [o - t for o, t in zip(oof_list, union_thresholds(benign_dev, 0.01, budget), strict=True)],
        axis=0,
    )
    dev_union = np.max(
        [
            d - t
            for d, t in zip(benign_dev, union_thresholds(benign_dev, 0.01, budget), strict=True)
        ],
        axis=0,
    )
    result: dict[str, Any] = {
        "signal": signal,
        "provider_key": PROVIDER_KEY,
        "built_by": f"python -m bench.quality.train_{signal}",
        "model": (
            f"logistic regression, C={c}, features: embedding + "
            + ("heuristic + word score" if signal in EXTRA_FEATURES else "heuristic")
            + "; heads: "
            + ", ".join(f"{name} ({'/'.join(fams)})" for name, fams in heads)
        ),
        "trained_on": {
            name: int((data.family == name)[train].sum())
            for name in [*data.positive_families, *data.benign_families]
        },
        "benign_dev": int(dev.sum()),
        "dev_auroc_oof": round(
            float(
                roc_auc_score(
                    np.r_[np.zeros(len(dev_union)), np.ones(len(oof_union))],
                    np.r_[dev_union, oof_union],
                )
            ),
            4,
        ),
        "head": heads[0][0],
        **_head_json(models[0], slopes[0], dimension),
        "operating_points": points,
    }
    if len(models) > 1:
        # Further heads: the same fields; their thresholds are each point's head_thresholds.
        result["extra_heads"] = [
            {"head": name, **_head_json(m, slope, dimension)}
            for (name, _), m, slope in zip(heads[1:], models[1:], slopes[1:], strict=True)
        ]
    if write:
        path = learned.probe_path(signal)
        path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        learned.reset_cache()
        took = time.perf_counter() - started
        print(f"wrote {path} ({path.stat().st_size // 1024} KB) in {took:.0f}s")
    return result


@dataclass
class HeldOut:
    family: str
    n: int
    recall: float
    benign_fpr: float
    auroc: float
    # Scores of the held-out family and of benign test, standardised by the benign test scores
    # of the same fold, so that folds can be pooled into one AUROC.
    z_held: npt.NDArray[np.float64]
    z_benign: npt.NDArray[np.float64]
    fpr_by_benign_family: dict[str, float]
    flag_held: npt.NDArray[np.bool_]  # the held-out family's flags at the operating point
    flag_benign: npt.NDArray[np.bool_]  # benign test flags


@dataclass
class _Fold:
    family: str
    dev: list[npt.NDArray[np.float64]]  # benign dev logits, per head
    held: list[npt.NDArray[np.float64]]  # the held-out family's logits, per head
    test: list[npt.NDArray[np.float64]]  # benign test logits, per head


def _folds(data: Data, c: float) -> list[_Fold]:
    """For each positive family: the heads trained without it, applied to benign dev, the
    family and benign test."""
    out = []
    dev = data.split == "dev"
    test = data.split == "test"
    for name in data.positive_families:
        held = data.family == name
        train = (data.positive & ~held) | (data.split == "train")
        models = fit_heads(data, train, c)
        out.append(
            _Fold(
                name,
                [logits(m, data, dev) for m in models],
                [logits(m, data, held) for m in models],
                [logits(m, data, test) for m in models],
            )
        )
    return out


def _held_out(data: Data, fold: _Fold, fpr: float) -> HeldOut:
    test = data.split == "test"
    ts = union_thresholds(fold.dev, fpr, budgeted(data))
    flag_held = _any_over(fold.held, ts)
    flag_test = _any_over(fold.test, ts)

    # One score per text for the AUROC: the largest head logit over its threshold at 1%, each
    # head in units of its benign dev spread.
    def combined(values: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
        ref = union_thresholds(fold.dev, 0.01, budgeted(data))
        return np.asarray(
            np.max(
                [(v - t) / (d.std() or 1.0) for v, t, d in zip(values, ref, fold.dev, strict=True)],
                axis=0,
            ),
            dtype=np.float64,
        )

    held_scores, test_scores = combined(fold.held), combined(fold.test)
    auroc = roc_auc_score(
        np.r_[np.zeros(len(test_scores)), np.ones(len(held_scores))],
        np.r_[test_scores, held_scores],
    )
    return HeldOut(
        family=fold.family,
        n=len(held_scores),
        recall=float(flag_held.mean()),
        benign_fpr=float(flag_test.mean()),
        auroc=float(auroc),
        z_held=(held_scores - test_scores.mean()) / (test_scores.std() or 1.0),
        z_benign=(test_scores - test_scores.mean()) / (test_scores.std() or 1.0),
        flag_held=flag_held,
        flag_benign=flag_test,
        fpr_by_benign_family={
            fam: float(flag_test[data.family[test] == fam].mean())
            for fam in data.benign_families
            if fam not in corpus.TRAIN_ONLY
        },
    )


def leave_one_out(data: Data, c: float, fpr: float = learned.DEFAULT_FPR) -> list[HeldOut]:
    """For each positive family: train without it, threshold on benign dev, measure it."""
    return [_held_out(data, fold, fpr) for fold in _folds(data, c)]


def heldout_summary(data: Data, rows: list[HeldOut]) -> dict[str, Any]:
    """Pooled recall of the held-out families, the worst one, the mean benign test FPR."""
    worst = min(rows, key=lambda r: r.recall)
    return {
        "heldout_recall": round(sum(r.recall * r.n for r in rows) / sum(r.n for r in rows), 4),
        "heldout_worst_family": worst.family,
        "heldout_worst_recall": round(worst.recall, 4),
        "heldout_benign_fpr": round(float(np.mean([r.benign_fpr for r in rows])), 5),
    }


@dataclass
class BenignHeldOut:
    """A benign family held out of training *and* of the threshold's dev split."""

    family: str
    n: int
    fpr: float  # on every text of the held-out family
    other_fpr: float  # on the benign test split of the other families


def leave_one_benign_out(
    data: Data, c: float, fpr: float = learned.DEFAULT_FPR
) -> list[BenignHeldOut]:
    """For each hard-negative family (:data:`corpus.HARD_BENIGN_FAMILIES`): train on every
    positive and the benign train split without it, set the threshold on benign dev without it,
    and measure the FPR on all of its texts (a style of benign text never trained or tuned on)."""
    out = []
    for name in corpus.HARD_BENIGN_FAMILIES.get(data.signal, ()):
        held = data.family == name
        if not held.any():
            continue
        train = data.positive | ((data.split == "train") & ~held)
        dev = (data.split == "dev") & ~held
        test = (data.split == "test") & ~held
        models = fit_heads(data, train, c)
        ts = union_thresholds([logits(m, data, dev) for m in models], fpr, budgeted(data))
        flag_held = _any_over([logits(m, data, held) for m in models], ts)
        flag_test = _any_over([logits(m, data, test) for m in models], ts)
        out.append(
            BenignHeldOut(name, int(held.sum()), float(flag_held.mean()), float(flag_test.mean()))
        )
    return out


def pooled_auroc(rows: list[HeldOut]) -> float:
    """AUROC of every held-out family (each scored by the model trained without it) against
    benign test, pooled."""
    positives = np.concatenate([r.z_held for r in rows])
    negatives = rows[0].z_benign
    labels = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    return float(roc_auc_score(labels, np.r_[negatives, positives]))
