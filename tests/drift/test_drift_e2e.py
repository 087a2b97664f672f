"""End to end: SNIPS traffic ingested, embedded by the real model in a real worker, and a
drift check that finds an injected intent shift and names the intent that grew."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import Project
from apps.drift.models import CheckStatus, DriftCheck
from apps.embeddings.models import CallEmbedding
from apps.ingest.services import ingest_events
from apps.lib.datasets import load_snips
from apps.traces.models import Call, EmbedStatus
from tests.conftest import wait_for

INTENTS = ("GetWeather", "BookRestaurant", "PlayMusic", "RateBook")
# 300 reference calls, 25% each: windows up to half the reference (150) are tested whole, so
# the check does not depend on which subsample a random draw picks.
BASELINE_PER_INTENT = 75
CURRENT = {"GetWeather": 90, "BookRestaurant": 20, "PlayMusic": 20, "RateBook": 20}  # 60% weather


def _events(
    texts: list[tuple[str, str]], *, start: datetime, span: timedelta
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    events: list[dict[str, Any]] = []
    truth: dict[str, str] = {}
    step = span / len(texts)
    for i, (text, intent) in enumerate(texts):
        call_id = str(uuid.uuid4())
        truth[call_id] = intent
        events.append(
            {
                "type": "call",
                "id": call_id,
                "body": {
                    "prompt": text,
                    "response": "Done.",
                    "model": "gpt-4o-mini",
                    "start_time": (start + step * i).isoformat(),
                },
            }
        )
    return events, truth


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ingested_traffic_is_embedded_and_the_grown_intent_is_named(
    project: Project, celery_worker_process: object
) -> None:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, intent in load_snips():
        by_intent[intent].append(text)
    rng = random.Random(7)
    pools = {intent: rng.sample(by_intent[intent], 170) for intent in INTENTS}
    reference = [(pools[i][j], i) for i in INTENTS for j in range(BASELINE_PER_INTENT)]
    current = [
        (pools[i][BASELINE_PER_INTENT + j], i) for i, count in CURRENT.items() for j in range(count)
    ]
    rng.shuffle(reference)
    rng.shuffle(current)
    now = timezone.now()
    ref_events, truth = _events(reference, start=now - timedelta(days=4), span=timedelta(days=2))
    cur_events, cur_truth = _events(
        current, start=now - timedelta(hours=6), span=timedelta(hours=5)
    )
    truth.update(cur_truth)
    for events in (ref_events, cur_events):
        assert ingest_events(project=project, events=events).accepted == len(events)

    total = len(reference) + len(current)
    assert wait_for(
        lambda: (
            Call.objects.filter(project=project, embed_status=EmbedStatus.DONE).count() == total
        ),
        timeout=240,
        interval=1.0,
    ), Counter(Call.objects.filter(project=project).values_list("embed_status", flat=True))
    assert CallEmbedding.objects.filter(project=project, kind="prompt").count() == total

    out = StringIO()
    call_command("drift_check", "--project", project.slug, stdout=out)
    report = out.getvalue()
    check = DriftCheck.objects.get(project=project)
    assert check.status == CheckStatus.TESTED, report
    assert check.n == len(current)
    assert check.tested_n == len(current), report
    assert check.drifted, report
    grew = [s for s in check.intent_shares if s["moved"] == "grew"]
    assert grew, report
    # The cluster that grew is the weather intent: its example calls are weather questions.
    examples = Counter(truth[i] for i in grew[0]["example_call_ids"])
    assert examples.most_common(1)[0][0] == "GetWeather", (examples, report)
    assert f"grew   {grew[0]['name']!r}" in report
