"""The incident page's similar past incidents: the same rule, or the same metric and scope,
earlier; when, how long, the peak in the metric's unit; and its actions keep working."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from tests.dashboard.factories import make_incident, make_rule

PASSWORD = "correct horse battery staple"


def login(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_similar_past_incidents_with_when_how_long_and_peak(alice, project, other_project) -> None:
    rule = make_rule(project)
    other_rule = make_rule(project, name="Errors (strict)", threshold=0.1, window="5m")
    latency = make_rule(project, name="Slow", metric="latency_p95", threshold=2000, group_by=[])
    now_incident = make_incident(project, rule, ago=timedelta(minutes=5), lasted=None)
    same_rule = make_incident(
        project, rule, ago=timedelta(days=2), lasted=timedelta(minutes=45), values=(0.31, 0.62)
    )
    same_scope = make_incident(
        project, other_rule, ago=timedelta(days=5), lasted=timedelta(hours=3), value=0.15
    )
    # Not similar: another metric; the same metric for another model; later; another tenant.
    make_incident(project, latency, ago=timedelta(days=1), lasted=timedelta(minutes=5), value=3000)
    make_incident(
        project,
        other_rule,
        ago=timedelta(days=3),
        lasted=timedelta(minutes=5),
        group_key='{"model":"claude-3"}',
        group={"model": "claude-3"},
    )
    later = make_incident(project, rule, ago=timedelta(minutes=1), lasted=timedelta(seconds=30))
    foreign_rule = make_rule(other_project)
    make_incident(other_project, foreign_rule, ago=timedelta(days=1), lasted=timedelta(minutes=9))

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
    rule = make_rule(project, group_by=[])
    incident = make_incident(project, rule, ago=timedelta(minutes=5), lasted=None)
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
