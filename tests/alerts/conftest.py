"""Fixtures of the alerts tests: a fake Slack, calls written through the ORM, channels, rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from apps.alerts.models import Channel
from apps.alerts.services import channels, rules
from apps.traces.models import Call, Feedback
from apps.traces.rollups import rollup_add_calls, rollup_flush
from tests.alerts.fakes import FakeServer, fake_server


@pytest.fixture
def allow_private(settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def slack() -> Iterator[FakeServer]:
    with fake_server() as server:
        yield server


@pytest.fixture
def now() -> datetime:
    return timezone.now()


def add_calls(
    project,
    *,
    count: int,
    at: datetime,
    errors: int = 0,
    spread_s: float = 60.0,
    **fields,
) -> list[Call]:
    """``count`` calls spread over the ``spread_s`` seconds before ``at``; the first
    ``errors`` of them failed."""
    calls = []
    for i in range(count):
        values = {
            "model": "gpt-4o-mini",
            "release": "v1",
            "environment": "production",
            "prompt": f"question {i}",
            "latency_ms": 100.0,
            "cost_usd": 0.001,
            "total_tokens": 100,
        }
        values.update(fields)
        calls.append(
            Call(
                project=project,
                id=uuid.uuid4(),
                start_time=at - timedelta(seconds=spread_s * (i + 1) / (count + 1)),
                status="error" if i < errors else "ok",
                error="RateLimitError: upstream 429" if i < errors else "",
                **values,
            )
        )
    Call.objects.bulk_create(calls)
    _roll_up(project, calls)
    return calls


def _roll_up(project, calls) -> None:
    """What the follow-up and the next flush do in production: long windows read rollups."""
    rollup_add_calls(project_id=project.pk, call_ids=[c.id for c in calls])
    rollup_flush(project_id=project.pk, wait=True)


def add_feedback(project, calls, *, score: float) -> None:
    Feedback.objects.bulk_create(
        [Feedback(project=project, call_id=c.id, score=score) for c in calls]
    )
    _roll_up(project, calls)


@pytest.fixture
def slack_channel(project, slack, allow_private) -> Channel:
    channel, _ = channels.channel_create(
        project=project, kind="slack", name="#alerts", url=slack.url()
    )
    return channel


@pytest.fixture
def error_rule(project, slack_channel):
    return rules.rule_create(
        project=project,
        name="Error rate",
        kind="metric",
        metric="error_rate",
        operator=">",
        threshold=0.2,
        window="5m",
        min_samples=20,
        renotify_interval=0,
        channels=[slack_channel.pk],
    )
