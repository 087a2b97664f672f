"""Calls with known texts, embedded by the real model (a few dozen texts: a second or two)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.accounts.models import Project
from apps.embeddings.providers import EmbeddingProvider, get_provider
from apps.traces.models import Call

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

WEATHER = [
    "what will the weather be like in paris tomorrow",
    "is it going to rain in london this weekend",
    "forecast for snow in denver on friday",
    "how hot will it get in madrid today",
]
RESTAURANT = [
    "book a table for two at an italian restaurant tonight",
    "reserve a spot for four people at a sushi place",
    "i need a dinner reservation for six at 8 pm",
    "find me a table at a steakhouse for saturday",
]
MUSIC = [
    "add this song to my workout playlist",
    "put the new taylor swift album on my road trip playlist",
    "add some jazz tracks to my evening playlist",
    "include bohemian rhapsody in my classic rock playlist",
]


@pytest.fixture(scope="session")
def provider() -> EmbeddingProvider:
    return get_provider()


def make_calls(
    project: Project,
    prompts: Sequence[str],
    *,
    response: str = "ok",
    start_time: datetime = T0,
    **fields: Any,
) -> list[Call]:
    calls = [
        Call(
            project=project,
            id=uuid.uuid4(),
            prompt=prompt,
            response=response,
            start_time=start_time + timedelta(minutes=i),
            **fields,
        )
        for i, prompt in enumerate(prompts)
    ]
    return Call.objects.bulk_create(calls)
