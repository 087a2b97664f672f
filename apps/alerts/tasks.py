"""Celery tasks of the alerts app: ids in, a service called, queue "alerts".

Routing is by ``apps.queues.TASK_ROUTES`` (Celery 5.5+ deprecates the ``queue`` task attribute);
every enqueue here also names ``queue=`` and ``expires=`` explicitly.

Beat runs ``dispatch_due_rules`` (fans out one ``evaluate_rule`` per due rule, PostHog style),
``reset_stuck_rules`` (the janitor) and ``sweep_notifications`` (re-enqueues deliveries whose
task was lost). Every task may run twice: rules are claimed and locked, notifications claimed by
a conditional UPDATE.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task

from apps import queues
from apps.alerts import services

logger = logging.getLogger(__name__)

EVALUATE_EXPIRES_S = 300
DELIVER_EXPIRES_S = 3600


@shared_task(acks_late=True, ignore_result=True)
def evaluate_rule(rule_id: int) -> str:
    from apps.alerts.models import AlertRule

    if not AlertRule.objects.filter(pk=rule_id).exists():
        return "missing"
    outcome = services.rule_evaluate(rule_id=rule_id)
    return "ok" if outcome.ok else f"error: {outcome.error}"


@shared_task(acks_late=True, ignore_result=True)
def deliver_notification(notification_id: int) -> str:
    outcome = services.notification_deliver(notification_id=notification_id)
    if outcome.retry_in is not None:
        # The row holds the truth (status "retry", next_attempt_at); this is only the wake-up.
        # A lost wake-up is picked up by sweep_notifications.
        deliver_notification.apply_async(
            (notification_id,),
            countdown=outcome.retry_in,
            queue=queues.ALERTS,
            expires=outcome.retry_in + DELIVER_EXPIRES_S,
        )
    return str(outcome.status)


@shared_task(ignore_result=True)
def dispatch_due_rules() -> int:
    rule_ids = services.alert_rules_claim_due()
    for rule_id in rule_ids:
        evaluate_rule.apply_async((rule_id,), queue=queues.ALERTS, expires=EVALUATE_EXPIRES_S)
    return len(rule_ids)


@shared_task(ignore_result=True)
def reset_stuck_rules() -> int:
    return services.alert_rules_reset_stuck()


@shared_task(ignore_result=True)
def sweep_notifications() -> int:
    ids = services.notifications_requeue()
    for notification_id in ids:
        deliver_notification.apply_async(
            (notification_id,), queue=queues.ALERTS, expires=DELIVER_EXPIRES_S
        )
    return len(ids)


queues.register_periodic(
    "alerts-dispatch-due-rules",
    {
        "task": "apps.alerts.tasks.dispatch_due_rules",
        "schedule": timedelta(seconds=15),
        "options": {"queue": queues.ALERTS, "expires": 15},
    },
)
queues.register_periodic(
    "alerts-reset-stuck-rules",
    {
        "task": "apps.alerts.tasks.reset_stuck_rules",
        "schedule": timedelta(minutes=5),
        "options": {"queue": queues.ALERTS, "expires": 60},
    },
)
queues.register_periodic(
    "alerts-sweep-notifications",
    {
        "task": "apps.alerts.tasks.sweep_notifications",
        "schedule": timedelta(minutes=1),
        "options": {"queue": queues.ALERTS, "expires": 60},
    },
)
