"""Delivery to a local server playing Slack: 429 + Retry-After, 500, 404, exactly-once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.alerts.models import (
    Channel,
    Incident,
    IncidentState,
    Notification,
    NotificationStatus,
)
from apps.alerts.services import channels, delivery, evaluation, rules
from apps.alerts.transports import webhook
from tests.alerts.conftest import add_calls

pytestmark = pytest.mark.django_db


def _deliver(notification_id, at):
    return delivery.notification_deliver(notification_id=notification_id, now=at)


def _only_notification():
    (notification,) = Notification.objects.all()
    return notification


def test_fire_429_retry_exactly_one_message_then_one_resolve(
    project, slack, slack_channel, error_rule, now, settings
):
    slack.answer((429, "rate_limited", {"Retry-After": "2"}))
    add_calls(project, count=30, errors=10, at=now)

    outcome = evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    assert [g.state for g in outcome.groups] == [IncidentState.FIRING]
    (incident,) = Incident.objects.all()
    assert incident.state == IncidentState.FIRING
    assert incident.sample_count == 30
    notification = _only_notification()

    first = _deliver(notification.pk, now)
    assert first.status == NotificationStatus.RETRY
    assert first.retry_in == pytest.approx(2.0)
    slack_channel.refresh_from_db()
    assert slack_channel.paused_until is not None
    assert slack_channel.enabled

    # The task delivered twice (broker redelivery) before Retry-After: nothing is sent.
    again = _deliver(notification.pk, now + timedelta(seconds=1))
    assert again.status == NotificationStatus.RETRY
    assert len(slack.requests) == 1

    sent = _deliver(notification.pk, now + timedelta(seconds=3))
    assert sent.status == NotificationStatus.SENT
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.http_status) == (
        "sent",
        2,
        200,
    )
    assert [(h["outcome"], h["http_status"]) for h in notification.history] == [
        ("transient error", 429),
        ("sent", 200),
    ]
    # Redelivered after success: still one message.
    assert _deliver(notification.pk, now + timedelta(seconds=4)).status == "sent"
    assert len(slack.requests) == 2  # the 429 and the one message Slack accepted
    payload = slack.requests[-1].json()
    assert "Error rate" in payload["blocks"][0]["text"]["text"]
    assert "33.3%" in str(payload["blocks"])
    button = next(b for b in payload["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["url"] == (
        f"{settings.DRIFTLINE_BASE_URL}/alerts/incidents/{incident.pk}/?project=support-bot"
    )
    examples = next(b for b in payload["blocks"] if "Example calls" in str(b))
    assert f"{settings.DRIFTLINE_BASE_URL}/calls/" in examples["text"]["text"]

    # Still failing a minute later: no new message (re-notify off).
    later = now + timedelta(minutes=1)
    add_calls(project, count=30, errors=10, at=later)
    assert evaluation.rule_evaluate(rule_id=error_rule.pk, now=later).notification_ids == []

    # Recovery: a healthy window resolves the incident with exactly one message.
    recovered = now + timedelta(minutes=20)
    add_calls(project, count=40, errors=0, at=recovered)
    outcome = evaluation.rule_evaluate(rule_id=error_rule.pk, now=recovered)
    assert len(outcome.notification_ids) == 1
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert _deliver(outcome.notification_ids[0], recovered).status == "sent"
    assert (
        evaluation.rule_evaluate(
            rule_id=error_rule.pk, now=recovered + timedelta(minutes=1)
        ).notification_ids
        == []
    )
    assert len(slack.requests) == 3
    resolved = slack.requests[-1].json()
    assert resolved["blocks"][0]["text"]["text"].startswith("Resolved")
    assert [e.kind for e in incident.events.all()] == ["firing", "resolved"]


def test_404_disables_the_channel_with_its_reason(project, slack, slack_channel, error_rule, now):
    slack.answer((404, "channel_not_found", {}))
    add_calls(project, count=30, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    outcome = _deliver(_only_notification().pk, now)
    assert outcome.status == NotificationStatus.FAILED
    slack_channel.refresh_from_db()
    assert slack_channel.enabled is False
    assert "404" in slack_channel.disabled_reason
    assert "channel_not_found" in slack_channel.disabled_reason
    notification = _only_notification()
    assert notification.http_status == 404
    assert "channel_not_found" in notification.error

    # Later events do not even create rows for a disabled channel; a stray row is skipped.
    stray = Notification.objects.create(
        project=project, channel=slack_channel, dedupe_key="stray", event=notification.event
    )
    assert _deliver(stray.pk, now).status == NotificationStatus.SKIPPED
    assert len(slack.requests) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(410, "channel_is_archived"), (403, "invalid_token"), (403, "action_prohibited")],
)
def test_permanent_slack_errors_disable(
    project, slack, slack_channel, error_rule, now, status, body
):
    slack.answer((status, body, {}))
    add_calls(project, count=30, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    assert _deliver(_only_notification().pk, now).status == NotificationStatus.FAILED
    slack_channel.refresh_from_db()
    assert not slack_channel.enabled
    assert body in slack_channel.disabled_reason


def test_invalid_payload_fails_the_message_but_keeps_the_channel(
    project, slack, slack_channel, error_rule, now
):
    slack.answer((400, "invalid_payload", {}))
    add_calls(project, count=30, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    assert _deliver(_only_notification().pk, now).status == NotificationStatus.FAILED
    slack_channel.refresh_from_db()
    assert slack_channel.enabled
    assert "invalid_payload" in slack_channel.last_error


def test_500_is_retried_with_backoff_then_gives_up(project, slack, slack_channel, error_rule, now):
    slack.default = (500, "internal_error", {})
    add_calls(project, count=30, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    notification = _only_notification()
    at = now
    delays = []
    for _ in range(delivery.MAX_ATTEMPTS):
        outcome = _deliver(notification.pk, at)
        if outcome.retry_in is None:
            break
        delays.append(outcome.retry_in)
        at += timedelta(seconds=outcome.retry_in + 1)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED
    assert notification.attempts == delivery.MAX_ATTEMPTS
    assert "gave up" in notification.error
    assert delays == sorted(delays)  # backoff grows
    assert len(slack.requests) == delivery.MAX_ATTEMPTS
    slack_channel.refresh_from_db()
    assert slack_channel.enabled  # transient errors never disable


def test_retry_before_its_time_does_not_send(project, slack, slack_channel, error_rule, now):
    slack.answer((500, "oops", {}))
    add_calls(project, count=30, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    notification = _only_notification()
    outcome = _deliver(notification.pk, now)
    assert outcome.status == NotificationStatus.RETRY
    early = _deliver(notification.pk, now + timedelta(seconds=0.5))
    assert early.status == NotificationStatus.RETRY
    assert early.retry_in is not None
    assert len(slack.requests) == 1


# --- a worker that dies mid-send --------------------------------------------------------------


def _fired(project, error_rule, now):
    add_calls(project, count=30, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    return _only_notification()


def test_worker_died_before_the_request_row_is_sent_once(
    project, slack, slack_channel, error_rule, now
):
    notification = _fired(project, error_rule, now)
    # State a worker leaves when killed after the claim, before the HTTP request started.
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENDING, attempts=1, lease_until=now - timedelta(seconds=1)
    )
    assert _deliver(notification.pk, now).status == NotificationStatus.SENT
    assert _deliver(notification.pk, now).status == NotificationStatus.SENT
    assert len(slack.requests) == 1
    notification.refresh_from_db()
    assert notification.attempts == 2


def test_worker_died_during_the_request_is_not_resent(
    project, slack, slack_channel, error_rule, now
):
    """At-most-once: the request may have reached Slack, so it is not sent again."""
    notification = _fired(project, error_rule, now)
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENDING,
        attempts=1,
        lease_until=now - timedelta(seconds=1),
        send_started_at=now - timedelta(seconds=90),
    )
    assert _deliver(notification.pk, now).status == NotificationStatus.UNKNOWN
    assert _deliver(notification.pk, now).status == NotificationStatus.UNKNOWN
    assert slack.requests == []
    notification.refresh_from_db()
    assert "not sent again" in notification.error
    # The sweeper does not pick it up again either.
    assert notification.pk not in delivery.notifications_requeue(now=now + timedelta(hours=1))


def test_a_live_lease_is_respected(project, slack, slack_channel, error_rule, now):
    """Another worker holds the row (its lease runs): a duplicate task sends nothing."""
    notification = _fired(project, error_rule, now)
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENDING, attempts=1, lease_until=now + timedelta(minutes=1)
    )
    assert _deliver(notification.pk, now).status == NotificationStatus.SENDING
    assert slack.requests == []


def test_a_late_worker_cannot_overwrite_the_new_owner(
    project, slack, slack_channel, error_rule, now, monkeypatch
):
    """Writes are fenced on the attempt number: a worker whose lease ran out while it was
    stuck cannot mark the row after another worker claimed it."""
    notification = _fired(project, error_rule, now)
    original = delivery.get_transport

    def transport_of_a_stuck_worker(kind):
        cls = original(kind)

        class Stuck(cls):  # type: ignore[misc, valid-type]
            def notify(self, message):
                # While "stuck", the lease expires and a second claim bumps the attempt.
                Notification.objects.filter(pk=notification.pk).update(attempts=5)
                return super().notify(message)

        return Stuck

    monkeypatch.setattr(delivery, "get_transport", transport_of_a_stuck_worker)
    _deliver(notification.pk, now)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SENDING  # the stale write was dropped


def test_evaluating_twice_creates_one_incident_and_one_message(
    project, slack_channel, error_rule, now
):
    add_calls(project, count=30, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    evaluation.rule_evaluate(rule_id=error_rule.pk, now=now)
    assert Incident.objects.count() == 1
    assert Notification.objects.count() == 1


def test_sweeper_finds_lost_tasks(project, slack_channel, error_rule, now):
    notification = _fired(project, error_rule, now)
    assert delivery.notifications_requeue(now=now) == []  # just created: its task is on the way
    assert delivery.notifications_requeue(now=now + timedelta(minutes=5)) == [notification.pk]


def test_channel_test_message(project, slack, slack_channel):
    notification = channels.channel_send_test(channel=slack_channel)
    assert notification.status == NotificationStatus.SENT
    assert slack.requests[0].json()["blocks"][0]["text"]["text"] == "Test message from Driftline"


def test_channel_test_failure_does_not_disable(project, slack, slack_channel):
    slack.answer((404, "no_service", {}))
    notification = channels.channel_send_test(channel=slack_channel)
    assert notification.status == NotificationStatus.FAILED
    assert "no_service" in notification.error
    slack_channel.refresh_from_db()
    assert slack_channel.enabled


def test_signed_webhook_delivery(project, slack, allow_private, error_rule, now):
    channel, secret = channels.channel_create(
        project=project, kind="webhook", name="pager", url=slack.url("/hook")
    )
    assert secret
    assert secret.startswith("whsec_")
    error_rule.channels.set([channel])
    _fired(project, error_rule, now)
    assert _deliver(_only_notification().pk, now).status == NotificationStatus.SENT
    request = slack.requests[0]
    headers = request.headers
    assert headers["X-Driftline-Event"] == "incident.firing"
    assert webhook.verify_signature(
        secret, headers["X-Driftline-Timestamp"], request.body, headers["X-Driftline-Signature"]
    )
    assert not webhook.verify_signature(
        "wrong-secret-000000",
        headers["X-Driftline-Timestamp"],
        request.body,
        headers["X-Driftline-Signature"],
    )
    body = request.json()
    assert body["type"] == "incident.firing"
    assert body["rule"]["name"] == "Error rate"
    assert body["id"] == headers["X-Driftline-Delivery"]
    assert len(body["examples"]) == 5


def test_private_url_is_refused_and_disables_when_not_allowed(
    project, slack, slack_channel, error_rule, now, settings
):
    _fired(project, error_rule, now)
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = False
    assert _deliver(_only_notification().pk, now).status == NotificationStatus.FAILED
    channel = Channel.objects.get(pk=slack_channel.pk)
    assert not channel.enabled
    assert "127.0.0.1" in channel.disabled_reason
    assert slack.requests == []


def test_one_message_per_second_per_slack_webhook(project, slack, slack_channel, now):
    rule = rules.rule_create(
        project=project,
        name="Errors by model",
        metric="error_rate",
        threshold=0.2,
        group_by=["model"],
        channels=[slack_channel.pk],
    )
    add_calls(project, count=20, errors=10, at=now, model="a")
    add_calls(project, count=20, errors=10, at=now, model="b")
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    first, second = outcome.notification_ids
    assert _deliver(first, now).status == NotificationStatus.SENT
    waiting = _deliver(second, now + timedelta(seconds=0.2))
    assert waiting.status == NotificationStatus.RETRY
    assert waiting.retry_in == pytest.approx(0.8)
    assert Notification.objects.get(pk=second).attempts == 0  # waiting spends no attempt
    assert _deliver(second, now + timedelta(seconds=1)).status == NotificationStatus.SENT
    assert len(slack.requests) == 2


def test_unreadable_url_disables_the_channel(
    project, slack, slack_channel, error_rule, now, settings
):
    _fired(project, error_rule, now)
    settings.SECRET_KEY = "rotated-without-setting-an-encryption-key"
    assert _deliver(_only_notification().pk, now).status == NotificationStatus.FAILED
    slack_channel.refresh_from_db()
    assert not slack_channel.enabled
    assert "enter the channel's URL again" in slack_channel.disabled_reason
    assert slack.requests == []
