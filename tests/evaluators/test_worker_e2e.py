"""From ingest to a score with real Celery workers: the ingest follow-up hands the processed
calls to the ``evaluate`` queue by name, a worker on that queue selects the evaluator's jobs and
asks the (fake) judge; the score shows in the call detail and the judge call is not a call."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.core.errors import ApplicationError
from apps.evaluators import services
from apps.evaluators.models import JudgeCall, Score
from apps.traces.models import Call
from tests.conftest import ROOT, run_worker, wait_for
from tests.evaluators.conftest import openai_connection
from tests.evaluators.fakes import FakeLLM, openai_answer
from tests.ingest.test_ingest_api import call_event, post


@pytest.fixture
def evaluate_worker(django_db_setup: None) -> Iterator[subprocess.Popen[bytes]]:
    """A worker on the ingest and evaluate queues, on the test database."""
    private = {"DRIFTLINE_LLM_ALLOW_PRIVATE": "1"}  # the fake judge listens on 127.0.0.1
    with run_worker(
        "ingest,evaluate", log_name="evaluate-worker.log", node="evaluate-test@%h", env=private
    ) as process:
        yield process


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ingest_to_score_through_the_evaluate_queue(
    project: Any, ingest_key: str, read_key: str, llm: FakeLLM, allow_private: None,
    evaluate_worker: Any,
) -> None:  # fmt: skip
    conn = openai_connection(project, llm)
    services.evaluator_create(
        project=project, name="helpful", template="helpfulness", connection=conn
    )
    llm.answer(*[openai_answer({"reason": f"ok {i}", "score": 0.5 + i / 10}) for i in range(3)])
    events = [call_event(environment="prod") for _ in range(3)]
    assert post(APIClient(), ingest_key, {"batch": events}).status_code in (200, 207)
    assert wait_for(lambda: Score.objects.filter(project=project).count() == 3, timeout=90), (
        ROOT / ".driftline" / "test" / "evaluate-worker.log"
    ).read_text()[-3000:]
    assert len(llm.requests) == 3
    assert JudgeCall.objects.filter(project=project).count() == 3
    assert Call.objects.filter(project=project).count() == 3  # judge calls are not calls
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    detail = client.get(f"/api/v1/calls/{events[0]['id']}").json()
    assert detail["scores"][0]["evaluator"] == "helpful"
    assert detail["scores"][0]["reason"].startswith("ok ")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ingest_to_a_score_alert_in_slack(
    project: Any, ingest_key: str, llm: FakeLLM, allow_private: None, evaluate_worker: Any,
    settings: Any,
) -> None:  # fmt: skip
    """Judge scores on live calls drive a ``score`` rule that posts to (fake) Slack."""
    from apps.alerts.models import Incident, Notification
    from apps.alerts.services import channels, delivery, evaluation, rules
    from tests.alerts.fakes import fake_server

    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = True
    conn = openai_connection(project, llm)
    services.evaluator_create(
        project=project, name="helpful", template="helpfulness", connection=conn
    )
    llm.answer(*[openai_answer({"reason": "vague", "score": 0.2}) for _ in range(4)])
    events = [call_event(environment="prod") for _ in range(4)]
    assert post(APIClient(), ingest_key, {"batch": events}).status_code in (200, 207)
    assert wait_for(lambda: Score.objects.filter(project=project).count() == 4, timeout=90)
    with fake_server() as slack:
        channel, _ = channels.channel_create(
            project=project, kind="slack", name="#quality", url=slack.url()
        )
        rule = rules.rule_create(
            project=project, name="Helpfulness fell", kind="score", operator="<",
            threshold=0.5, window="1h", min_samples=3, channels=[channel.pk],
            params={"evaluator": "helpful", "aggregate": "mean"},
        )  # fmt: skip
        outcome = evaluation.rule_evaluate(rule_id=rule.pk)
        assert [g.severity for g in outcome.groups] == ["warning"]
        incident = Incident.objects.get(rule=rule)
        assert incident.value == pytest.approx(0.2)
        assert "Evaluator helpful: mean score 0.200 over 4 scored calls" in incident.summary
        (notification,) = Notification.objects.filter(channel=channel)
        outcome = delivery.notification_deliver(notification_id=notification.pk)
        # Sent here, or (seen once in a full-suite run) not by this call: exactly one message
        # reaches Slack either way, and a failure shows what delivery said and the row.
        assert wait_for(lambda: len(slack.requests) >= 1, timeout=15), (
            outcome,
            Notification.objects.filter(pk=notification.pk).values().first(),
        )
        assert len(slack.requests) == 1
        assert "helpful" in slack.requests[0].body.decode()
    # A rule without its evaluator's name is refused, naming the field.
    with pytest.raises(ApplicationError) as refused:
        rules.rule_create(project=project, name="x", kind="score", threshold=0.5)
    assert refused.value.field == "params"
