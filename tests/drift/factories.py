"""Calls with stored vectors for drift tests, without the model.

Vectors are drawn around fixed random directions (one per intent) on the unit sphere, with
prompts made of that intent's words, so clusters, labels and shifts are known in advance and
a check takes well under a second. The model itself is exercised by the end-to-end test.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from apps.accounts.models import Project
from apps.embeddings.models import CallEmbedding
from apps.traces.models import Call, EmbedStatus

KEY = "sentence-transformers:all-MiniLM-L6-v2:384"
WORDS = {
    "weather": ["weather", "forecast", "rain", "sunny", "temperature"],
    "restaurant": ["restaurant", "table", "reservation", "dinner", "booking"],
    "music": ["playlist", "song", "album", "track", "artist"],
    "refund": ["refund", "invoice", "charge", "payment", "money"],
}
_CENTRES = np.random.default_rng(42).normal(size=(len(WORDS), 384))
CENTRES = {name: c / np.linalg.norm(c) for name, c in zip(WORDS, _CENTRES, strict=True)}


# The intent mix of the shared baseline fixture (tests/drift/conftest.py).
BASE_MIX = {"weather": 70, "restaurant": 70, "music": 70}


def intent_vectors(intent: str, n: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(size=(n, 384)) * 0.06
    vectors = CENTRES[intent][None, :] + noise
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def seed_calls(
    project: Project,
    mix: dict[str, int],
    *,
    start: datetime,
    end: datetime,
    seed: int = 0,
    provider_key: str = KEY,
) -> dict[str, list[uuid.UUID]]:
    """Calls spread over [start, end) with ``mix[intent]`` of each; returns ids by intent."""
    rng = np.random.default_rng(seed)
    total = sum(mix.values())
    span = (end - start) / max(total, 1)
    order = rng.permutation([name for name, count in mix.items() for _ in range(count)])
    calls, rows = [], []
    ids: dict[str, list[uuid.UUID]] = {name: [] for name in mix}
    vectors = {name: iter(intent_vectors(name, count, rng)) for name, count in mix.items()}
    for i, intent in enumerate(order):
        words: Sequence[str] = WORDS[str(intent)]
        call_id = uuid.uuid4()
        when = start + span * i
        prompt = " ".join(rng.choice(words, 3)) + f" please {i}"
        calls.append(
            Call(
                project=project,
                id=call_id,
                prompt=prompt,
                response="ok",
                start_time=when,
                embed_status=EmbedStatus.DONE,
            )
        )
        rows.append(
            CallEmbedding(
                project=project,
                call_id=call_id,
                start_time=when,
                kind="prompt",
                text_hash=uuid.uuid4().hex,
                vector=next(vectors[str(intent)]).astype(np.float32),
                provider_key=provider_key,
            )
        )
        ids[str(intent)].append(call_id)
    Call.objects.bulk_create(calls)
    CallEmbedding.objects.bulk_create(rows)
    return ids


def window_of(now: datetime, hours: int = 24) -> tuple[datetime, datetime]:
    return now - timedelta(hours=hours), now
