"""Writes of the alerts app: channels, rules, evaluation into incidents, delivery.

Delivery guarantees (``notification_deliver``)
----------------------------------------------
Every message is a ``Notification`` row created in the same transaction as the incident event
that causes it, with a unique ``dedupe_key`` (event id + channel id), so evaluating twice cannot
create two messages. A worker sends a row only after claiming it with a conditional UPDATE
(``queued``/``retry`` -> ``sending``, ``attempts + 1``, a lease), so two workers, or a task
delivered twice by the broker, cannot both send it. Just before the HTTP request the worker
commits ``send_started_at``; every later write is fenced on ``(status='sending', attempts=n)``.

A worker killed mid-send leaves a ``sending`` row whose lease runs out. Then:

* ``send_started_at`` empty: it died before anything went out, so the row is sent again;
* ``send_started_at`` set: the request may have reached Slack, which has no idempotency key.
  We choose **at-most-once** for this window: the row becomes ``unknown`` ("outcome unknown,
  not resent") and is shown as such in the notification log. A duplicate page at 3 a.m. trains
  people to ignore alerts; a lost one is visible in the log, the incident stays firing in the
  UI and the re-notify interval repeats it. The window is one HTTP request long (timeouts
  bound it). Receivers of the generic webhook can do better: ``X-Driftline-Delivery`` is stable
  across retries, so they may deduplicate.

An HTTP answer we did observe (429, 5xx, timeouts) is retried with backoff up to
``MAX_ATTEMPTS``; 429 honours ``Retry-After`` and pauses the whole channel. Permanent errors
fail the row, and those that are the channel's fault disable the channel with the reason.
"""

from __future__ import annotations

import logging
import random
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps import queues
from apps.accounts.models import Project
from apps.alerts import evaluators
from apps.alerts.durations import parse_duration
from apps.alerts.evaluators import FILTER_FIELDS, GROUP_BY_FIELDS, Observation
from apps.alerts.messages import message_for_notification
from apps.alerts.models import (
    NOTIFYING_EVENTS,
    OPEN_STATES,
    AlertRule,
    Channel,
    ChannelKind,
    EvalState,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentState,
    Metric,
    Notification,
    NotificationStatus,
    Operator,
    RuleKind,
    Severity,
)
from apps.alerts.transports import TransportError, get_transport
from apps.core.crypto import DecryptionError, decrypt_str, encrypt_str
from apps.core.errors import ApplicationError
from apps.lib import http

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser | None

MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 15 * 60.0
RETRY_AFTER_MAX_S = 3600.0
MAX_MUTE = timedelta(days=30)
STUCK_EVALUATION = timedelta(minutes=10)
# Drift checks run hourly and regression tests bootstrap: no need to look every minute.
DEFAULT_CHECK_INTERVAL_S: dict[str, int] = {
    RuleKind.EMBEDDING_DRIFT: 300,
    RuleKind.INTENT_SHIFT: 300,
    RuleKind.NEW_INTENT: 300,
    RuleKind.REGRESSION: 900,
}
# Incoming webhooks live on these hosts (commercial and GovSlack).
SLACK_WEBHOOK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


def _lease() -> timedelta:
    timeout = float(getattr(settings, "DRIFTLINE_HTTP_TIMEOUT_S", 10.0))
    return timedelta(seconds=max(60.0, 4 * timeout + 20))


def _user_id(user: User) -> int | None:
    # API keys authenticate without a person (their user has no primary key).
    if user is None or not user.is_authenticated:
        return None
    pk = getattr(user, "pk", None)
    return pk if isinstance(pk, int) else None


# --- channels -----------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/…/abcd``: enough to recognise, useless to post to."""
    try:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.hostname or ''}"
    except ValueError:
        origin = ""
    tail = url.rstrip("/")[-4:] if len(url) > 24 else ""
    return f"{origin}/…{tail}" if origin else "…"


