"""End to end with a real Celery worker and Redis: beat's dispatch -> evaluation -> delivery to a
local server playing Slack (429 with Retry-After, then 200), then recovery."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.alerts import tasks
from apps.alerts.models import AlertRule, Incident, IncidentState, Notification
from apps.alerts.services import channels, delivery, rules
from apps.traces.models import Call
from tests.alerts.conftest import add_calls
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _statuses() -> list[str]:
    return list(Notification.objects.order_by("id").values_list("status", flat=True))


def test_beat_to_slack_exactly_once_with_429_then_one_resolve(
    celery_worker_process, project, slack, allow_private
):
    slack.answer((429, "rate_limited", {"Retry-After": "1"}))
    channel, _ = channels.channel_create(
        project=project, kind="slack", name="#alerts", url=slack.url()
    )
    rule = rules.rule_create(
        project=project,
        name="Error rate",
        metric="error_rate",
        threshold=0.2,
        window="5m",
        min_samples=20,
        renotify_interval=0,
        channels=[channel.pk],
    )
    add_calls(project, count=30, errors=10, at=timezone.now())

    # What beat does every 15 s: claim due rules, one evaluation task each, on the worker.
    tasks.dispatch_due_rules.apply_async()
    assert wait_for(lambda: _statuses() == ["sent"], timeout=60), (_statuses(), slack.requests)
    incident = Incident.objects.get()
    assert incident.state == IncidentState.FIRING
    notification = Notification.objects.get()
    assert (notification.attempts, notification.http_status) == (2, 200)
    assert [r.json()["blocks"][0]["text"]["text"] for r in slack.requests] == [
        "WARNING: Error rate",
        "WARNING: Error rate",
    ]  # the 429'd attempt, then the one message Slack accepted
    rule.refresh_from_db()
    assert rule.eval_state == "idle"
    assert rule.last_evaluated_at is not None

    # Recovery: the errors stop; the next evaluation resolves with one message.
    Call.objects.filter(project=project, status="error").delete()
    add_calls(project, count=30, errors=0, at=timezone.now())
    AlertRule.objects.filter(pk=rule.pk).update(next_check_at=timezone.now())
    tasks.dispatch_due_rules.apply_async()
    assert wait_for(lambda: _statuses() == ["sent", "sent"], timeout=60), _statuses()
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert len(slack.requests) == 3
    assert slack.requests[-1].json()["blocks"][0]["text"]["text"] == "Resolved: Error rate"

    # Nothing is left for the sweeper, and evaluating again sends nothing more.
    assert delivery.notifications_requeue() == []
    AlertRule.objects.filter(pk=rule.pk).update(next_check_at=timezone.now())
    tasks.evaluate_rule.apply_async((rule.pk,))
    assert wait_for(
        lambda: AlertRule.objects.get(pk=rule.pk).last_evaluated_at > incident.resolved_at,
        timeout=60,
    )
    assert Notification.objects.count() == 2
    assert len(slack.requests) == 3
