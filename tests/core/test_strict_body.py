"""A management body with a field it does not declare is a 400 naming that field, and nothing
changes: before, DRF dropped it, so ``PATCH {"injection_fpx": 0.05}`` answered 200 and kept the
old operating point. Ingest stays lenient (an older server must accept a newer SDK)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.accounts.models import Project
from apps.alerts.models import AlertRule, Channel
from apps.quality.selectors import safety_fpr_for_project
from apps.quality.services import safety_settings_set
from apps.traces.models import Call

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/SuperSecretToken42"


@pytest.fixture
def admin(api_client: APIClient, admin_key: str) -> APIClient:
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    return api_client


def test_a_misspelt_field_is_named_and_nothing_changes(admin: APIClient, project: Project) -> None:
    safety_settings_set(project=project, injection_fpr=0.05)
    answer = admin.patch("/api/v1/safety-settings", {"injection_fpx": 0.01}, format="json")
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert body["field"] == "injection_fpx"
    assert "unknown field" in body["error"]
    assert "injection_fpr" in body["error"]  # the fields it takes are named
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}

    # A valid field beside an unknown one is not half-applied either.
    mixed = {"injection_fpr": 0.01, "toxicity": 0.02}
    assert admin.patch("/api/v1/safety-settings", mixed, format="json").status_code == 400
    assert safety_fpr_for_project(project_id=project.pk) == {"injection": 0.05}


def test_a_channel_with_an_unknown_field_is_not_created(admin: APIClient) -> None:
    body = {"kind": "slack", "name": "#alerts", "url": SLACK_URL, "channel": "#ops"}
    answer = admin.post("/api/v1/channels", body, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["field"] == "channel"
    assert not Channel.objects.exists()
    del body["channel"]
    assert admin.post("/api/v1/channels", body, format="json").status_code == 201


def test_a_rule_with_an_unknown_field_is_not_created(admin: APIClient) -> None:
    channel = admin.post(
        "/api/v1/channels", {"kind": "slack", "name": "#a", "url": SLACK_URL}, format="json"
    ).json()["id"]
    rule = {
        "name": "Errors",
        "kind": "metric",
        "metric": "error_rate",
        "operator": ">",
        "threshold": 0.2,
        "window": "5m",
        "channels": [channel],
        "treshold": 0.5,
    }
    answer = admin.post("/api/v1/alert-rules", rule, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["field"] == "treshold"
    assert not AlertRule.objects.exists()


def test_the_project_slug_may_be_in_the_body(
    api_client: APIClient, project: Project, alice: object
) -> None:
    api_client.force_login(alice)  # type: ignore[arg-type]
    url = "/api/v1/safety-settings"
    answer = api_client.patch(url, {"project": project.slug, "refusal_fpr": 0.02}, format="json")
    assert answer.status_code == 200, answer.content
    assert safety_fpr_for_project(project_id=project.pk) == {"refusal": 0.02}

    bad = api_client.patch(
        f"{url}?project={project.slug}", {"project": 7, "refusal_fpr": 0.05}, format="json"
    )
    assert bad.status_code == 400, bad.content
    assert bad.json()["field"] == "project"
    assert safety_fpr_for_project(project_id=project.pk) == {"refusal": 0.02}


def test_ingest_names_an_unknown_field_on_its_item_and_keeps_the_rest(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    """Ingest is as strict per item: the misspelt item is reported, the valid one is kept."""
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    good = {
        "type": "call",
        "id": str(uuid.uuid4()),
        "body": {"model": "m", "prompt": "hi", "response": "hello"},
    }
    bad = {
        "type": "call",
        "id": str(uuid.uuid4()),
        "body": {"model": "m", "prompt": "hi", "respnse": "hello"},
    }
    answer = api_client.post("/api/v1/ingest", {"batch": [good, bad]}, format="json")
    assert answer.status_code == 207, answer.content
    body = answer.json()
    assert body["accepted"] == 1, body
    by_id = {item["id"]: item for item in body["results"]}
    assert by_id[bad["id"]]["status"] == "error"
    assert "respnse" in by_id[bad["id"]]["error"]
    assert Call.objects.filter(project=project, id=good["id"]).exists()
    assert not Call.objects.filter(project=project, id=bad["id"]).exists()


def test_the_schema_says_bodies_take_no_other_field(tmp_path: Path) -> None:
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    components = schema["components"]["schemas"]

    def body_of(path: str, method: str) -> dict[str, object]:
        content = schema["paths"][path][method]["requestBody"]["content"]["application/json"]
        return components[content["schema"]["$ref"].rsplit("/", 1)[-1]]

    for path, method in [
        ("/api/v1/safety-settings", "patch"),
        ("/api/v1/channels", "post"),
        ("/api/v1/alert-rules", "post"),
    ]:
        body = body_of(path, method)
        assert body["additionalProperties"] is False, (path, method)
        assert "project" in body["properties"]  # type: ignore[operator]
