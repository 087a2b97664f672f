"""Drift rules on stored drift checks, and regression rules on the quality statistics."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.alerts.messages import message_for_event
from apps.alerts.models import Incident, IncidentState, Notification
from apps.alerts.services import evaluation, rules
from apps.alerts.transports.slack import build_payload
from apps.drift.models import DriftCheck, DriftMonitor
from tests.alerts.conftest import add_calls

pytestmark = pytest.mark.django_db


def _check(project, now, **fields):
    monitor, _ = DriftMonitor.objects.get_or_create(project=project)
    values = {
        "status": "tested",
        "n": 800,
        "tested_n": 500,
        "drifted": False,
        "score": 0.4,
        "p_value": 0.4,
        "threshold": 0.01,
        "summary": "",
    }
    values.update(fields)
    return DriftCheck.objects.create(
        monitor=monitor,
        project=project,
        window_start=now - timedelta(hours=24),
        window_end=now - timedelta(minutes=1),
        **values,
    )


def test_embedding_drift_fires_from_the_latest_check_and_clears(project, slack_channel, now):
    calls = add_calls(project, count=3, at=now, prompt="wie ist das wetter")
    rule = rules.rule_create(
        project=project,
        name="Embedding drift",
        kind="embedding_drift",
        params={"critical_p_value": 1e-6},
        channels=[slack_channel.pk],
    )
    _check(
        project,
        now,
        drifted=True,
        score=7.2,
        p_value=6e-8,
        summary="Centroid distance 0.21 (calibrated threshold 0.08).",
        example_call_ids=[c.id for c in calls],
    )
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    assert incident.state == IncidentState.FIRING
    assert incident.severity == "critical"
    assert "Centroid distance" in incident.summary
    assert "p-value 6e-08" in incident.details["confidence"]
    assert [e["text"] for e in incident.details["examples"]] == ["wie ist das wetter"] * 3
    assert Notification.objects.count() == 1

    later = now + timedelta(hours=1)
    _check(project, later, drifted=False)
    evaluation.rule_evaluate(rule_id=rule.pk, now=later)
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED


def test_stale_or_untested_check_is_no_data(project, now):
    rule = rules.rule_create(project=project, name="Drift", kind="embedding_drift")
    _check(project, now - timedelta(days=1), drifted=True, p_value=1e-9)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert outcome.groups[0].state == "no_data"
    _check(project, now, status="too_few", drifted=False)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert outcome.groups[0].state == "no_data"
    assert not Incident.objects.exists()


def test_intent_shift_one_incident_per_moved_intent(project, now):
    rule = rules.rule_create(project=project, name="Intent mix", kind="intent_shift")
    _check(
        project,
        now,
        drifted=True,
        p_value=1e-5,
        intent_shares=[
            {"index": 0, "name": "billing", "baseline_share": 0.12, "window_share": 0.31,
             "z": 6.3, "moved": "grew"},
            {"index": 1, "name": "weather", "baseline_share": 0.5, "window_share": 0.48,
             "z": 0.4, "moved": ""},
        ],
    )  # fmt: skip
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    assert incident.group == {"intent": "billing"}
    assert "12.0% -> 31.0%" in incident.summary
    assert (incident.value, incident.baseline) == (0.31, 0.12)


def test_new_intent(project, now):
    rule = rules.rule_create(project=project, name="New intents", kind="new_intent")
    _check(
        project,
        now,
        drifted=True,
        p_value=1e-4,
        new_intents=[
            {"size": 40, "share": 0.08, "label": "refund crypto", "example_call_ids": [],
             "nearest_cluster_name": "billing"},
        ],
    )  # fmt: skip
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    incident = Incident.objects.get()
    assert "refund crypto" in incident.summary
    assert "nearest known intent 'billing'" in incident.summary


def test_regression_rule_finds_the_error_rate_regression(project, now):
    rule = rules.rule_create(
        project=project,
        name="Quality regression",
        kind="regression",
        window="1h",
        params={"metrics": ["error", "latency_ms"], "alpha": 0.01},
    )
    # Baseline: 7 hours before the window, 1% errors; now: 20% errors, same latency.
    for hour in range(1, 8):
        add_calls(project, count=100, errors=1 if hour % 2 else 0, at=now - timedelta(hours=hour))
    add_calls(project, count=200, errors=40, at=now)
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    verdicts = {g.group["metric"]: g.severity for g in outcome.groups}
    assert verdicts["error"] == "warning"
    assert verdicts["latency_ms"] is None
    incident = Incident.objects.get()
    assert incident.group == {"metric": "error"}
    assert incident.value == pytest.approx(0.2)
    assert "q (BH)" in incident.details["confidence"]
    assert len(incident.details["examples"]) > 0


def test_prompt_regression_fires_on_a_worse_new_version_and_waits_for_enough_calls(project, now):
    rule = rules.rule_create(
        project=project,
        name="Prompt versions",
        kind="prompt_regression",
        window="1h",
        params={"min_calls": 200},
    )
    add_calls(project, count=300, errors=6, at=now - timedelta(hours=30), spread_s=3600,
              prompt_name="answer", prompt_version="v1")  # fmt: skip
    # The new version, too few calls yet: no verdict.
    add_calls(project, count=150, errors=30, at=now, spread_s=3600, prompt_name="answer",
              prompt_version="v2")  # fmt: skip
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert [(g.group, g.severity, g.value) for g in outcome.groups] == [
        ({"prompt": "answer"}, None, None)
    ]
    assert not Incident.objects.exists()
    add_calls(project, count=150, errors=30, at=now - timedelta(hours=2), spread_s=3600,
              prompt_name="answer", prompt_version="v2")  # fmt: skip
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert [g.severity for g in outcome.groups] == ["warning"]
    incident = Incident.objects.get()
    assert incident.group == {"prompt": "answer"}
    assert incident.details["regressed"] == ["error"]
    assert incident.summary.startswith("Prompt answer: v2 is worse than v1 on error")
    # Slack's message links the side-by-side comparison of the two versions.
    message = message_for_event(
        event=incident.events.earliest("created_at"), incident=incident, rule=rule, delivery_id="d"
    )
    assert message.compare_url.endswith(
        "/compare/?project=" + project.slug + "&dimension=prompt_version&prompt=answer&a=v1&b=v2"
    )
    buttons = [b for block in build_payload(message)["blocks"] if block["type"] == "actions"
               for b in block["elements"]]  # fmt: skip
    assert [b["url"] for b in buttons] == [message.url, message.compare_url]


def test_prompt_regression_stays_quiet_on_a_null_run(project, now):
    rule = rules.rule_create(
        project=project, name="Prompt versions", kind="prompt_regression", window="1h"
    )
    add_calls(project, count=300, errors=15, at=now - timedelta(hours=30), spread_s=3600,
              prompt_name="answer", prompt_version="v1")  # fmt: skip
    add_calls(project, count=300, errors=15, at=now, spread_s=3600, prompt_name="answer",
              prompt_version="v2")  # fmt: skip
    outcome = evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    assert [g.severity for g in outcome.groups] == [None]
    assert not Incident.objects.exists()


def test_embedding_drift_message_names_the_streaming_chart_that_fired(project, now):
    rule = rules.rule_create(project=project, name="Drift", kind="embedding_drift")
    stream = {
        "alarm": True,
        "test": "mewma",
        "title": "MEWMA chart of whitened embeddings",
        "statistic": 91.4,
        "limit": 72.4,
        "events": 350,
    }
    _check(project, now, drifted=True, p_value=1e-4, stream=stream)
    evaluation.rule_evaluate(rule_id=rule.pk, now=now)
    confidence = Incident.objects.get().details["confidence"]
    assert "streaming MEWMA chart of whitened embeddings alarm" in confidence
    assert "statistic 91.4, limit 72.4" in confidence
