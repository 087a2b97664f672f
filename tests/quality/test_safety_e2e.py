"""The whole safety path with a real Celery worker, PostgreSQL, Redis and the real model:
ingest -> follow-up (heuristics) -> embed worker -> learned probes -> flags on the call ->
the overview's rollup counts -> a safety-flag-rate alert delivered to a local fake Slack."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Project
from apps.alerts import tasks as alert_tasks
from apps.alerts.models import Notification
from apps.alerts.services import channels as alert_channels
from apps.alerts.services import rules as alert_rules
from apps.ingest.services import ingest_events
from apps.traces.models import Call
from apps.traces.rollup_selectors import rollup_totals
from apps.traces.rollups import rollup_flush
from tests.alerts.fakes import fake_server
from tests.conftest import wait_for
from tests.quality.test_learned import CAUGHT_ATTACKS as ATTACKS
from tests.quality.test_learned import CLEAN_BENIGN as BENIGN

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _event(prompt: str) -> dict[str, object]:
    return {
        "type": "call",
        "id": str(uuid.uuid4()),
        "body": {
            "model": "gpt-4o-mini",
            "prompt": prompt,
            "response": "Sure, here you go.",
            "start_time": datetime.now(UTC).isoformat(),
        },
    }


def _scored(project: Project) -> int:
    return Call.objects.filter(
        project=project, signals__signal_source="embedding+heuristic"
    ).count()


def test_ingest_to_safety_alert(
    project: Project, celery_worker_process: object, settings: object
) -> None:
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True  # type: ignore[attr-defined]
    prompts = [*ATTACKS, *BENIGN]
    ingest_events(project=project, events=[_event(p) for p in prompts])
    # The embed worker loads the model on its first task: allow it a while on 2 shared cores.
    assert wait_for(lambda: _scored(project) == len(prompts), timeout=240), [
        (c.prompt[:30], c.embed_status, c.signals.get("signal_source"))
        for c in Call.objects.filter(project=project)
    ]
    by_prompt = {c.prompt: c for c in Call.objects.filter(project=project)}
    for prompt in ATTACKS:
        call = by_prompt[prompt]
        assert call.flagged, (prompt[:40], call.signals)
        assert call.injection is not None
        assert call.injection >= 0.5
    for prompt in BENIGN:
        assert not by_prompt[prompt].flagged, (prompt[:40], by_prompt[prompt].signals["flags"])

    # The overview reads the rollups: the embed worker's rescoring marked their minutes.
    rollup_flush(project_id=project.pk, wait=True)
    totals = rollup_totals(
        project=project,
        start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(minutes=1),
    )
    assert totals.calls.calls == len(prompts)
    assert totals.calls.flagged == len(ATTACKS)

    with fake_server() as slack:
        channel, _ = alert_channels.channel_create(
            project=project, kind="slack", name="#safety", url=slack.url()
        )
        alert_rules.rule_create(
            project=project,
            name="Safety flags",
            metric="safety_flag_rate",
            threshold=0.2,
            window="5m",
            min_samples=5,
            renotify_interval=0,
            channels=[channel.pk],
        )
        alert_tasks.dispatch_due_rules.apply_async()
        assert wait_for(
            lambda: list(Notification.objects.values_list("status", flat=True)) == ["sent"],
            timeout=60,
        )
        assert "Safety flags" in slack.requests[0].json()["blocks"][0]["text"]["text"]
