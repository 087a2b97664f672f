"""The read API: filters, cursor pagination and tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import Project
from apps.accounts.services import api_key_create
from apps.ingest.services import ingest_events

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def seed(project: Project, n: int, **body: Any) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    events = [
        {
            "type": "call",
            "id": call_id,
            "body": {
                "prompt": f"question {i}",
                "start_time": (T0 + timedelta(minutes=i)).isoformat(),
                **body,
            },
        }
        for i, call_id in enumerate(ids)
    ]
    assert ingest_events(project=project, events=events).accepted == n
    return ids


def get(client: APIClient, key: str, path: str, **params: Any) -> Any:
    return client.get(path, params, HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.django_db
def test_list_filters_and_paginates_newest_first(
    api_client: APIClient, project: Project, read_key: str
) -> None:
    seed(project, 7, model="gpt-4o", release="v1")
    seed(project, 3, model="claude-3-5-haiku", release="v2", status="error", tags=["canary"])
    page = get(api_client, read_key, "/api/v1/calls", limit=4)
    assert page.status_code == 200
    first = page.json()
    assert len(first["results"]) == 4
    seen = [r["id"] for r in first["results"]]
    cursor = first["next_cursor"]
    while cursor:
        more = get(api_client, read_key, "/api/v1/calls", limit=4, cursor=cursor).json()
        seen += [r["id"] for r in more["results"]]
        cursor = more["next_cursor"]
    assert len(seen) == len(set(seen)) == 10
    assert (
        get(api_client, read_key, "/api/v1/calls", model="gpt-4o").json()["results"][0]["model"]
        == "gpt-4o"
    )
    assert len(get(api_client, read_key, "/api/v1/calls", status="error").json()["results"]) == 3
    assert len(get(api_client, read_key, "/api/v1/calls", tag="canary").json()["results"]) == 3
    assert len(get(api_client, read_key, "/api/v1/calls", release="v1").json()["results"]) == 7
    window = get(
        api_client,
        read_key,
        "/api/v1/calls",
        start=(T0 + timedelta(minutes=2)).isoformat(),
        end=(T0 + timedelta(minutes=4)).isoformat(),
    ).json()["results"]
    assert len(window) == 3  # minutes 2 and 3 of the first seed, minute 2 of the second


@pytest.mark.django_db
def test_bad_filter_is_400_naming_it(
    api_client: APIClient, project: Project, read_key: str
) -> None:
    response = get(api_client, read_key, "/api/v1/calls", limit=0)
    assert response.status_code == 400
    assert response.json()["field"] == "limit"
    assert get(api_client, read_key, "/api/v1/calls", cursor="garbage!").status_code == 400


@pytest.mark.django_db
def test_no_read_filter_or_id_guess_crosses_projects(
    api_client: APIClient,
    project: Project,
    other_project: Project,
    read_key: str,
    alice: Any,
    charlie: Any,
) -> None:
    ours = seed(project, 2, model="ours")
    theirs = seed(other_project, 2, model="theirs")
    other_key = api_key_create(project=other_project, scopes=["read"]).raw
    listed = get(api_client, read_key, "/api/v1/calls").json()["results"]
    assert {r["id"] for r in listed} == set(ours)
    assert get(api_client, read_key, "/api/v1/calls", model="theirs").json()["results"] == []
    assert get(api_client, read_key, f"/api/v1/calls/{theirs[0]}").status_code == 404
    assert get(api_client, other_key, f"/api/v1/calls/{ours[0]}").status_code == 404
    assert get(api_client, read_key, "/api/v1/calls/not-a-uuid").status_code == 404
    # A person: member of one organization only, by session.
    session = Client()
    session.force_login(charlie)
    assert session.get("/api/v1/calls", {"project": project.slug}).status_code == 404
    assert session.get(f"/api/v1/calls/{ours[0]}", {"project": project.slug}).status_code == 404
    assert session.get("/api/v1/calls", {"project": other_project.slug}).status_code == 200
    session.force_login(alice)
    body = session.get(f"/api/v1/calls/{ours[0]}", {"project": project.slug}).json()
    assert body["prompt"] == "question 0"


@pytest.mark.django_db
def test_ingest_key_cannot_read(api_client: APIClient, project: Project, ingest_key: str) -> None:
    assert get(api_client, ingest_key, "/api/v1/calls").status_code == 403
    assert api_client.get("/api/v1/calls").status_code == 401
