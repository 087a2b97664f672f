"""A database that is down answers 503 with Retry-After (which the SDK honours), never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from apps.core.exceptions import DATABASE_RETRY_AFTER_S
from apps.traces.models import Call
from tests.ingest.test_ingest_api import call_event, post


@pytest.mark.django_db
def test_ingest_answers_503_with_retry_after_while_the_database_is_down(
    project: Any, ingest_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_down(**_: Any) -> Any:
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr("apps.ingest.apis.ingest_events", database_down)
    response = post(APIClient(), ingest_key, {"batch": [call_event()]})
    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_RETRY_AFTER_S)
    assert response.json() == {"error": "the database is unavailable; retry later"}
    assert "Connection refused" not in response.content.decode()  # no internals leak
    assert Call.objects.count() == 0

    monkeypatch.undo()
    assert post(APIClient(), ingest_key, {"batch": [call_event()]}).status_code in (200, 207)
    assert Call.objects.filter(project=project).count() == 1
