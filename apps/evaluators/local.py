"""Local evaluators (no LLM): a registry of scorers over a :class:`~.render.CallView`.

A scorer is a plug-in: a function ``(call) -> LocalVerdict`` registered with :func:`scorer`
under a name, a kind (``embedding`` when it needs the embedding model, ``python`` otherwise) and
a score type. Evaluators of kind ``embedding`` / ``python`` name one in ``scorer``.

Built in:

* ``answer_relevance`` (embedding, numeric): cosine similarity of question and answer in the
  bundled all-MiniLM-L6-v2 space, mapped linearly from [0.15, 0.65] to [0, 1]. The two points
  are where unrelated pairs and on-topic answers sit for that model (hand-set, not fitted on
  labelled data); pass at 0.5.
* ``groundedness_embedding`` (embedding, numeric): the share of the response's sentences whose
  nearest context chunk has cosine >= 0.5; the reason lists the least supported sentence.
* ``language_mismatch`` (python, boolean): fails when prompt and response are written in
  different languages, by Unicode script and, for Latin script, by stop-word profiles of
  English, French, German, Spanish, Italian, Portuguese and Dutch. Short texts (< 3 words) pass.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from apps.evaluators.render import CallView


class LocalScorerError(Exception):
    """The call cannot be scored (nothing to compare); an evaluation error, not a score."""


@dataclass(frozen=True)
class LocalVerdict:
    value: float | None
    label: str
    reason: str
    passed: bool | None


@dataclass(frozen=True)
class LocalScorer:
    name: str
    kind: str  # "embedding" | "python"
    score_type: str  # "numeric" | "boolean"
    description: str
    fn: Callable[[CallView], LocalVerdict]


SCORERS: dict[str, LocalScorer] = {}


def scorer(
    name: str, *, kind: str, score_type: str, description: str
) -> Callable[[Callable[[CallView], LocalVerdict]], Callable[[CallView], LocalVerdict]]:
    def decorate(fn: Callable[[CallView], LocalVerdict]) -> Callable[[CallView], LocalVerdict]:
        SCORERS[name] = LocalScorer(name, kind, score_type, description, fn)
        return fn

    return decorate


def _embed(texts: list[str]) -> np.ndarray:
    from apps.embeddings.providers import get_provider

    return get_provider().embed(texts)


RELEVANCE_LOW, RELEVANCE_HIGH = 0.15, 0.65


@scorer(
    "answer_relevance",
    kind="embedding",
    score_type="numeric",
    description="Question-answer embedding similarity (all-MiniLM-L6-v2), 0..1",
)
def answer_relevance(call: CallView) -> LocalVerdict:
    question, answer = call.prompt_text().strip(), call.response.strip()
    if not question or not answer:
        raise LocalScorerError("the call has no prompt or no response")
    vectors = _embed([question, answer])
    cosine = float(vectors[0] @ vectors[1])
    value = min(max((cosine - RELEVANCE_LOW) / (RELEVANCE_HIGH - RELEVANCE_LOW), 0.0), 1.0)
    return LocalVerdict(value, "", f"question-answer cosine similarity {cosine:.2f}", value >= 0.5)


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
GROUNDED_COSINE = 0.5


def _chunks(text: str, *, size: int = 60) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size // 2)] or []


@scorer(
    "groundedness_embedding",
    kind="embedding",
    score_type="numeric",
    description="Share of response sentences supported by the retrieved context (embeddings)",
)
def groundedness_embedding(call: CallView) -> LocalVerdict:
    context = call.context().strip()
    if not context:
        raise LocalScorerError("the call carries no retrieved context ({{context}} is empty)")
    sentences = [s.strip() for s in _SENTENCE.split(call.response) if len(s.split()) >= 3]
    if not sentences:
        raise LocalScorerError("the response has no sentence to check")
    chunks = _chunks(context)
    vectors = _embed(sentences + chunks)
    sims = vectors[: len(sentences)] @ vectors[len(sentences) :].T
    best = sims.max(axis=1)
    supported = best >= GROUNDED_COSINE
    value = float(supported.mean())
    worst = int(best.argmin())
    reason = (
        f"{int(supported.sum())} of {len(sentences)} sentences supported by the context; least "
        f"supported ({best[worst]:.2f}): {sentences[worst][:200]}"
    )
    return LocalVerdict(value, "", reason, value >= 0.5)


_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and is are to of in that it you for with this was on be not have",
        "fr": "le la les et est des une un que pour dans pas vous il elle du au sur",
        "de": "der die das und ist nicht ein eine zu ich sie mit den von auf für es",
        "es": "el la los las y es que de en un una por para con no se del su",
        "it": "il lo la gli le e è che di un una per con non sono del della si",
        "pt": "o a os as e é que de em um uma para com não do da se por",
        "nl": "de het een en is van niet dat ik je op te zijn met voor",
    }.items()
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _script(text: str) -> str | None:
    counts: dict[str, int] = {}
    for char in text:
        if not char.isalpha():
            continue
        try:
            name = unicodedata.name(char)
        except ValueError:
            continue
        script = name.split(" ", 1)[0]
        if script in ("CJK", "HIRAGANA", "KATAKANA"):
            script = "CJK"
        counts[script] = counts.get(script, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


def detect_language(text: str) -> str | None:
    """A coarse language id: a Unicode script name, or a Latin-script language code."""
    script = _script(text)
    if script != "LATIN":
        return script
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3:
        return None
    hits = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(hits, key=lambda k: hits[k])
    return best if hits[best] >= 2 else None


@scorer(
    "language_mismatch",
    kind="python",
    score_type="boolean",
    description="Fails when the response is in another language than the prompt",
)
def language_mismatch(call: CallView) -> LocalVerdict:
    prompt, response = call.prompt_text(), call.response
    if not prompt.strip() or not response.strip():
        raise LocalScorerError("the call has no prompt or no response")
    asked, answered = detect_language(prompt), detect_language(response)
    if asked is None or answered is None or asked == answered:
        return LocalVerdict(1.0, "pass", f"same language ({asked or answered or 'unknown'})", True)
    return LocalVerdict(0.0, "fail", f"prompt in {asked}, response in {answered}", False)
