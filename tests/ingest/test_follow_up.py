"""The ingest follow-up in a real Celery worker, and the sweeper that recovers lost messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from apps.accounts.models import Project
from apps.ingest.services import ingest_events
from apps.ingest.tasks import sweep_unprocessed_calls
from apps.traces.models import Call, RollupDirty
from apps.traces.rollup_selectors import rollup_totals
from apps.traces.rollups import rollup_flush
from tests.conftest import wait_for


def _events(n: int, **body: object) -> list[dict[str, object]]:
    return [
        {
            "type": "call",
            "id": str(uuid.uuid4()),
            "body": {
                "model": "gpt-4o-mini",
                "prompt": f"What is the weather in city {i}?",
                "response": "Sunny.",
                "input_tokens": 1000,
                "output_tokens": 500,
                "start_time": datetime.now(UTC).isoformat(),
                **body,
            },
        }
        for i in range(n)
    ]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_processes_stored_calls(project: Project, celery_worker_process: object) -> None:
    ingest_events(project=project, events=_events(5))
    assert wait_for(
        lambda: Call.objects.filter(project=project, processed_at__isnull=False).count() == 5
    )
    call = Call.objects.filter(project=project).first()
    assert call is not None
    assert call.cost_source == "computed"
    assert call.cost_usd is not None
    assert call.cost_usd > 0
    assert call.signals["refusal"] is False
    # The follow-up marked the calls' minute for the rollups in the same commit; a flush makes
    # the overview's numbers (the cost computed by the follow-up included).
    assert RollupDirty.objects.filter(project=project).exists()
    rollup_flush(project_id=project.pk, wait=True)
    totals = rollup_totals(
        project=project,
        start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(minutes=1),
    )
    assert totals.calls.calls == 5
    assert totals.calls.cost_usd == pytest.approx(5 * call.cost_usd)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sweeper_recovers_a_call_whose_message_was_lost(
    project: Project, celery_worker_process: object
) -> None:
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # Store without a message reaching any worker: the queue is emptied before it is consumed.
    from apps.ingest import services

    original = services.enqueue_follow_up
    services.enqueue_follow_up = lambda **_: None  # type: ignore[assignment]
    try:
        ingest_events(project=project, events=_events(3))
    finally:
        services.enqueue_follow_up = original
    broker.delete("ingest")
    Call.objects.filter(project=project).update(
        received_at=datetime.now(UTC) - timedelta(minutes=10)
    )
    assert Call.objects.filter(project=project, processed_at__isnull=True).count() == 3
    sweep_unprocessed_calls.delay()
    assert wait_for(
        lambda: Call.objects.filter(project=project, processed_at__isnull=True).count() == 0
    )
