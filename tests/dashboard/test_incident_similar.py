"""The incident page's similar past incidents: the same rule, or the same metric and scope,
earlier; when, how long, the peak in the metric's unit; and its actions keep working."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.alerts.models import Incident, IncidentEvent
from apps.alerts.services.rules import rule_create

PASSWORD = "correct horse battery staple"


def login(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _incident(project: Any, rule: Any, *, ago: timedelta, lasted: timedelta | None, **kw: Any):
    start = timezone.now() - ago
    incident = Incident.objects.create(
        project=project,
        rule=rule,
        group_key=kw.pop("group_key", '{"model":"gpt-4o"}'),
        group=kw.pop("group", {"model": "gpt-4o"}),
        state="resolved" if lasted is not None else "firing",
        severity="warning",
        value=kw.pop("value", 0.3),
        threshold=0.2,
        summary="Error rate high",
        started_at=start,
        resolved_at=start + lasted if lasted is not None else None,
    )
    for value in kw.pop("values", []):
        IncidentEvent.objects.create(incident=incident, kind="renotify", value=value)
    return incident


@pytest.mark.django_db
def test_similar_past_incidents_with_when_how_long_and_peak(alice, project, other_project) -> None:
    rule = rule_create(
        project=project,
        name="Errors",
        kind="metric",
        metric="error_rate",
        operator=">",
        threshold=0.2,
        window="10m",
        group_by=["model"],
    )
    other_rule = rule_create(
        project=project,
        name="Errors (strict)",
        kind="metric",
        metric="error_rate",
        operator=">",
        threshold=0.1,
        window="5m",
        group_by=["model"],
    )
    latency = rule_create(
        project=project,
        name="Slow",
        kind="metric",
        metric="latency_p95",
        operator=">",
        threshold=2000,
        window="10m",
    )
    now_incident = _incident(project, rule, ago=timedelta(minutes=5), lasted=None)
    same_rule = _incident(
        project, rule, ago=timedelta(days=2), lasted=timedelta(minutes=45), values=[0.31, 0.62]
    )
    same_scope = _incident(
        project, other_rule, ago=timedelta(days=5), lasted=timedelta(hours=3), value=0.15
    )
    # Not similar: another metric; the same metric for another model; later; another tenant.
    _incident(project, latency, ago=timedelta(days=1), lasted=timedelta(minutes=5), value=3000)
    _incident(
        project,
        other_rule,
        ago=timedelta(days=3),
        lasted=timedelta(minutes=5),
        group_key='{"model":"claude-3"}',
        group={"model": "claude-3"},
    )
    later = _incident(project, rule, ago=timedelta(minutes=1), lasted=timedelta(seconds=30))
    foreign_rule = rule_create(
        project=other_project,
        name="Errors",
        kind="metric",
        metric="error_rate",
        operator=">",
        threshold=0.2,
        window="10m",
        group_by=["model"],
    )
    _incident(other_project, foreign_rule, ago=timedelta(days=1), lasted=timedelta(minutes=9))

    page = login(alice).get(f"/alerts/incidents/{now_incident.pk}/")
    similar = page.context["similar"]
    assert [p.incident.pk for p in similar] == [same_rule.pk, same_scope.pk]
    assert [p.reason for p in similar] == ["same rule", "same metric and scope"]
    assert similar[0].duration == timedelta(minutes=45)
    assert similar[0].peak == "62.0%"  # the worst evaluation, in the metric's unit
    assert similar[1].peak == "15.0%"
    body = page.content.decode()
    section = body.split('id="similar"', 1)[1]
    assert "<td>45 min</td>" in section
    assert "<td>3 h</td>" in section
    assert f"/alerts/incidents/{later.pk}/" not in section


@pytest.mark.django_db
def test_the_first_incident_says_there_is_none(alice, project) -> None:
    rule = rule_create(
        project=project,
        name="Errors",
        kind="metric",
        metric="error_rate",
        operator=">",
        threshold=0.2,
        window="10m",
    )
    incident = _incident(project, rule, ago=timedelta(minutes=5), lasted=None)
    client = login(alice)
    body = client.get(f"/alerts/incidents/{incident.pk}/").content.decode()
    assert "this is the first incident" in body
    # The page's actions still work.
    client.post(f"/alerts/incidents/{incident.pk}/mute/", {"duration": "1h", "next": "incident"})
    incident.refresh_from_db()
    assert incident.muted_until is not None
    client.post(f"/alerts/incidents/{incident.pk}/acknowledge/", {"note": "looking"})
    client.post(f"/alerts/incidents/{incident.pk}/resolve/")
    incident.refresh_from_db()
    assert incident.acknowledged_by_id == alice.pk
    assert incident.state == "resolved"
