"""Real concurrency: several workers (threads with their own connections) deliver one row."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.alerts.models import Notification, NotificationStatus
from apps.alerts.services import channels, delivery, evaluation, rules
from tests.alerts.conftest import add_calls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("kind", ["slack", "webhook"])
def test_racing_deliveries_send_one_message(project, slack, allow_private, kind):
    channel, _ = channels.channel_create(project=project, kind=kind, name="c", url=slack.url())
    rule = rules.rule_create(
        project=project, name="Errors", metric="error_rate", threshold=0.2, channels=[channel.pk]
    )
    now = timezone.now()
    add_calls(project, count=20, errors=10, at=now)
    (notification_id,) = evaluation.rule_evaluate(rule_id=rule.pk, now=now).notification_ids

    start = threading.Barrier(6)
    outcomes = []

    def worker() -> None:
        try:
            start.wait()
            outcomes.append(delivery.notification_deliver(notification_id=notification_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A loser may have been told to wait for the channel's next slot: let it run once more.
    at = timezone.now() + timedelta(seconds=2)
    final = delivery.notification_deliver(notification_id=notification_id, now=at)
    assert final.status == NotificationStatus.SENT
    assert len(slack.requests) == 1
    assert Notification.objects.get().status == NotificationStatus.SENT
    assert len(outcomes) == 6
