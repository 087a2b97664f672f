"""The alerts REST API: create, mask, validate, isolate projects, deny the wrong people."""

from __future__ import annotations

import pytest
from django.urls import include, path

from apps.alerts.models import AlertRule, Channel, Incident, Notification
from apps.alerts.services import channels, rules
from tests.alerts.conftest import add_calls

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/SuperSecretToken42"

# Mounted here the way the project mounts it (apps/urls.py: path("api/v1/", include(...))).
urlpatterns = [path("api/v1/", include("apps.alerts.urls"))]


@pytest.fixture(autouse=True)
def _alerts_urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.fixture
def admin_client(api_client, admin_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    return api_client


def _create_channel(client, **overrides):
    body = {"kind": "slack", "name": "#alerts", "url": SLACK_URL, **overrides}
    return client.post("/api/v1/channels", body, format="json")


def _rule_body(channel_id, **overrides):
    return {
        "name": "Errors on v2",
        "kind": "metric",
        "metric": "error_rate",
        "operator": ">",
        "threshold": 0.2,
        "window": "5m",
        "min_samples": 20,
        "filters": {"release": "v2"},
        "channels": [channel_id],
        **overrides,
    }


def test_create_channel_masks_the_url_everywhere(admin_client):
    response = _create_channel(admin_client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"]
    assert body["kind"] == "slack"
    assert "SuperSecretToken42" not in response.content.decode()
    assert body["url"].startswith("https://hooks.slack.com/")
    listed = admin_client.get("/api/v1/channels").content.decode()
    detail = admin_client.get(f"/api/v1/channels/{body['id']}").content.decode()
    assert "SuperSecretToken42" not in listed + detail
    stored = Channel.objects.get()
    assert "SuperSecretToken42" not in stored.url_encrypted  # encrypted at rest


def test_webhook_channel_shows_its_signing_secret_once(admin_client):
    response = admin_client.post(
        "/api/v1/channels",
        {"kind": "webhook", "name": "pager", "url": "https://example.com/hooks/driftline"},
        format="json",
    )
    assert response.status_code == 201
    secret = response.json()["signing_secret"]
    assert secret.startswith("whsec_")
    again = admin_client.get(f"/api/v1/channels/{response.json()['id']}").content.decode()
    assert secret not in again
    assert "signing_secret" not in again


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "https://evil.example/services/x"}, "url"),  # a Slack channel needs Slack
        ({"url": "file:///etc/passwd"}, "url"),
        ({"kind": "sms"}, "kind"),
        ({"name": ""}, "name"),
    ],
)
def test_channel_validation_names_the_field(admin_client, body, field):
    response = _create_channel(admin_client, **body)
    assert 400 <= response.status_code < 500
    assert response.json()["field"] == field
    assert not Channel.objects.exists()


def test_create_rule_and_crud(admin_client):
    channel_id = _create_channel(admin_client).json()["id"]
    response = admin_client.post(
        "/api/v1/alert-rules",
        _rule_body(channel_id, critical_threshold=0.5, group_by=["model"], cooldown="10m"),
        format="json",
    )
    assert response.status_code == 201, response.content
    rule = response.json()
    assert rule["id"]
    assert rule["window"] == "5m"
    assert rule["cooldown"] == "10m"
    assert rule["channels"] == [channel_id]
    assert rule["filters"] == {"release": "v2"}

    listed = admin_client.get("/api/v1/alert-rules").json()["results"]
    assert [r["id"] for r in listed] == [rule["id"]]
    patched = admin_client.patch(
        f"/api/v1/alert-rules/{rule['id']}", {"threshold": 0.3, "window": "1h"}, format="json"
    )
    assert patched.status_code == 200
    assert (patched.json()["threshold"], patched.json()["window"]) == (0.3, "1h")
    assert patched.json()["critical_threshold"] == 0.5  # untouched
    assert admin_client.delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 204
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"metric": "happiness"}, "metric"),
        ({"window": "soon"}, "window"),
        ({"threshold": "high"}, "threshold"),
        ({"group_by": ["colour"]}, "group_by"),
        ({"channels": [424242]}, "channels"),
        ({"threshold": None}, "threshold"),
    ],
)
def test_rule_validation_names_the_field(admin_client, overrides, field):
    channel_id = _create_channel(admin_client).json()["id"]
    response = admin_client.post(
        "/api/v1/alert-rules", _rule_body(channel_id, **overrides), format="json"
    )
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["field"] == field
    assert not AlertRule.objects.exists()


