"""Toxicity from a weighted lexicon shipped in the repository (nothing is downloaded).

The lexicon (``apps/quality/data/toxicity_lexicon.json``) holds single words and phrases of up to
five words with a weight in 0..1; sources and licences are listed in the file and it is rebuilt by
``bench/quality/build_lexicon.py``. The score of a text is a noisy-OR over the distinct terms
found, ``1 - prod(1 - w)``: one severe term reaches 0.9, one mild term stays at 0.3, and repeating
the same word does not pile up. A lexicon misses toxicity without bad words (sarcasm, veiled
threats); see the bench for how much.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from apps.quality.scorers.base import CallContext, Scorer, clip

LEXICON_PATH = Path(__file__).resolve().parent.parent / "data" / "toxicity_lexicon.json"
THRESHOLD = 0.5
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


class ToxicityScorer(Scorer):
    name = "toxicity"

    def score(self, call: CallContext) -> Mapping[str, Any]:
        prompt_score = toxicity(call.untrusted_text)
        response_score = toxicity(call.response)
        score = max(prompt_score, response_score)
        return {
            "toxicity": score,
            "toxicity_prompt": prompt_score,
            "toxicity_response": response_score,
            "flags": ["toxicity"] if score >= THRESHOLD else [],
        }
