"""Rule evaluation: metrics over calls, group-by, min samples, incident lifecycle, scheduling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from apps.alerts import evaluators
from apps.alerts.models import (
    AlertRule,
    EvalState,
    EventKind,
    Incident,
    IncidentState,
    Notification,
)
from apps.alerts.services import evaluation, incidents, rules
from apps.core.errors import ApplicationError
from apps.traces.models import Call
from tests.alerts.conftest import add_calls, add_feedback

pytestmark = pytest.mark.django_db


def _rule(project, channel=None, **fields):
    data = {
        "name": "rule",
        "kind": "metric",
        "operator": ">",
        "window": "5m",
        "min_samples": 1,
        "renotify_interval": 0,
        **fields,
    }
    if channel is not None:
        data["channels"] = [channel.pk]
    return rules.rule_create(project=project, **data)


def _values(outcome):
    return {tuple(sorted(g.group.items())): (g.value, g.severity) for g in outcome.groups}


def test_error_rate_min_samples_blocks_firing(project, now):
    rule = _rule(project, metric="error_rate", threshold=0.2, min_samples=20)
    add_calls(project, count=10, errors=9, at=now)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    (group,) = outcome.groups
    assert group.value == pytest.approx(0.9)
    assert group.severity is None
    assert not Incident.objects.exists()


def test_only_calls_in_the_window_count(project, now):
    rule = _rule(project, metric="error_rate", threshold=0.2)
    add_calls(project, count=20, errors=20, at=now - timedelta(minutes=10))  # before the window
    add_calls(project, count=20, errors=0, at=now)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert outcome.groups[0].value == 0.0
    assert outcome.groups[0].sample_count == 20


def test_p95_latency_is_postgres_percentile_cont(project, now):
    rule = _rule(
        project, metric="latency_p95", threshold=900, critical_threshold=5000, min_samples=10
    )
    for i in range(1, 101):
        add_calls(project, count=1, at=now, latency_ms=float(i * 10))
    add_calls(project, count=5, at=now, latency_ms=None)  # no latency: not a sample
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    (group,) = outcome.groups
    # Linear interpolation between the 95th and 96th of 100 values (950 and 960).
    assert group.value == pytest.approx(950.5)
    assert (group.sample_count, group.severity) == (100, "warning")
    assert Incident.objects.get().threshold == 900


def test_p95_escalates_from_warning_to_critical(project, slack_channel, now):
    rule = _rule(
        project,
        slack_channel,
        metric="latency_p95",
        threshold=1000,
        critical_threshold=5000,
        min_samples=10,
    )
    add_calls(project, count=50, at=now, latency_ms=2000.0)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert Incident.objects.get().severity == "warning"
    later = now + timedelta(minutes=10)
    add_calls(project, count=50, at=later, latency_ms=8000.0)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=later)
    incident = Incident.objects.get()
    assert incident.severity == "critical"
    assert outcome.groups[0].events == [EventKind.ESCALATED]
    assert Notification.objects.count() == 2


def test_cost_per_hour_and_tokens(project, now):
    cost = _rule(project, metric="cost", threshold=1.0, window="1h")
    tokens = _rule(project, metric="tokens", threshold=50_000, window="1d")
    add_calls(project, count=100, at=now, cost_usd=0.02, total_tokens=600, spread_s=3000)
    assert evaluation.rule_evaluate(rule_id=cost.pk, now=now).groups[0].value == pytest.approx(2.0)
    assert evaluation.rule_evaluate(rule_id=tokens.pk, now=now).groups[0].value == 60_000
    assert Incident.objects.filter(state="firing").count() == 2
    summary = Incident.objects.get(rule=cost).summary
    assert "$2.00" in summary
    assert "1h" in summary


def test_negative_feedback_rate(project, now):
    rule = _rule(project, metric="negative_feedback_rate", threshold=0.3, min_samples=5)
    calls = add_calls(project, count=20, at=now)
    add_feedback(project, calls[:4], score=0.0)
    add_feedback(project, calls[4:10], score=1.0)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    (group,) = outcome.groups
    assert group.sample_count == 10  # calls with feedback
    assert group.value == pytest.approx(0.4)
    assert group.severity == "warning"


def test_safety_flag_rate(project, now):
    rule = _rule(project, metric="safety_flag_rate", threshold=0.1)
    add_calls(project, count=5, at=now, flagged=True)
    add_calls(project, count=15, at=now, flagged=False)
    assert evaluation.rule_evaluate(rule_id=rule.pk, now=now).groups[0].value == pytest.approx(0.25)


def test_group_by_release_and_filters(project, now):
    rule = _rule(
        project,
        metric="error_rate",
        threshold=0.2,
        group_by=["release"],
        filters={"environment": "production"},
    )
    add_calls(project, count=20, errors=10, at=now, release="v2")
    add_calls(project, count=20, errors=0, at=now, release="v1")
    add_calls(project, count=20, errors=20, at=now, release="v1", environment="staging")
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert _values(outcome) == {
        (("release", "v2"),): (0.5, "warning"),
        (("release", "v1"),): (0.0, None),
    }
    incident = Incident.objects.get()
    assert incident.group == {"release": "v2"}
    assert len(incident.details["examples"]) == 5
    assert "release v2" in incident.summary


def test_one_open_incident_per_rule_and_group_is_enforced_by_the_database(project, now):
    rule = _rule(project, metric="error_rate", threshold=0.2)
    add_calls(project, count=20, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    existing = Incident.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(
            project=project,
            rule=rule,
            group_key=existing.group_key,
            state=IncidentState.PENDING,
            severity="warning",
            started_at=now,
        )


def test_pending_then_firing_then_resolved_and_history(project, slack_channel, now):
    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2, pending="2m")
    add_calls(project, count=20, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    assert incident.state == IncidentState.PENDING
    assert not Notification.objects.exists()
    t1 = now + timedelta(minutes=3)
    add_calls(project, count=20, errors=10, at=t1)
    evaluation.rule_evaluate(rule_id=rule.pk, now=t1)
    incident.refresh_from_db()
    assert incident.state == IncidentState.FIRING
    t2 = t1 + timedelta(minutes=10)
    add_calls(project, count=20, errors=0, at=t2)
    evaluation.rule_evaluate(rule_id=rule.pk, now=t2)
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert [e.kind for e in incident.events.all()] == ["pending", "firing", "resolved"]
    assert Notification.objects.count() == 2


def test_pending_that_clears_sends_nothing(project, slack_channel, now):
    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2, pending="5m")
    add_calls(project, count=20, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    t1 = now + timedelta(minutes=6)
    add_calls(project, count=20, errors=0, at=t1)
    evaluation.rule_evaluate(rule_id=rule.pk, now=t1)
    incident = Incident.objects.get()
    assert incident.state == IncidentState.RESOLVED
    assert incident.fired_at is None
    assert not Notification.objects.exists()


def test_no_data_keeps_a_firing_rate_incident(project, slack_channel, now):
    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2)
    add_calls(project, count=20, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now + timedelta(hours=1))
    assert outcome.groups[0].state == IncidentState.FIRING
    assert Incident.objects.get().state == IncidentState.FIRING


def test_renotify_interval_and_acknowledge(project, slack_channel, now, alice):
    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2, renotify_interval="1h")
    for minutes in (0, 30, 61):
        at = now + timedelta(minutes=minutes)
        add_calls(project, count=20, errors=10, at=at)
        evaluation.rule_evaluate(rule_id=rule.pk, now=at)
    incident = Incident.objects.get()
    assert [e.kind for e in incident.events.all()] == ["firing", "renotify"]
    incidents.incident_acknowledge(incident=incident, user=alice)
    at = now + timedelta(minutes=125)
    add_calls(project, count=20, errors=10, at=at)
    evaluation.rule_evaluate(rule_id=rule.pk, now=at)
    assert Notification.objects.count() == 2  # acknowledged: no more reminders
    assert incident.events.last().kind == "acknowledged"


def test_cooldown_suppresses_a_flapping_rule(project, slack_channel, now):
    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2, cooldown="30m")
    steps = [(0, 10), (6, 0), (12, 10)]  # fire, resolve, fire again 12 minutes later
    for minutes, errors in steps:
        at = now + timedelta(minutes=minutes)
        add_calls(project, count=20, errors=errors, at=at)
        evaluation.rule_evaluate(rule_id=rule.pk, now=at)
    latest = Incident.objects.order_by("-id").first()
    assert latest.state == IncidentState.FIRING
    assert not latest.notified
    assert [e.kind for e in latest.events.all()] == ["suppressed"]
    assert Notification.objects.count() == 2  # firing + resolved of the first incident
    # Still firing after the cooldown: announced once then.
    at = now + timedelta(minutes=45)
    add_calls(project, count=20, errors=10, at=at)
    evaluation.rule_evaluate(rule_id=rule.pk, now=at)
    latest.refresh_from_db()
    assert latest.notified
    assert Notification.objects.count() == 3


def test_mute_silences_messages_but_keeps_history(project, slack_channel, now, alice):
    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2)
    add_calls(project, count=20, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    incidents.incident_mute(incident=incident, user=alice, duration_s=24 * 3600)
    later = now + timedelta(minutes=10)
    add_calls(project, count=20, errors=0, at=later)
    evaluation.rule_evaluate(rule_id=rule.pk, now=later)
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert Notification.objects.count() == 1  # only the original firing message
    assert [e.kind for e in incident.events.all()] == ["firing", "muted", "resolved"]


def test_manual_resolve_sends_one_message(project, slack_channel, now, alice):
    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2)
    add_calls(project, count=20, errors=10, at=now)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    incidents.incident_resolve(incident=incident, user=alice)
    incidents.incident_resolve(incident=incident, user=alice)
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert incident.resolved_by == alice
    assert Notification.objects.count() == 2
    with pytest.raises(ApplicationError):
        incidents.incident_acknowledge(incident=incident, user=alice)


def test_budget_per_end_user(project, now):
    rule = rules.rule_create(
        project=project, name="Budget", kind="budget", threshold=1.0, window="1d"
    )
    add_calls(project, count=10, at=now, end_user_id="heavy", cost_usd=0.5)
    add_calls(project, count=10, at=now, end_user_id="light", cost_usd=0.01)
    add_calls(project, count=10, at=now, end_user_id="", cost_usd=5.0)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    assert incident.group == {"end_user": "heavy"}
    assert incident.value == pytest.approx(5.0)


def test_rule_kind_without_evaluator_records_an_error(project, now, monkeypatch):
    monkeypatch.delitem(evaluators.EVALUATORS, "embedding_drift")
    rule = rules.rule_create(project=project, name="Drift", kind="embedding_drift")
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    rule.refresh_from_db()
    assert not outcome.ok
    assert "no evaluator" in rule.last_error
    assert rule.next_check_at > now  # the schedule moves on


def test_registered_evaluator_hook_drives_incidents(project, slack_channel, now, monkeypatch):
    @dataclass
    class DetectionResult:
        drifted: bool
        score: float
        p_value: float
        summary: str

    result = DetectionResult(True, 0.31, 0.0004, "Intent mix shifted: billing 12% -> 31%")

    def evaluate(rule, at):
        return [evaluators.observation_from_detection(result, sample_count=400)]

    monkeypatch.setitem(evaluators.EVALUATORS, "intent_shift", evaluate)
    rule = rules.rule_create(
        project=project, name="Intents", kind="intent_shift", channels=[slack_channel.pk]
    )
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    assert incident.state == "firing"
    assert "billing" in incident.summary
    assert "p-value" in incident.details["confidence"]
    result.drifted = False
    evaluation.rule_evaluate(rule_id=rule.pk, now=now + timedelta(minutes=5))
    incident.refresh_from_db()
    assert incident.state == "resolved"


def test_dispatch_claims_due_rules_once_and_janitor_frees_stuck(project, now):
    due = _rule(project, metric="error_rate", threshold=0.2)
    later = _rule(project, metric="error_rate", threshold=0.2)
    AlertRule.objects.filter(pk=later.pk).update(next_check_at=now + timedelta(hours=1))
    assert evaluation.alert_rules_claim_due(now=now + timedelta(seconds=1)) == [due.pk]
    assert evaluation.alert_rules_claim_due(now=now + timedelta(seconds=2)) == []  # running
    assert evaluation.alert_rules_reset_stuck(now=now + timedelta(minutes=1)) == 0
    assert evaluation.alert_rules_reset_stuck(now=now + timedelta(minutes=11)) == 1
    due.refresh_from_db()
    assert due.eval_state == EvalState.IDLE
    evaluation.rule_evaluate(rule_id=due.pk, now=now)
    due.refresh_from_db()
    assert due.eval_state == EvalState.IDLE
    assert due.next_check_at == now + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": "nope", "threshold": 1}, "metric"),
        ({"metric": "error_rate"}, "threshold"),
        ({"metric": "error_rate", "threshold": 1, "window": "5 parsecs"}, "window"),
        ({"metric": "error_rate", "threshold": 1, "window": "10s"}, "window"),
        ({"metric": "error_rate", "threshold": 1, "group_by": ["colour"]}, "group_by"),
        ({"metric": "error_rate", "threshold": 1, "filters": {"colour": "x"}}, "filters"),
        (
            {"metric": "error_rate", "threshold": 0.5, "critical_threshold": 0.2},
            "critical_threshold",
        ),
        ({"metric": "error_rate", "threshold": 1, "channels": [999999]}, "channels"),
    ],
)
def test_rule_validation_names_the_field(project, fields, field):
    with pytest.raises(ApplicationError) as info:
        rules.rule_create(project=project, name="x", kind="metric", **fields)
    assert info.value.field == field
    assert not AlertRule.objects.exists()


def test_detector_rules_are_checked_less_often(project):
    drift = rules.rule_create(project=project, name="d", kind="embedding_drift")
    regression = rules.rule_create(project=project, name="r", kind="regression")
    metric = _rule(project, metric="error_rate", threshold=0.1, check_interval="30s")
    assert (drift.check_interval_s, regression.check_interval_s) == (300, 900)
    assert metric.check_interval_s == 30


@pytest.mark.parametrize("metric", sorted(evaluators.ROLLUP_METRICS))
def test_long_windows_read_rollups_and_agree_with_raw_calls(project, now, metric, monkeypatch):
    rule = _rule(project, metric=metric, threshold=1e12, window="6h", group_by=["model"])
    at = now.replace(second=0, microsecond=0)  # minute-aligned: the rollup window is exact
    for hours, model in enumerate(("gpt-4o-mini", "gpt-4o", "gpt-4o-mini")):
        add_calls(
            project,
            count=40,
            errors=hours * 5,
            at=at - timedelta(hours=hours),
            spread_s=3000,
            model=model,
            latency_ms=150.0 * (hours + 1),
            flagged=hours == 1,
        )
    start = at - timedelta(hours=6)
    rolled = evaluators._grouped(rule, metric, start, at, ["model"])
    with monkeypatch.context() as patch:
        patch.setattr(evaluators, "ROLLUP_MIN_WINDOW", timedelta(days=365))
        raw = evaluators._grouped(rule, metric, start, at, ["model"])
    assert rolled.keys() == raw.keys() == {'{"model":"gpt-4o"}', '{"model":"gpt-4o-mini"}'}
    for key, (group, row) in rolled.items():
        assert group == raw[key][0]
        expected = evaluators._value(metric, raw[key][1])
        # Latency percentiles come from log histograms (a few % relative error).
        assert evaluators._value(metric, row) == pytest.approx(expected, rel=0.03), key
    # A change behind the rollups' back (no mark, no flush) is not seen: the read was rollups.
    Call.objects.filter(project=project).update(
        cost_usd=9.0, total_tokens=1, status="ok", flagged=False, latency_ms=1.0
    )
    assert evaluators._grouped(rule, metric, start, at, ["model"]) == rolled


def test_a_manually_resolved_incident_does_not_fire_again_inside_the_window(
    project, slack_channel, alice
):
    from django.utils import timezone

    rule = _rule(project, slack_channel, metric="error_rate", threshold=0.2, window="10m")
    start = timezone.now()
    add_calls(project, count=20, errors=10, at=start)
    evaluation.rule_evaluate(rule_id=rule.pk, now=start)
    incident = Incident.objects.get()
    assert incident.state == IncidentState.FIRING
    incidents.incident_resolve(incident=incident, user=alice, message="rolled back")
    sent = Notification.objects.count()
    # A minute later the same bad calls are still in the 10-minute window.
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=start + timedelta(minutes=1))
    assert outcome.groups[0].state == "held"
    assert Incident.objects.count() == 1
    assert Notification.objects.count() == sent
    # Once the window has rolled past the resolve, a breach that still holds opens a new one.
    later = start + timedelta(minutes=11)
    add_calls(project, count=20, errors=10, at=later)
    evaluation.rule_evaluate(rule_id=rule.pk, now=later)
    assert Incident.objects.count() == 2
    assert Incident.objects.order_by("-id").first().state == IncidentState.FIRING


def test_a_resolved_incident_keeps_the_value_its_summary_states(project, now):
    from apps.dashboard.templatetags.dashboard import incident_value

    rule = _rule(project, metric="error_rate", threshold=0.2)
    add_calls(project, count=20, errors=20, at=now)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    later = now + timedelta(minutes=6)
    add_calls(project, count=100, errors=13, at=later)  # recovered to 13%
    evaluation.rule_evaluate(rule_id=rule.pk, now=later)
    incident = Incident.objects.select_related("rule").get()
    assert incident.state == IncidentState.RESOLVED
    assert "100.0%" in incident.summary
    assert incident.value == pytest.approx(1.0)
    assert incident_value(incident) == "100.0%"
    assert incident_value(incident, "threshold") == "20.0%"
    assert incident.details["resolved_value"] == pytest.approx(0.13)
