"""The native ingestion API against real PostgreSQL and Redis."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from apps.accounts.models import Project
from apps.accounts.services import api_key_revoke
from apps.traces.models import Call, Feedback

URL = "/api/v1/ingest"


def call_event(event_id: str | None = None, **body: Any) -> dict[str, Any]:
    return {
        "type": "call",
        "id": event_id or str(uuid.uuid4()),
        "body": {
            "model": "gpt-4o-mini",
            "prompt": "How do I reset my password?",
            "response": "Open Settings, then Security.",
            "input_tokens": 12,
            "output_tokens": 9,
            "latency_ms": 412.5,
            "start_time": datetime.now(UTC).isoformat(),
            **body,
        },
    }


def post(client: APIClient, key: str, payload: Any, **extra: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.generic(
        "POST",
        URL,
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        **extra,
    )


@pytest.mark.django_db
def test_batch_is_stored_and_answered_per_event(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    events = [call_event(tags=["beta"], metadata={"route": "/help"}) for _ in range(3)]
    events.append(
        {
            "type": "feedback",
            "id": str(uuid.uuid4()),
            "body": {"call_id": events[0]["id"], "score": 0},
        }
    )
    response = post(api_client, ingest_key, {"batch": events})
    assert response.status_code == 207
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted"] * 4
    assert (body["accepted"], body["duplicates"], body["errors"]) == (4, 0, 0)
    stored = Call.objects.get(project=project, id=events[0]["id"])
    assert stored.model == "gpt-4o-mini"
    assert stored.total_tokens == 21
    assert stored.tags == ["beta"]
    assert stored.metadata == {"route": "/help"}
    assert stored.processed_at is None  # the worker's part
    assert Feedback.objects.get(project=project).call_id == uuid.UUID(events[0]["id"])


@pytest.mark.django_db
def test_duplicate_ids_are_stored_once_and_never_overwritten(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    event_id = str(uuid.uuid4())
    first = post(api_client, ingest_key, {"batch": [call_event(event_id, response="first")]})
    assert first.json()["results"][0]["status"] == "accepted"
    again = post(
        api_client,
        ingest_key,
        {
            "batch": [
                call_event(event_id, response="second"),
                call_event(event_id, response="third"),
            ]
        },
    )
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert Call.objects.filter(project=project).count() == 1
    assert Call.objects.get(project=project, id=event_id).response == "first"


@pytest.mark.django_db
def test_same_id_in_another_project_is_independent(
    api_client: APIClient, ingest_key: str, project: Project, other_project: Project
) -> None:
    from apps.accounts.services import api_key_create

    other_key = api_key_create(project=other_project, scopes=["ingest"]).raw
    event_id = str(uuid.uuid4())
    assert post(api_client, ingest_key, {"batch": [call_event(event_id)]}).json()["accepted"] == 1
    # Another tenant learns nothing about ids of ours: its own copy is simply accepted.
    assert post(api_client, other_key, {"batch": [call_event(event_id)]}).json()["accepted"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_batch_store_each_event_once(
    ingest_key: str, project: Project
) -> None:
    events = [call_event() for _ in range(50)]
    statuses: list[list[str]] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        client = APIClient()
        barrier.wait()
        response = post(client, ingest_key, {"batch": events})
        statuses.append([r["status"] for r in response.json()["results"]])
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Call.objects.filter(project=project).count() == 50
    # Each event was accepted by exactly one of the four retries.
    for index in range(50):
        assert sum(s[index] == "accepted" for s in statuses) == 1


@pytest.mark.django_db
def test_partial_failure_keeps_valid_events_and_names_the_field(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    good = call_event()
    events = [
        good,
        call_event(input_tokens="many"),
        call_event(colour="blue"),
        {"type": "call", "id": "not-a-uuid", "body": {"start_time": "2026-01-01T00:00:00Z"}},
        {"type": "feedback", "id": str(uuid.uuid4()), "body": {"call_id": good["id"]}},
        {"type": "call", "id": str(uuid.uuid4()), "body": {"start_time": "yesterday"}},
        call_event(status="maybe"),
    ]
    response = post(api_client, ingest_key, {"batch": events})
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[0]["status"] == "accepted"
    assert [r["status"] for r in results[1:]] == ["error"] * 6
    assert "input_tokens" in results[1]["error"]
    assert "colour" in results[2]["error"]
    assert "id" in results[3]["error"]
    assert "score, label or comment" in results[4]["error"]
    assert "start_time" in results[5]["error"]
    assert "status" in results[6]["error"]
    assert Call.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_gzip_body_is_accepted(api_client: APIClient, ingest_key: str, project: Project) -> None:
    payload = gzip.compress(json.dumps({"batch": [call_event()]}).encode())
    response = post(api_client, ingest_key, payload, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 207
    assert Call.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_invalid_json_is_400(api_client: APIClient, ingest_key: str) -> None:
    response = post(api_client, ingest_key, b'{"batch": [')
    assert response.status_code == 400
    assert "invalid JSON" in response.json()["error"]
    assert post(api_client, ingest_key, {"events": []}).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer dl_abc_def", "Basic abc"])
def test_missing_or_wrong_key_is_401(api_client: APIClient, header: str | None) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = api_client.generic(
        "POST", URL, b'{"batch": []}', content_type="application/json", **extra
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_revoked_key_is_401(api_client: APIClient, ingest_key: str, project: Project) -> None:
    api_key_revoke(api_key=project.api_keys.get())
    assert post(api_client, ingest_key, {"batch": [call_event()]}).status_code == 401


@pytest.mark.django_db
def test_read_key_cannot_ingest(api_client: APIClient, read_key: str) -> None:
    assert post(api_client, read_key, {"batch": [call_event()]}).status_code == 403


@pytest.mark.django_db
@override_settings(INGEST_MAX_BODY_BYTES=2000)
def test_body_over_limit_is_413_also_when_compressed(
    api_client: APIClient, ingest_key: str
) -> None:
    big = {"batch": [call_event(prompt="x" * 5000)]}
    assert post(api_client, ingest_key, big).status_code == 413
    bomb = gzip.compress(b'{"batch": [' + b" " * 1_500_000 + b"]}")
    assert len(bomb) < 2000
    response = post(api_client, ingest_key, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "decompresses" in response.json()["error"]


@pytest.mark.django_db
@override_settings(INGEST_MAX_BATCH_EVENTS=5)
def test_too_many_events_is_400(api_client: APIClient, ingest_key: str) -> None:
    response = post(api_client, ingest_key, {"batch": [call_event() for _ in range(6)]})
    assert response.status_code == 400
    assert "batch" in response.json()["error"]


@pytest.mark.django_db
@override_settings(INGEST_MAX_TEXT_CHARS=100)
def test_long_text_is_truncated_and_flagged(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    event = call_event(prompt="p" * 500, response="short\x00nul")
    assert post(api_client, ingest_key, {"batch": [event]}).json()["accepted"] == 1
    call = Call.objects.get(project=project)
    assert len(call.prompt) == 100
    assert call.truncated == ["prompt"]
    assert "\x00" not in call.response


@pytest.mark.django_db
@override_settings(INGEST_RATE_LIMIT_EVENTS_PER_S=1.0, INGEST_RATE_LIMIT_BURST=10)
def test_rate_limit_answers_429_with_retry_after(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    assert (
        post(api_client, ingest_key, {"batch": [call_event() for _ in range(10)]}).status_code
        == 207
    )
    limited = post(api_client, ingest_key, {"batch": [call_event() for _ in range(5)]})
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert Call.objects.filter(project=project).count() == 10


@pytest.mark.django_db
def test_feedback_before_its_call_is_kept_and_linked(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    call_id = str(uuid.uuid4())
    fb = {"type": "feedback", "id": str(uuid.uuid4()), "body": {"call_id": call_id, "label": "bad"}}
    assert post(api_client, ingest_key, {"batch": [fb]}).json()["accepted"] == 1
    assert post(api_client, ingest_key, {"batch": [call_event(call_id)]}).json()["accepted"] == 1
    read = api_key = None
    from apps.accounts.services import api_key_create

    api_key = api_key_create(project=project, scopes=["read"]).raw
    read = api_client.get(f"/api/v1/calls/{call_id}", HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert read.status_code == 200
    assert [f["label"] for f in read.json()["feedback"]] == ["bad"]
