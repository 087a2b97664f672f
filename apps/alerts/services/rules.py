"""Rule writes: create/update/delete, validating the fields of each rule kind."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.alerts import evaluators
from apps.alerts.durations import parse_duration
from apps.alerts.evaluators import FILTER_FIELDS, GROUP_BY_FIELDS
from apps.alerts.models import (
    AlertRule,
    Channel,
    Metric,
    Operator,
    RuleKind,
)
from apps.alerts.services.outbox import User, user_id
from apps.core.errors import ApplicationError

# A score rule watches an evaluator's mean score or its share of failed verdicts.
SCORE_AGGREGATES = ("mean", "failure_rate")

# Drift checks run hourly and regression tests bootstrap: no need to look every minute.
DEFAULT_CHECK_INTERVAL_S: dict[str, int] = {
    RuleKind.EMBEDDING_DRIFT: 300,
    RuleKind.INTENT_SHIFT: 300,
    RuleKind.NEW_INTENT: 300,
    RuleKind.REGRESSION: 900,
    RuleKind.PROMPT_REGRESSION: 900,
}


# The writable fields of a rule, in the order the API shows them (its input and output read this).
RULE_FIELDS = (
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
)


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
    unknown = set(data) - set(RULE_FIELDS)
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
    elif rule.kind == RuleKind.SCORE:
        rule.metric = ""
        params = rule.params if isinstance(rule.params, dict) else {}
        if not isinstance(params.get("evaluator"), str) or not params["evaluator"].strip():
            raise ApplicationError(
                "params.evaluator: the evaluator's name is required", field="params"
            )
        if params.get("aggregate", "mean") not in SCORE_AGGREGATES:
            raise ApplicationError(
                f"params.aggregate: one of {', '.join(SCORE_AGGREGATES)}", field="params"
            )
    else:
        rule.metric = ""
    if (
        rule.kind in (RuleKind.METRIC, RuleKind.BUDGET, RuleKind.SCORE)
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
    rule = AlertRule(project=project, created_by_id=user_id(user))
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
