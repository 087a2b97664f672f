"""Health reports database, broker and worker liveness."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import WorkerHeartbeat
from apps.core.tasks import heartbeat


@pytest.mark.django_db
def test_health_is_503_without_a_worker_then_200(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["database"]["pgvector"]
    assert body["broker"]["ok"] is True
    assert body["worker"]["ok"] is False
    heartbeat()
    assert api_client.get("/api/v1/health").status_code == 200


@pytest.mark.django_db
def test_stale_heartbeat_is_a_dead_worker(api_client: APIClient) -> None:
    WorkerHeartbeat.objects.create(hostname="old", beat_at=timezone.now() - timedelta(minutes=5))
    assert api_client.get("/api/v1/health").json()["worker"]["ok"] is False


@pytest.mark.django_db
def test_broker_down_is_reported(api_client: APIClient) -> None:
    heartbeat()
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):  # nothing listens on 1
        response = api_client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False


@pytest.mark.django_db
def test_schema_and_docs_are_served_without_a_cdn(api_client: APIClient) -> None:
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/ingest" in schema.content
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()
    assert "script-src 'self'" in docs["Content-Security-Policy"]
