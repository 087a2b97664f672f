"""Celery tasks of the alerts app: ids in, a service called, queue "alerts".

Routing and the beat schedule are declared in ``apps.queues``; sends go through
``apps.alerts.enqueue`` (by task name, with ``expires=``).

Beat runs ``dispatch_due_rules`` (fans out one ``evaluate_rule`` per due rule, PostHog style),
``reset_stuck_rules`` (the janitor) and ``sweep_notifications`` (re-enqueues deliveries whose
task was lost). Every task may run twice: rules are claimed and locked, notifications claimed by
a conditional UPDATE.
"""

from __future__ import annotations

import logging

from celery import shared_task

from apps.alerts import enqueue
from apps.alerts.services import delivery, evaluation

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def evaluate_rule(rule_id: int) -> str:
    from apps.alerts.models import AlertRule

    if not AlertRule.objects.filter(pk=rule_id).exists():
        return "missing"
    outcome = evaluation.rule_evaluate(rule_id=rule_id)
    return "ok" if outcome.ok else f"error: {outcome.error}"


@shared_task(acks_late=True, ignore_result=True)
def deliver_notification(notification_id: int) -> str:
    outcome = delivery.notification_deliver(notification_id=notification_id)
    if outcome.retry_in is not None:
        # The row holds the truth (status "retry", next_attempt_at); this is only the wake-up.
        # A lost wake-up is picked up by sweep_notifications.
        enqueue.notification_deliver(notification_id, countdown=outcome.retry_in)
    return str(outcome.status)


@shared_task(ignore_result=True)
def dispatch_due_rules() -> int:
    rule_ids = evaluation.alert_rules_claim_due()
    for rule_id in rule_ids:
        enqueue.rule_evaluate(rule_id)
    return len(rule_ids)


@shared_task(ignore_result=True)
def reset_stuck_rules() -> int:
    return evaluation.alert_rules_reset_stuck()


@shared_task(ignore_result=True)
def sweep_notifications() -> int:
    ids = delivery.notifications_requeue()
    for notification_id in ids:
        enqueue.notification_deliver(notification_id)
    return len(ids)
