"""Fixtures of the evaluators tests: fake providers, connections, evaluators, calls."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.evaluators import services
from apps.evaluators.models import Evaluator, LLMConnection
from apps.traces.models import Call
from tests.evaluators.fakes import FakeLLM, fake_llm


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


@pytest.fixture
def allow_private(settings: Any) -> None:
    settings.DRIFTLINE_LLM_ALLOW_PRIVATE = True


@pytest.fixture
def no_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Jobs stay in the table (tests run them by hand); returns the ids that were enqueued."""
    sent: list[int] = []
    monkeypatch.setattr(
        "apps.evaluators.enqueue.evaluate_jobs", lambda *, job_ids: sent.extend(job_ids)
    )
    return sent


def make_call(project: Any, *, at: datetime | None = None, **fields: Any) -> Call:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "model": "gpt-4o-mini",
        "prompt": "How do I reset my password?",
        "response": "Open Settings, choose Security and click Reset password.",
        "start_time": at or timezone.now() - timedelta(minutes=5),
        "kind": "llm",
    }
    values.update(fields)
    return Call.objects.create(project=project, **values)


def openai_connection(project: Any, llm: FakeLLM, **kw: Any) -> LLMConnection:
    return services.connection_create(
        project=project,
        name=kw.pop("name", "fake-openai"),
        provider="openai",
        base_url=llm.base_url + "/v1",
        api_key=kw.pop("api_key", "sk-test-0123456789abcd"),
        default_model=kw.pop("default_model", "gpt-4o-mini"),
    )


def anthropic_connection(project: Any, llm: FakeLLM) -> LLMConnection:
    return services.connection_create(
        project=project,
        name="fake-anthropic",
        provider="anthropic",
        base_url=llm.base_url,
        api_key="sk-ant-test-0123456789",
        default_model="claude-3-5-haiku-latest",
    )


def judge(project: Any, conn: LLMConnection, **kw: Any) -> Evaluator:
    data: dict[str, Any] = {"name": "helpfulness", "template": "helpfulness", "connection": conn}
    data.update(kw)
    return services.evaluator_create(project=project, **data)