def test_evaluate_now_and_incident_actions(admin_client, project, settings):
    settings.DRIFTLINE_WEBHOOK_ALLOW_PRIVATE = False
    channel_id = _create_channel(admin_client).json()["id"]
    rule_id = admin_client.post(
        "/api/v1/alert-rules", _rule_body(channel_id), format="json"
    ).json()["id"]
    from django.utils import timezone

    add_calls(project, count=30, errors=12, at=timezone.now(), release="v2")
    add_calls(project, count=30, errors=30, at=timezone.now(), release="v1")  # filtered out
    outcome = admin_client.post(f"/api/v1/alert-rules/{rule_id}/evaluate").json()
    assert outcome["ok"]
    assert outcome["groups"][0]["state"] == "firing"
    assert outcome["groups"][0]["value"] == pytest.approx(0.4)

    rules = admin_client.get("/api/v1/alert-rules").json()["results"]
    assert rules[0]["open_incident_count"] == 1
    incidents = admin_client.get("/api/v1/incidents").json()["results"]
    assert len(incidents) == 1
    assert incidents[0]["latest_event"]["kind"] == "firing"
    incident_id = incidents[0]["id"]
    assert incidents[0]["examples"]
    assert incidents[0]["confidence"]
    acked = admin_client.post(f"/api/v1/incidents/{incident_id}/acknowledge").json()
    assert acked["acknowledged_by"] is None  # acknowledged by an API key, not a person
    assert acked["acknowledged_at"] is not None
    muted = admin_client.post(
        f"/api/v1/incidents/{incident_id}/mute", {"duration": "2h"}, format="json"
    ).json()
    assert muted["muted_until"] is not None
    resolved = admin_client.post(f"/api/v1/incidents/{incident_id}/resolve").json()
    assert resolved["state"] == "resolved"
    assert [e["kind"] for e in resolved["events"]] == [
        "firing",
        "acknowledged",
        "muted",
        "resolved",
    ]
    notifications = admin_client.get("/api/v1/notifications").json()["results"]
    assert [n["event"] for n in notifications] == ["firing"]  # muted: no resolve message
    assert admin_client.get("/api/v1/incidents?state=firing").json()["results"] == []


def test_channel_test_endpoint(admin_client, project, slack, allow_private):
    channel_id = _create_channel(admin_client, url=slack.url()).json()["id"]
    response = admin_client.post(f"/api/v1/channels/{channel_id}/test")
    assert response.status_code == 200
    assert response.json()["status"] == "sent"
    assert response.json()["event"] == "test"
    assert len(slack.requests) == 1


def test_other_projects_objects_are_404(admin_client, other_project, allow_private):
    channel, _ = channels.channel_create(
        project=other_project, kind="slack", name="theirs", url=SLACK_URL
    )
    rule = rules.rule_create(
        project=other_project, name="theirs", metric="error_rate", threshold=0.1
    )
    incident = Incident.objects.create(
        project=other_project,
        rule=rule,
        state="firing",
        severity="warning",
        started_at=rule.created_at,
    )
    for url in (
        f"/api/v1/channels/{channel.pk}",
        f"/api/v1/alert-rules/{rule.pk}",
        f"/api/v1/incidents/{incident.pk}",
    ):
        assert admin_client.get(url).status_code == 404, url
    assert admin_client.patch(f"/api/v1/channels/{channel.pk}", {"name": "x"}).status_code == 404
    assert admin_client.delete(f"/api/v1/alert-rules/{rule.pk}").status_code == 404
    assert admin_client.post(f"/api/v1/alert-rules/{rule.pk}/evaluate").status_code == 404
    assert admin_client.post(f"/api/v1/channels/{channel.pk}/test").status_code == 404
    assert admin_client.post(f"/api/v1/incidents/{incident.pk}/resolve").status_code == 404
    assert admin_client.get("/api/v1/channels").json()["results"] == []
    assert admin_client.get("/api/v1/incidents").json()["results"] == []
    # Their channel cannot be attached to our rule either.
    ours = admin_client.post("/api/v1/alert-rules", _rule_body(channel.pk), format="json")
    assert ours.status_code == 400
    assert ours.json()["field"] == "channels"
    Incident.objects.filter(pk=incident.pk).update(state="resolved")
    assert Notification.objects.count() == 0


def test_session_owner_and_member_may_manage(api_client, alice, bob, project):
    for user in (alice, bob):
        api_client.force_authenticate(user)
        response = api_client.post(
            f"/api/v1/channels?project={project.slug}",
            {"kind": "slack", "name": f"#{user.username}", "url": SLACK_URL},
            format="json",
        )
        assert response.status_code == 201, response.content


def test_reviewer_outsider_and_weak_keys_are_denied(
    api_client, reviewer_user, charlie, project, read_key, ingest_key
):
    api_client.force_authenticate(reviewer_user)
    assert api_client.get(f"/api/v1/channels?project={project.slug}").status_code == 403
    response = api_client.post(
        f"/api/v1/channels?project={project.slug}",
        {"kind": "slack", "name": "x", "url": SLACK_URL},
        format="json",
    )
    assert response.status_code == 403
    api_client.force_authenticate(charlie)
    assert api_client.get(f"/api/v1/alert-rules?project={project.slug}").status_code == 404
    api_client.force_authenticate(None)
    for key in (read_key, ingest_key):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        assert api_client.get("/api/v1/alert-rules").status_code == 403
    api_client.credentials()
    assert api_client.get("/api/v1/incidents").status_code in (401, 403)
    assert not Channel.objects.exists()


def test_rule_api_fields_are_the_service_fields() -> None:
    from apps.alerts.apis import RuleInput, RuleOutput

    assert tuple(RuleInput().fields) == rules.RULE_FIELDS
    assert set(rules.RULE_FIELDS) <= set(RuleOutput.Meta.fields)