def _validate_channel_url(kind: str, url: str) -> str:
    url = (url or "").strip()
    try:
        scheme, host, _port, _path = http.check_url(url)
    except http.UnsafeURLError as exc:
        raise ApplicationError(f"url: {exc}", field="url") from exc
    literal = http.parse_ip_literal(host)
    allow_private = bool(getattr(settings, "DRIFTLINE_WEBHOOK_ALLOW_PRIVATE", False))
    if literal is not None and not allow_private and http.address_block_reason(literal):
        raise ApplicationError("url: points to a non-public address", field="url")
    if (
        kind == ChannelKind.SLACK
        and not allow_private
        and (scheme != "https" or host not in SLACK_WEBHOOK_HOSTS)
    ):
        raise ApplicationError(
            "url: a Slack incoming webhook URL starts with https://hooks.slack.com/",
            field="url",
        )
    return url


def channel_create(
    *, project: Project, kind: str, name: str, url: str, secret: str | None = None
) -> tuple[Channel, str | None]:
    """Create a channel. For a webhook, returns the signing secret (given or generated): the
    only time it is shown."""
    if kind not in ChannelKind.values:
        raise ApplicationError(f"kind: must be one of {ChannelKind.values}", field="kind")
    name = (name or "").strip()
    if not name:
        raise ApplicationError("name: required", field="name")
    url = _validate_channel_url(kind, url)
    shown: str | None = None
    secret_encrypted = ""
    if kind == ChannelKind.WEBHOOK:
        if secret is not None and len(secret) < 16:
            raise ApplicationError("secret: at least 16 characters", field="secret")
        shown = secret or f"whsec_{secrets.token_urlsafe(32)}"
        secret_encrypted = encrypt_str(shown)
    channel = Channel.objects.create(
        project=project,
        kind=kind,
        name=name[:200],
        url_encrypted=encrypt_str(url),
        url_masked=mask_url(url),
        secret_encrypted=secret_encrypted,
    )
    return channel, shown


def channel_update(
    *,
    channel: Channel,
    name: str | None = None,
    url: str | None = None,
    enabled: bool | None = None,
) -> Channel:
    fields: list[str] = []
    if name is not None:
        if not name.strip():
            raise ApplicationError("name: required", field="name")
        channel.name = name.strip()[:200]
        fields.append("name")
    if url is not None:
        url = _validate_channel_url(channel.kind, url)
        channel.url_encrypted, channel.url_masked = encrypt_str(url), mask_url(url)
        fields += ["url_encrypted", "url_masked"]
    if url is not None and enabled is None:
        enabled = True  # a new URL is the usual fix for a disabled channel
    if enabled is not None:
        channel.enabled = enabled
        fields.append("enabled")
        if enabled:
            channel.disabled_reason, channel.disabled_at, channel.paused_until = "", None, None
            fields += ["disabled_reason", "disabled_at", "paused_until"]
    if fields:
        channel.save(update_fields=[*fields, "updated_at"])
    return channel


def channel_delete(*, channel: Channel) -> None:
    channel.delete()


def channel_disable(*, channel_id: int, reason: str, now: datetime | None = None) -> bool:
    """Switch a channel off with a reason people can read; False when it already was."""
    now = now or timezone.now()
    updated = Channel.objects.filter(pk=channel_id, enabled=True).update(
        enabled=False,
        disabled_reason=reason[:2000],
        disabled_at=now,
        last_error=reason[:2000],
        updated_at=now,
    )
    if updated:
        logger.warning("alert channel disabled", extra={"channel_id": channel_id, "reason": reason})
    return bool(updated)


def channel_send_test(*, channel: Channel) -> Notification:
    """Send a test message now (in the caller's process) and return its notification row."""
    notification = Notification.objects.create(
        project_id=channel.project_id,
        channel=channel,
        event=None,
        dedupe_key=f"test:{uuid.uuid4()}",
    )
    # A test goes out even to a disabled channel: that is how one checks a fixed URL.
    outcome = notification_deliver(notification_id=notification.pk)
    if outcome.retry_in is not None:  # 429 or 5xx: the worker tries again later
        _enqueue_deliveries([notification.pk], countdown=outcome.retry_in)
    notification.refresh_from_db()
    return notification


