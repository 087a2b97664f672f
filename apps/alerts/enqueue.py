"""Alert work sent to the alert workers by task name, so services never import tasks (and
tasks can import services without a cycle). Routes come from :mod:`apps.queues`."""

from __future__ import annotations

from celery import current_app

EVALUATE_RULE_TASK = "apps.alerts.tasks.evaluate_rule"
DELIVER_NOTIFICATION_TASK = "apps.alerts.tasks.deliver_notification"
EVALUATE_EXPIRES_S = 300
DELIVER_EXPIRES_S = 3600


def rule_evaluate(rule_id: int) -> None:
    current_app.send_task(EVALUATE_RULE_TASK, args=[rule_id], expires=EVALUATE_EXPIRES_S)


def notification_deliver(notification_id: int, *, countdown: float = 0.0) -> None:
    """Wake a delivery; the row holds the truth (a lost wake-up is swept)."""
    current_app.send_task(
        DELIVER_NOTIFICATION_TASK,
        args=[notification_id],
        countdown=countdown,
        expires=countdown + DELIVER_EXPIRES_S,
    )
