"""Rule evaluation: the incident state machine per group (pending -> firing -> resolved), the
claim of due rules and the janitor of stuck evaluations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts import evaluators
from apps.alerts.evaluators import Observation
from apps.alerts.models import (
    OPEN_STATES,
    AlertRule,
    Channel,
    EvalState,
    EventKind,
    Incident,
    IncidentState,
    Severity,
)
from apps.alerts.services.incidents import INCIDENT_FIELDS, incident_close, is_muted
from apps.alerts.services.outbox import enqueue_deliveries, record_event

logger = logging.getLogger(__name__)


STUCK_EVALUATION = timedelta(minutes=10)


@dataclass
class GroupOutcome:
    group: dict[str, str]
    value: float | None
    sample_count: int
    severity: str | None
    # incident state after evaluation, "ok" without an incident, "no_data", or "held" (breaching
    # but just resolved by a person: see _reopen_held)
    state: str
    incident_id: int | None = None
    events: list[str] = field(default_factory=list)


@dataclass
class EvaluationOutcome:
    rule_id: int
    evaluated_at: datetime
    ok: bool = True
    error: str = ""
    groups: list[GroupOutcome] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)


def _in_cooldown(rule: AlertRule, incident: Incident, now: datetime) -> bool:
    if not rule.cooldown_s:
        return False
    since = now - timedelta(seconds=rule.cooldown_s)
    return (
        Incident.objects.filter(
            rule=rule, group_key=incident.group_key, last_notified_at__gte=since
        )
        .exclude(pk=incident.pk)
        .exists()
    )


def _reopen_held(rule: AlertRule, group_key: str, now: datetime) -> bool:
    """A person resolved this group's last incident a moment ago: do not open it again at once.

    The calls that breached are still inside the rule's window after a manual resolve, so the
    condition holds by construction until the window has rolled past them; re-firing then
    would undo the person's action within a minute. Held for the longer of the rule's window
    and its cooldown after a manual resolve; automatic resolves are governed by the cooldown
    (``_in_cooldown``) as before.
    """
    hold = max(rule.window_s, rule.cooldown_s)
    return Incident.objects.filter(
        rule=rule,
        group_key=group_key,
        state=IncidentState.RESOLVED,
        resolved_by__isnull=False,
        resolved_at__gt=now - timedelta(seconds=hold),
    ).exists()


def _copy_observation(incident: Incident, obs: Observation, now: datetime) -> None:
    incident.value = obs.value
    incident.sample_count = obs.sample_count
    incident.last_evaluated_at = now
    if obs.severity is not None:
        incident.severity = obs.severity
        incident.threshold = obs.threshold
        incident.baseline = obs.baseline
        incident.summary = obs.summary
        details = dict(incident.details)
        details.update(obs.details)
        details["confidence"] = obs.confidence
        if obs.examples:
            details["examples"] = obs.examples
        incident.details = details


def _notify_firing(
    rule: AlertRule, incident: Incident, kind: EventKind, now: datetime, channels: Sequence[Channel]
) -> tuple[list[str], list[int]]:
    """Record ``kind`` and message the channels, unless muted or within the cooldown."""
    if is_muted(incident, now):
        record_event(incident, EventKind.SUPPRESSED, now=now, message=f"{kind.value}: muted")
        return [EventKind.SUPPRESSED], []
    if kind == EventKind.FIRING and _in_cooldown(rule, incident, now):
        record_event(
            incident, EventKind.SUPPRESSED, now=now, message="firing: within the rule's cooldown"
        )
        return [EventKind.SUPPRESSED], []
    _event, ids = record_event(incident, kind, now=now, channels=channels)
    incident.notified = True
    incident.last_notified_at = now
    return [kind], ids


def _apply_observation(
    rule: AlertRule,
    obs: Observation,
    incident: Incident | None,
    now: datetime,
    channels: Sequence[Channel],
) -> tuple[GroupOutcome, list[int]]:
    outcome = GroupOutcome(obs.group, obs.value, obs.sample_count, obs.severity, "ok")
    ids: list[int] = []
    if obs.severity is not None and incident is None and _reopen_held(rule, obs.group_key, now):
        outcome.state = "held"
        return outcome, ids
    if obs.severity is not None:
        if incident is None:
            incident = Incident(
                project_id=rule.project_id,
                rule=rule,
                group_key=obs.group_key,
                group=obs.group,
                state=IncidentState.PENDING,
                severity=obs.severity,
                started_at=now,
            )
            _copy_observation(incident, obs, now)
            try:
                with transaction.atomic():
                    incident.save()
            except IntegrityError:
                # Another evaluation opened it first (the rule lock makes this rare).
                incident = Incident.objects.get(
                    rule=rule, group_key=obs.group_key, state__in=OPEN_STATES
                )
            else:
                if rule.pending_s:
                    record_event(incident, EventKind.PENDING, now=now, message=obs.summary)
                    outcome.events.append(EventKind.PENDING)
        previous_severity = incident.severity
        _copy_observation(incident, obs, now)
        if incident.state == IncidentState.PENDING:
            if now - incident.started_at >= timedelta(seconds=rule.pending_s):
                incident.state = IncidentState.FIRING
                incident.fired_at = now
                events, ids = _notify_firing(rule, incident, EventKind.FIRING, now, channels)
                outcome.events += events
        elif (
            previous_severity == Severity.WARNING
            and obs.severity == Severity.CRITICAL
            and incident.notified
        ):
            events, ids = _notify_firing(rule, incident, EventKind.ESCALATED, now, channels)
            outcome.events += events
        elif not incident.notified:
            # Suppressed earlier (cooldown or mute): announce once that no longer holds.
            if not is_muted(incident, now) and not _in_cooldown(rule, incident, now):
                events, ids = _notify_firing(rule, incident, EventKind.FIRING, now, channels)
                outcome.events += events
        elif (
            rule.renotify_s
            and incident.acknowledged_at is None
            and not is_muted(incident, now)
            and incident.last_notified_at is not None
            and now - incident.last_notified_at >= timedelta(seconds=rule.renotify_s)
        ):
            events, ids = _notify_firing(rule, incident, EventKind.RENOTIFY, now, channels)
            outcome.events += events
        incident.save(update_fields=INCIDENT_FIELDS)
    elif incident is not None and obs.value is not None:
        # The value, summary and threshold stay those of the breach (the summary says what
        # happened, the value column must agree with it); the value it recovered to is kept
        # beside them.
        incident.last_evaluated_at = now
        incident.details = {**incident.details, "resolved_value": obs.value}
        ids = incident_close(incident, now=now, channels=channels, message="")
        outcome.events.append(
            EventKind.RESOLVED if incident.fired_at is not None else EventKind.CANCELLED
        )
    elif incident is not None:
        incident.last_evaluated_at = now
        incident.save(update_fields=["last_evaluated_at", "updated_at"])
        outcome.state = "no_data"
    elif obs.value is None:
        outcome.state = "no_data"
    if incident is not None:
        outcome.state = incident.state
        outcome.incident_id = incident.pk
    return outcome, ids


def rule_evaluate(*, rule_id: int, now: datetime | None = None) -> EvaluationOutcome:
    """Evaluate one rule now and move its incidents; safe to run concurrently and twice.

    The rule row is locked for the evaluation, so an API "evaluate now" and the scheduled task
    serialize; the partial unique index backs the one-open-incident-per-group rule.
    """
    now = now or timezone.now()
    outcome = EvaluationOutcome(rule_id=rule_id, evaluated_at=now)
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(of=("self",))
            .select_related("project")
            .filter(pk=rule_id)
            .first()
        )
        if rule is None:  # deleted since it was claimed or looked up: nothing to evaluate
            outcome.ok, outcome.error = False, "rule: deleted"
            return outcome
        channels = list(rule.channels.all())
        try:
            with transaction.atomic():
                observations = evaluators.evaluator_for(rule.kind)(rule, now)
        except Exception as exc:  # a broken evaluator must not wedge the schedule
            logger.exception("alert rule evaluation failed", extra={"rule_id": rule_id})
            outcome.ok, outcome.error = False, f"{type(exc).__name__}: {exc}"[:2000]
            observations = []
        open_incidents = {
            i.group_key: i for i in Incident.objects.filter(rule=rule, state__in=OPEN_STATES)
        }
        seen: set[str] = set()
        if outcome.ok:
            for obs in observations:
                seen.add(obs.group_key)
                group_outcome, ids = _apply_observation(
                    rule, obs, open_incidents.get(obs.group_key), now, channels
                )
                outcome.groups.append(group_outcome)
                outcome.notification_ids += ids
            # Open incidents whose group had no calls at all in the window.
            for key, incident in open_incidents.items():
                if key in seen:
                    continue
                empty_value = 0.0 if rule.metric in evaluators.SUM_METRICS else None
                obs = Observation(
                    group=incident.group, value=empty_value, sample_count=0, severity=None
                )
                group_outcome, ids = _apply_observation(rule, obs, incident, now, channels)
                outcome.groups.append(group_outcome)
                outcome.notification_ids += ids
        rule.last_evaluated_at = now
        rule.last_error = outcome.error
        rule.next_check_at = now + timedelta(seconds=rule.check_interval_s)
        rule.eval_state = EvalState.IDLE
        rule.eval_started_at = None
        rule.save(
            update_fields=[
                "last_evaluated_at",
                "last_error",
                "next_check_at",
                "eval_state",
                "eval_started_at",
            ]
        )
        enqueue_deliveries(outcome.notification_ids)
    return outcome


def alert_rules_claim_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Claim rules due by ``next_check_at`` (skipping those already queued or running)."""
    now = now or timezone.now()
    due = list(
        AlertRule.objects.filter(enabled=True, eval_state=EvalState.IDLE, next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", flat=True)[:limit]
    )
    claimed: list[int] = []
    for rule_id in due:
        if AlertRule.objects.filter(pk=rule_id, eval_state=EvalState.IDLE).update(
            eval_state=EvalState.RUNNING, eval_started_at=now
        ):
            claimed.append(rule_id)
    return claimed


def alert_rules_reset_stuck(*, now: datetime | None = None) -> int:
    """The janitor: a rule "running" for too long lost its task (worker died); free it."""
    now = now or timezone.now()
    return AlertRule.objects.filter(
        eval_state=EvalState.RUNNING, eval_started_at__lt=now - STUCK_EVALUATION
    ).update(eval_state=EvalState.IDLE, eval_started_at=None)