# --- rules --------------------------------------------------------------------------------------


_RULE_FIELDS = {
    "name",
    "kind",
    "metric",
    "operator",
    "threshold",
    "critical_threshold",
    "window",
    "min_samples",
    "filters",
    "group_by",
    "params",
    "pending",
    "cooldown",
    "renotify_interval",
    "check_interval",
    "enabled",
    "channels",
}
_DURATIONS = {
    "window": "window_s",
    "pending": "pending_s",
    "cooldown": "cooldown_s",
    "renotify_interval": "renotify_s",
    "check_interval": "check_interval_s",
}


def _duration(name: str, value: Any, *, minimum: int = 0, maximum: int = 90 * 86400) -> int:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ApplicationError(f"{name}: {exc}", field=name) from exc
    if not minimum <= seconds <= maximum:
        raise ApplicationError(f"{name}: must be between {minimum}s and {maximum}s", field=name)
    return seconds


def _apply_rule_fields(rule: AlertRule, data: dict[str, Any]) -> list[str]:
    unknown = set(data) - _RULE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise ApplicationError(f"{name}: unknown field", field=name)
    changed: list[str] = []
    for name, value in data.items():
        if name == "channels":
            continue
        if name in _DURATIONS:
            minimum = {"window": 60, "check_interval": 10}.get(name, 0)
            setattr(rule, _DURATIONS[name], _duration(name, value, minimum=minimum))
            changed.append(_DURATIONS[name])
        elif name in ("filters", "params"):
            setattr(rule, name, dict(value or {}))
            changed.append(name)
        elif name == "group_by":
            setattr(rule, name, list(value or []))
            changed.append(name)
        else:
            setattr(rule, name, value)
            changed.append(name)
    return changed


def _validate_rule(rule: AlertRule) -> None:
    if not (rule.name or "").strip():
        raise ApplicationError("name: required", field="name")
    if rule.kind not in RuleKind.values:
        raise ApplicationError(f"kind: must be one of {RuleKind.values}", field="kind")
    if rule.operator not in Operator.values:
        raise ApplicationError(f"operator: must be one of {Operator.values}", field="operator")
    if rule.kind == RuleKind.METRIC:
        if rule.metric not in Metric.values:
            raise ApplicationError(f"metric: must be one of {Metric.values}", field="metric")
    elif rule.kind == RuleKind.BUDGET:
        rule.metric = Metric.COST
        rule.group_by = ["end_user"]
        rule.operator = Operator.GT
    else:
        rule.metric = ""
    if (
        rule.kind in (RuleKind.METRIC, RuleKind.BUDGET)
        and rule.threshold is None
        and rule.critical_threshold is None
    ):
        raise ApplicationError("threshold: required for a metric rule", field="threshold")
    for name, value in (
        ("threshold", rule.threshold),
        ("critical_threshold", rule.critical_threshold),
    ):
        if value is not None and (not isinstance(value, int | float) or value != value):
            raise ApplicationError(f"{name}: must be a number", field=name)
    if (
        rule.threshold is not None
        and rule.critical_threshold is not None
        and evaluators.compare(rule.threshold, rule.operator, rule.critical_threshold)
    ):
        raise ApplicationError(
            "critical_threshold: must be beyond the warning threshold", field="critical_threshold"
        )
    if not isinstance(rule.filters, dict):
        raise ApplicationError("filters: must be an object", field="filters")
    for key, value in rule.filters.items():
        if key not in FILTER_FIELDS:
            raise ApplicationError(
                f"filters: unknown key {key!r}; known: {sorted(FILTER_FIELDS)}", field="filters"
            )
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
            raise ApplicationError(f"filters: {key} must be a string or a list", field="filters")
    if not isinstance(rule.group_by, list) or any(g not in GROUP_BY_FIELDS for g in rule.group_by):
        raise ApplicationError(
            f"group_by: a list among {sorted(GROUP_BY_FIELDS)}", field="group_by"
        )
    if len(set(rule.group_by)) != len(rule.group_by):
        raise ApplicationError("group_by: repeated field", field="group_by")


def _channels_for(project: Project, ids: Iterable[Any]) -> list[Channel]:
    try:
        wanted = {int(i) for i in ids}
    except (TypeError, ValueError) as exc:
        raise ApplicationError("channels: a list of channel ids", field="channels") from exc
    found = list(Channel.objects.filter(project=project, pk__in=wanted))
    if len(found) != len(wanted):
        missing = sorted(wanted - {c.pk for c in found})
        raise ApplicationError(
            f"channels: no channel {missing[0]} in this project", field="channels"
        )
    return found


@transaction.atomic
def rule_create(*, project: Project, user: User = None, **data: Any) -> AlertRule:
    rule = AlertRule(project=project, created_by_id=_user_id(user))
    _apply_rule_fields(rule, data)
    _validate_rule(rule)
    if "check_interval" not in data:
        rule.check_interval_s = DEFAULT_CHECK_INTERVAL_S.get(rule.kind, rule.check_interval_s)
    channels = _channels_for(project, data.get("channels") or [])
    rule.next_check_at = timezone.now()
    rule.save()
    rule.channels.set(channels)
    return rule


@transaction.atomic
def rule_update(*, rule: AlertRule, **data: Any) -> AlertRule:
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
    changed = _apply_rule_fields(rule, data)
    _validate_rule(rule)
    if "channels" in data:
        rule.channels.set(_channels_for(rule.project, data["channels"] or []))
    if changed:
        rule.next_check_at = timezone.now()
        rule.save(
            update_fields=[
                *{*changed, "metric", "group_by", "operator"},
                "next_check_at",
                "updated_at",
            ]
        )
    return rule


def rule_delete(*, rule: AlertRule) -> None:
    rule.delete()


# --- evaluation ---------------------------------------------------------------------------------


@dataclass
class GroupOutcome:
    group: dict[str, str]
    value: float | None
    sample_count: int
    severity: str | None
    state: str  # incident state after evaluation, "ok" without an incident, "no_data"
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


def _enqueue_deliveries(notification_ids: Sequence[int], *, countdown: float = 0.0) -> None:
    """Queue delivery tasks once the transaction that wrote the rows commits."""
    if not notification_ids:
        return
    from apps.alerts.tasks import deliver_notification  # tasks import services

    ids = list(notification_ids)

    def send() -> None:
        for notification_id in ids:
            deliver_notification.apply_async(
                (notification_id,),
                queue=queues.ALERTS,
                countdown=countdown,
                expires=countdown + 3600,
            )

    transaction.on_commit(send)


def _record_event(
    incident: Incident,
    kind: EventKind,
    *,
    now: datetime,
    message: str = "",
    actor: User = None,
    channels: Sequence[Channel] = (),
) -> tuple[IncidentEvent, list[int]]:
    event = IncidentEvent.objects.create(
        incident=incident,
        kind=kind,
        severity=incident.severity,
        value=incident.value,
        message=message,
        actor_id=_user_id(actor),
    )
    ids: list[int] = []
    if kind in NOTIFYING_EVENTS:
        for channel in channels:
            if not channel.enabled:
                continue
            notification = Notification.objects.create(
                project_id=incident.project_id,
                channel=channel,
                event=event,
                dedupe_key=f"{event.pk}:{channel.pk}",
            )
            ids.append(notification.pk)
    return event, ids


def _is_muted(incident: Incident, now: datetime) -> bool:
    return incident.muted_until is not None and incident.muted_until > now


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


_INCIDENT_FIELDS = [
    "state",
    "severity",
    "value",
    "threshold",
    "baseline",
    "sample_count",
    "summary",
    "details",
    "fired_at",
    "resolved_at",
    "notified",
    "last_notified_at",
    "last_evaluated_at",
    "updated_at",
]


def _notify_firing(
    rule: AlertRule, incident: Incident, kind: EventKind, now: datetime, channels: Sequence[Channel]
) -> tuple[list[str], list[int]]:
    """Record ``kind`` and message the channels, unless muted or within the cooldown."""
    if _is_muted(incident, now):
        _record_event(incident, EventKind.SUPPRESSED, now=now, message=f"{kind.value}: muted")
        return [EventKind.SUPPRESSED], []
    if kind == EventKind.FIRING and _in_cooldown(rule, incident, now):
        _record_event(
            incident, EventKind.SUPPRESSED, now=now, message="firing: within the rule's cooldown"
        )
        return [EventKind.SUPPRESSED], []
    _event, ids = _record_event(incident, kind, now=now, channels=channels)
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
                    _record_event(incident, EventKind.PENDING, now=now, message=obs.summary)
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
            if not _is_muted(incident, now) and not _in_cooldown(rule, incident, now):
                events, ids = _notify_firing(rule, incident, EventKind.FIRING, now, channels)
                outcome.events += events
        elif (
            rule.renotify_s
            and incident.acknowledged_at is None
            and not _is_muted(incident, now)
            and incident.last_notified_at is not None
            and now - incident.last_notified_at >= timedelta(seconds=rule.renotify_s)
        ):
            events, ids = _notify_firing(rule, incident, EventKind.RENOTIFY, now, channels)
            outcome.events += events
        incident.save(update_fields=_INCIDENT_FIELDS)
    elif incident is not None and obs.value is not None:
        _copy_observation(incident, obs, now)
        ids = _resolve(incident, now=now, channels=channels, message="")
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


def _resolve(
    incident: Incident,
    *,
    now: datetime,
    channels: Sequence[Channel],
    message: str,
    actor: User = None,
) -> list[int]:
    """Close an open incident; one resolve message when a firing message went out."""
    was_firing = incident.state == IncidentState.FIRING
    incident.state = IncidentState.RESOLVED
    incident.resolved_at = now
    incident.resolved_by_id = _user_id(actor)
    incident.save(update_fields=[*_INCIDENT_FIELDS, "resolved_by"])
    if not was_firing:
        _record_event(incident, EventKind.CANCELLED, now=now, message=message, actor=actor)
        return []
    send_to = channels if incident.notified and not _is_muted(incident, now) else ()
    _event, ids = _record_event(
        incident, EventKind.RESOLVED, now=now, message=message, actor=actor, channels=send_to
    )
    return ids


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
        _enqueue_deliveries(outcome.notification_ids)
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


# --- incidents (people) -------------------------------------------------------------------------


def _locked_incident(incident: Incident) -> Incident:
    # Same lock order as rule_evaluate (rule, then incident).
    AlertRule.objects.select_for_update().filter(pk=incident.rule_id).exists()
    return Incident.objects.select_for_update().select_related("rule").get(pk=incident.pk)


@transaction.atomic
def incident_acknowledge(*, incident: Incident, user: User) -> Incident:
    incident = _locked_incident(incident)
    if incident.state == IncidentState.RESOLVED:
        raise ApplicationError("incident: already resolved", field="state", status_code=409)
    if incident.acknowledged_at is None:
        now = timezone.now()
        incident.acknowledged_at = now
        incident.acknowledged_by_id = _user_id(user)
        incident.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
        _record_event(incident, EventKind.ACKNOWLEDGED, now=now, actor=user)
    return incident


@transaction.atomic
def incident_resolve(*, incident: Incident, user: User, message: str = "") -> Incident:
    incident = _locked_incident(incident)
    if incident.state == IncidentState.RESOLVED:
        return incident
    channels = list(incident.rule.channels.all())
    ids = _resolve(incident, now=timezone.now(), channels=channels, message=message, actor=user)
    _enqueue_deliveries(ids)
    return incident


@transaction.atomic
def incident_mute(*, incident: Incident, user: User, duration_s: int) -> Incident:
    """Mute for ``duration_s`` (0 unmutes): events are kept, no messages are sent."""
    if not 0 <= duration_s <= MAX_MUTE.total_seconds():
        raise ApplicationError("duration: between 0 and 30 days", field="duration")
    incident = _locked_incident(incident)
    now = timezone.now()
    incident.muted_until = now + timedelta(seconds=duration_s) if duration_s else None
    incident.save(update_fields=["muted_until", "updated_at"])
    text = f"muted until {incident.muted_until:%Y-%m-%d %H:%M} UTC" if duration_s else "unmuted"
    _record_event(incident, EventKind.MUTED, now=now, actor=user, message=text)
    return incident


# --- delivery -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    retry_in: float | None = None  # seconds until the next attempt, when one is due


def _min_interval(kind: str) -> float:
    try:
        return float(get_transport(kind).min_interval_s)
    except TransportError:
        return 0.0


def _backoff(attempts: int) -> float:
    delay: float = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(attempts - 1, 0))
    return delay * random.uniform(0.8, 1.2)  # jitter: retries of many rows do not align


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Send one notification at most once; see the module docstring for the guarantees.

    Runs outside a transaction (autocommit): each step commits before the next, which is
    what makes the claim and ``send_started_at`` meaningful to a second worker.
    """
    # Tests pass ``now`` to move through time; then every timestamp here derives from it.
    fixed = now

    def clock() -> datetime:
        return fixed if fixed is not None else timezone.now()

    now = clock()
    row = Notification.objects.filter(pk=notification_id).select_related("channel").first()
    if row is None:
        return DeliveryOutcome("missing")
    sendable = Q(status__in=[NotificationStatus.QUEUED, NotificationStatus.RETRY])
    stale = Q(status=NotificationStatus.SENDING, lease_until__lt=now)

    # A stale row whose request had started: outcome unknown, never resent (at-most-once).
    if Notification.objects.filter(stale, pk=row.pk, send_started_at__isnull=False).update(
        status=NotificationStatus.UNKNOWN,
        error="the worker stopped during the request; it may have been delivered and is not "
        "sent again, to avoid a duplicate",
        lease_until=None,
        updated_at=now,
    ):
        return DeliveryOutcome(NotificationStatus.UNKNOWN)

    channel = row.channel
    if not channel.enabled and row.event_id is not None:  # test messages go out regardless
        Notification.objects.filter(sendable | stale, pk=row.pk).update(
            status=NotificationStatus.SKIPPED,
            error=f"channel disabled: {channel.disabled_reason}"[:2000],
            updated_at=now,
        )
        return DeliveryOutcome(NotificationStatus.SKIPPED)
    not_before = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    claimable = (sendable & not_before) | (stale & Q(send_started_at__isnull=True))
    if not Notification.objects.filter(claimable, pk=row.pk).exists():
        current = Notification.objects.filter(pk=row.pk).values_list("status", "next_attempt_at")
        status, next_at = current.first() or (NotificationStatus.SENT, None)
        if status == NotificationStatus.RETRY and next_at is not None and next_at > now:
            return DeliveryOutcome(status, (next_at - now).total_seconds())
        return DeliveryOutcome(status)
    # Reserve the channel's next send slot: Slack takes about one message per second per
    # webhook, and after a 429 the whole channel waits for Retry-After. Waiting spends no attempt.
    interval = timedelta(seconds=_min_interval(channel.kind))
    free = Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    if not Channel.objects.filter(free, pk=channel.pk).update(paused_until=now + interval):
        paused = Channel.objects.filter(pk=channel.pk).values_list("paused_until", flat=True)
        resume = paused.first() or now
        Notification.objects.filter(sendable | stale, pk=row.pk).update(
            status=NotificationStatus.RETRY, next_attempt_at=resume, updated_at=now
        )
        return DeliveryOutcome(NotificationStatus.RETRY, max((resume - now).total_seconds(), 0.1))
    claimed = Notification.objects.filter(claimable, pk=row.pk).update(
        status=NotificationStatus.SENDING,
        attempts=F("attempts") + 1,
        lease_until=now + _lease(),
        send_started_at=None,
        updated_at=now,
    )
    if not claimed:  # another worker won the race
        return DeliveryOutcome(NotificationStatus.SENDING)
    row = Notification.objects.select_related(
        "channel__project", "event__incident__rule__project", "event__actor"
    ).get(pk=row.pk)
    fence = Notification.objects.filter(
        pk=row.pk, status=NotificationStatus.SENDING, attempts=row.attempts
    )
    try:
        message = message_for_notification(row)
        url = decrypt_str(channel.url_encrypted)
        secret = decrypt_str(channel.secret_encrypted) if channel.secret_encrypted else ""
        transport = get_transport(channel.kind)(url=url, secret=secret)
    except DecryptionError as exc:
        # The encryption key changed: only a person re-entering the URL can fix it.
        error = TransportError(
            f"{exc}; enter the channel's URL again", permanent=True, disable_channel=True
        )
        return _finish_failed(row, fence, error, now)
    except TransportError as exc:
        error = TransportError(f"cannot prepare the message: {exc}", permanent=True)
        return _finish_failed(row, fence, error, now)

    fence.update(send_started_at=clock())
    try:
        http_status = transport.notify(message)
    except TransportError as exc:
        return _finish_failed(row, fence, exc, clock())
    done_at = clock()
    fence.update(
        status=NotificationStatus.SENT,
        http_status=http_status,
        error="",
        sent_at=done_at,
        lease_until=None,
        next_attempt_at=None,
        updated_at=done_at,
        history=_history(row, done_at, "sent", http_status, ""),
    )
    Channel.objects.filter(pk=channel.pk).update(last_sent_at=done_at, last_error="")
    return DeliveryOutcome(NotificationStatus.SENT)


def _history(
    row: Notification, at: datetime, outcome: str, http_status: int | None, error: str
) -> list[dict[str, Any]]:
    entry = {
        "attempt": row.attempts,
        "at": at.isoformat(),
        "outcome": outcome,
        "http_status": http_status,
        "error": error[:300],
    }
    return [*(row.history or []), entry][-20:]


def _finish_failed(
    row: Notification, fence: Any, exc: TransportError, now: datetime
) -> DeliveryOutcome:
    common: dict[str, Any] = {
        "http_status": exc.http_status,
        "error": exc.message[:2000],
        "lease_until": None,
        "send_started_at": None,
        "updated_at": now,
        "history": _history(
            row,
            now,
            "permanent error" if exc.permanent else "transient error",
            exc.http_status,
            exc.message,
        ),
    }
    Channel.objects.filter(pk=row.channel_id).update(last_error=exc.message[:2000])
    if exc.permanent or row.attempts >= MAX_ATTEMPTS:
        if not exc.permanent:
            common["error"] = f"gave up after {row.attempts} attempts: {exc.message}"[:2000]
        fence.update(status=NotificationStatus.FAILED, **common)
        # A failing test message explains itself; it does not switch the channel off.
        if exc.disable_channel and row.event_id is not None:
            channel_disable(channel_id=row.channel_id, reason=exc.message, now=now)
        return DeliveryOutcome(NotificationStatus.FAILED)
    if exc.retry_after is not None:
        delay = min(max(exc.retry_after, 1.0), RETRY_AFTER_MAX_S)
        Channel.objects.filter(pk=row.channel_id).update(
            paused_until=now + timedelta(seconds=delay)
        )
    else:
        delay = _backoff(row.attempts)
    fence.update(
        status=NotificationStatus.RETRY, next_attempt_at=now + timedelta(seconds=delay), **common
    )
    return DeliveryOutcome(NotificationStatus.RETRY, delay)


def notifications_requeue(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """The sweeper: rows whose task was lost (enqueue failed, worker died, ETA dropped).

    Returns the ids to enqueue again; ``notification_deliver`` decides what happens to each.
    """
    now = now or timezone.now()
    grace = timedelta(seconds=60)
    return list(
        Notification.objects.filter(
            Q(status=NotificationStatus.QUEUED, created_at__lt=now - grace)
            | Q(status=NotificationStatus.RETRY, next_attempt_at__lt=now - grace)
            | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
