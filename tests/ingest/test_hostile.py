"""Hostile input on the native ingest path (issue 13): each bad event costs only itself, nothing
stored can break a later read, and the follow-up never dies on one row."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Project
from apps.ingest.sanitize import MAX_JSON_DEPTH
from apps.ingest.services import START_TIME_KEY, calls_follow_up
from apps.traces.models import Call, Feedback
from tests.ingest.test_ingest_api import call_event, post

SHORT_FIELDS = (
    "model",
    "user_id",
    "session_id",
    "trace_id",
    "name",
    "provider",
    "release",
    "environment",
    "error_type",
)


def _deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def _results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 207, response.content[:500]
    return response.json()["results"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start_time", "9999-12-31T23:59:59-05:00"),
        ("start_time", "0001-01-01T00:00:00+05:00"),
        ("start_time", "1999-12-31T23:59:59Z"),
        ("end_time", "9999-12-31T23:59:59-05:00"),
    ],
)
def test_a_timestamp_outside_the_window_is_refused_per_event(
    api_client: APIClient, ingest_key: str, project: Project, field: str, value: str
) -> None:
    good, bad = call_event(), call_event(**{field: value})
    results = _results(post(api_client, ingest_key, {"batch": [good, bad, call_event()]}))
    assert [r["status"] for r in results] == ["accepted", "error", "accepted"]
    assert results[1]["error"].startswith(f"body.{field}:")
    assert "2000-01-01" in results[1]["error"]
    assert Call.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_a_start_time_a_day_ahead_is_refused_and_an_hour_ahead_kept(
    api_client: APIClient, ingest_key: str
) -> None:
    now = datetime.now(UTC)
    events = [
        call_event(start_time=(now + timedelta(hours=1)).isoformat()),
        call_event(start_time=(now + timedelta(days=2)).isoformat()),
    ]
    results = _results(post(api_client, ingest_key, {"batch": events}))
    assert [r["status"] for r in results] == ["accepted", "error"]


@pytest.mark.django_db
def test_nul_is_stripped_from_every_text_field_and_json_key(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    body = {name: f"a\x00b-{name}" for name in SHORT_FIELDS}
    body["trace_id"] = "t\x00race"
    event = call_event(
        **body,
        prompt="p\x00",
        response="r\x00",
        error="e\x00",
        tags=["t\x00ag"],
        metadata={"k\x00ey": "v\x00al", "nested": [{"\x00": "\x00"}]},
        messages=[{"role": "user", "content": "hi\x00"}],
    )
    feedback = {
        "type": "feedback",
        "id": str(uuid.uuid4()),
        "body": {"call_id": event["id"], "label": "l\x00", "user_id": "u\x00", "score": 1},
    }
    results = _results(post(api_client, ingest_key, {"batch": [event, feedback, call_event()]}))
    assert [r["status"] for r in results] == ["accepted"] * 3
    call = Call.objects.get(project=project, id=event["id"])
    assert call.model == "ab-model"
    assert call.end_user_id == "ab-user_id"
    assert call.trace_id == "trace"
    assert (call.prompt, call.response, call.error) == ("p", "r", "e")
    assert call.tags == ["tag"]
    assert call.metadata == {"key": "val", "nested": [{"": ""}]}
    assert call.messages == [{"role": "user", "content": "hi"}]
    stored = Feedback.objects.get(project=project)
    assert (stored.label, stored.user_id) == ("l", "u")


@pytest.mark.django_db
def test_a_lone_surrogate_escape_costs_nothing(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    bad = call_event(prompt="x\ud800y", metadata={"k\udfff": "\ud83d"}, model="m\udc00")
    pair = call_event(prompt="smile \U0001f600")
    # Python's json writes lone surrogates as \ud800 escapes (ensure_ascii), the pair as a pair.
    raw = json.dumps({"batch": [call_event(), bad, pair]}).encode()
    assert b"\\ud800" in raw
    results = _results(post(api_client, ingest_key, raw))
    assert [r["status"] for r in results] == ["accepted"] * 3
    call = Call.objects.get(project=project, id=bad["id"])
    assert call.prompt == "x\ufffdy"
    assert call.model == "m\ufffd"
    assert call.metadata == {"k\ufffd": "\ufffd"}
    assert Call.objects.get(project=project, id=pair["id"]).prompt == "smile \U0001f600"


@pytest.mark.django_db
def test_an_escaped_backslash_before_u_is_not_taken_for_a_surrogate(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    literal = call_event(prompt="path C:\\ud800\\file")  # a backslash, then text "ud800"
    raw = json.dumps({"batch": [literal, call_event(prompt="\ud800")]}).encode()
    assert [r["status"] for r in _results(post(api_client, ingest_key, raw))] == ["accepted"] * 2
    assert Call.objects.get(project=project, id=literal["id"]).prompt == "path C:\\ud800\\file"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cost_usd", "1e999"),
        ("latency_ms", "1e308"),
        ("ttft_ms", "-1"),
        ("input_tokens", "3000000000"),
        ("cost_usd", "NaN"),
        ("latency_ms", "Infinity"),
    ],
)
def test_numbers_must_be_finite_and_in_range(
    api_client: APIClient, ingest_key: str, project: Project, field: str, value: str
) -> None:
    good, bad = call_event(), call_event()
    bad["body"].pop(field, None)  # spliced in below, as raw text
    text = json.dumps({"batch": [good, bad, call_event()]})
    marker = f'"id": "{bad["id"]}", "body": {{'
    assert marker in text
    raw = text.replace(marker, f'{marker}"{field}": {value}, ').encode()
    results = _results(post(api_client, ingest_key, raw))
    assert [r["status"] for r in results] == ["accepted", "error", "accepted"]
    assert results[1]["id"] == bad["id"]
    assert field in results[1]["error"]
    assert Call.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_feedback_score_must_be_finite(api_client: APIClient, ingest_key: str) -> None:
    call = call_event()
    fb = {"type": "feedback", "id": str(uuid.uuid4()), "body": {"call_id": call["id"], "score": 1}}
    raw = json.dumps({"batch": [call, fb]}).replace('"score": 1', '"score": 1e999').encode()
    results = _results(post(api_client, ingest_key, raw))
    assert [r["status"] for r in results] == ["accepted", "error"]
    assert "score" in results[1]["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["metadata", "messages"])
@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 200, 5_000, 100_000])
def test_deep_nesting_is_refused_per_event(
    api_client: APIClient, ingest_key: str, project: Project, field: str, levels: int
) -> None:
    deep = _deep(levels) if field == "metadata" else [_deep(levels - 1)]
    bad = call_event(**{field: {}})
    bad["body"][field] = None
    text = json.dumps({"batch": [call_event(), bad, call_event()]})
    # json.dumps itself recurses; splice the deep value in as text.
    deep_text = (
        '{"a": ' * levels + "1" + "}" * levels
        if field == "metadata"
        else "[" + '{"a": ' * (levels - 1) + "1" + "}" * (levels - 1) + "]"
    )
    del deep
    raw = text.replace(f'"{field}": null', f'"{field}": {deep_text}').encode()
    results = _results(post(api_client, ingest_key, raw))
    assert [r["status"] for r in results] == ["accepted", "error", "accepted"]
    assert results[1]["id"] == bad["id"]
    assert "nested" in results[1]["error"]
    if levels < 300:
        assert results[1]["error"].startswith(f"body.{field}:")
    assert Call.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_nesting_up_to_the_limit_is_kept(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    event = call_event(metadata=_deep(MAX_JSON_DEPTH - 1))
    assert _results(post(api_client, ingest_key, {"batch": [event]}))[0]["status"] == "accepted"
    assert Call.objects.get(project=project, id=event["id"]).metadata == _deep(MAX_JSON_DEPTH - 1)


@pytest.mark.django_db
@override_settings(INGEST_MAX_JSON_BYTES=1000)
@pytest.mark.parametrize("field", ["metadata", "messages", "tags"])
def test_json_fields_are_size_capped_per_event(
    api_client: APIClient, ingest_key: str, field: str
) -> None:
    big: Any = {
        "metadata": {"blob": "x" * 2000},
        "messages": [{"role": "user", "content": "x" * 2000}],
        "tags": ["x" * 100] * 20,
    }[field]
    results = _results(
        post(api_client, ingest_key, {"batch": [call_event(**{field: big}), call_event()]})
    )
    assert [r["status"] for r in results] == ["error", "accepted"]
    assert results[0]["error"].startswith(f"body.{field}:")
    assert "limit of 1000" in results[0]["error"]


@pytest.mark.django_db
def test_an_event_that_is_not_json_costs_only_itself(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    good = call_event()
    text = json.dumps({"batch": [good, call_event(), call_event()]})
    # The middle event's body holds a bare word: not JSON.
    second = text.index('{"type"', text.index('{"type"') + 1)
    raw = (text[:second] + '{"type": "call", "id": "x", "body": bogus},' + text[second:]).encode()
    results = _results(post(api_client, ingest_key, raw))
    assert [r["status"] for r in results] == ["accepted", "error", "accepted", "accepted"]
    assert "invalid JSON" in results[1]["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"batch": 3}', b'{"batch": [', b"[]", b'{"other": []}', b'{"batch": [}'],
)
def test_a_body_that_is_not_a_batch_is_a_400(
    api_client: APIClient, ingest_key: str, raw: bytes
) -> None:
    response = post(api_client, ingest_key, raw)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.django_db
def test_start_time_is_optional_and_recorded_as_received(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    received = call_event()
    del received["body"]["start_time"]
    end = datetime.now(UTC) - timedelta(minutes=5)
    ended = call_event(end_time=end.isoformat(), latency_ms=1500.0)
    del ended["body"]["start_time"]
    before = timezone.now()
    results = _results(post(api_client, ingest_key, {"batch": [received, ended]}))
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    first = Call.objects.get(project=project, id=received["id"])
    assert before <= first.start_time <= timezone.now()
    assert first.metadata[START_TIME_KEY] == "received"
    second = Call.objects.get(project=project, id=ended["id"])
    assert second.start_time == end - timedelta(milliseconds=1500)
    assert second.metadata[START_TIME_KEY] == "end_time"
    assert second.latency_ms == 1500.0


# --- Defence in depth: every case above stored, then every read of the project -------------


def _every_case() -> bytes:
    events = [
        call_event(start_time="9999-12-31T23:59:59-05:00"),
        call_event(start_time="0001-01-01T00:00:00+05:00"),
        call_event(**dict.fromkeys(SHORT_FIELDS, "nul\x00")),
        call_event(prompt="\ud800", metadata={"\udfff": ["\ud800"]}),
        call_event(metadata={"k\x00": "\x00"}, tags=["\x00"]),
        call_event(status="error", error="boom\x00", error_type="E\x00"),
        call_event(prompt="play some jazz"),
    ]
    no_start = call_event()
    del no_start["body"]["start_time"]
    events.append(no_start)
    text = json.dumps({"batch": events})
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    text = text.replace('"body": {', f'"body": {{"metadata": {deep}, ', 1)
    return (
        text[:-2] + ', {"type": "call", "id": "' + str(uuid.uuid4()) + '", "body": '
        '{"start_time": "2026-01-01T00:00:00Z", "cost_usd": 1e999}}]}'
    ).encode()


@pytest.mark.django_db
def test_after_every_hostile_case_every_read_of_the_project_answers(
    api_client: APIClient,
    ingest_key: str,
    read_key: str,
    project: Project,
    alice: Any,
) -> None:
    response = post(api_client, ingest_key, _every_case())
    results = _results(response)
    assert sum(r["status"] == "accepted" for r in results) == 6
    ids = [str(i) for i in Call.objects.filter(project=project).values_list("id", flat=True)]
    assert calls_follow_up(project_id=project.pk, call_ids=ids) == len(ids)

    auth = {"HTTP_AUTHORIZATION": f"Bearer {read_key}"}
    listing = api_client.get("/api/v1/calls?limit=2", **auth)
    assert listing.status_code == 200
    cursor = listing.json()["next_cursor"]
    seen = len(listing.json()["results"])
    while cursor:
        page = api_client.get(f"/api/v1/calls?limit=2&cursor={cursor}", **auth)
        assert page.status_code == 200
        seen += len(page.json()["results"])
        cursor = page.json()["next_cursor"]
    assert seen == len(ids)
    for call_id in ids:
        assert api_client.get(f"/api/v1/calls/{call_id}", **auth).status_code == 200

    ui = Client()
    ui.force_login(alice)
    pages = ["/", "/calls/", "/review/", "/drift/", "/alerts/", "/settings/"]
    pages += [f"/calls/{call_id}/" for call_id in ids]
    pages += ["/calls/?search=%00", "/calls/?q=%00", "/?range=30d"]
    for url in pages:
        assert ui.get(url).status_code == 200, url


def _insert_poison(project: Project) -> uuid.UUID:
    """A row no longer accepted at the edge but stored by an earlier version: year 10000."""
    poison = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO traces_call (project_id, id, trace_id, session_id, end_user_id, name, "
            "kind, provider, model, prompt, response, status, error, error_type, release, "
            "environment, tags, metadata, truncated, start_time, received_at, embed_status, "
            "flagged, pii, signals, cost_source) VALUES (%s, %s, '', '', '', '', 'llm', '', "
            "'gpt-4o-mini', 'p', 'r', 'ok', '', '', '', '', '{}', '{}', '{}', "
            "'9999-12-31T23:59:59-05:00', now(), 0, false, '{}', '{}', '')",
            [project.pk, poison],
        )
    return poison


@pytest.mark.django_db
def test_the_follow_up_skips_a_poison_row_and_processes_the_rest(
    api_client: APIClient, ingest_key: str, project: Project
) -> None:
    good = [call_event() for _ in range(3)]
    _results(post(api_client, ingest_key, {"batch": good}))
    poison = _insert_poison(project)
    ids = [e["id"] for e in good] + [str(poison)]
    assert calls_follow_up(project_id=project.pk, call_ids=ids) == 3
    for event in good:
        assert Call.objects.get(project=project, id=event["id"]).processed_at is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT processed_at IS NOT NULL, signals->>'follow_up_error' FROM traces_call "
            "WHERE project_id = %s AND id = %s",
            [project.pk, poison],
        )
        processed, reason = cursor.fetchone()
    assert processed, "a poison call is marked, so the sweeper stops re-queuing it"
    assert reason.startswith("start_time:")
    assert calls_follow_up(project_id=project.pk, call_ids=ids) == 0


@pytest.mark.django_db
def test_reads_survive_a_poison_row_and_crafted_cursors(
    api_client: APIClient, read_key: str, project: Project, alice: Any
) -> None:
    Call.objects.create(
        project=project, id=uuid.uuid4(), start_time=timezone.now(), prompt="ok", model="m"
    )
    _insert_poison(project)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {read_key}"}
    assert api_client.get("/api/v1/calls", **auth).status_code == 200
    ui = Client()
    ui.force_login(alice)
    for url in ("/", "/calls/", "/review/"):
        assert ui.get(url).status_code == 200, url
    import base64

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    crafted = [
        "!!!",
        b64(b"[" * 100_000 + b"]" * 100_000),
        b64(b'["9999-12-31T23:59:59-05:00", "' + str(uuid.uuid4()).encode() + b'"]'),
        b64(b'["0001-01-01T00:00:00+05:00", "' + str(uuid.uuid4()).encode() + b'"]'),
        b64(b"[1, 2]"),
        b64(b'{"a": 1}'),
        b64(b'["2026-01-01T00:00:00", "x"]'),
        b64(b"\xff\xfe"),
    ]
    for cursor in crafted:
        response = api_client.get("/api/v1/calls", {"cursor": cursor}, **auth)
        assert response.status_code == 400, (cursor[:40], response.content[:200])
        assert response.json()["field"] == "cursor"
    for start in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        response = api_client.get("/api/v1/calls", {"start": start}, **auth)
        assert response.status_code == 400, response.content[:200]


# --- OTLP spans go through the same validation ----------------------------------------------


@pytest.mark.django_db
def test_otlp_inf_cost_nul_and_far_timestamps_cost_only_their_span(
    api_client: APIClient, ingest_key: str, read_key: str, project: Project
) -> None:
    from tests.ingest.test_otlp import OPENLLMETRY_NEW, ROOT, make_request, make_span
    from tests.ingest.test_otlp import post as otlp_post

    spans = [
        make_span({**OPENLLMETRY_NEW, "gen_ai.usage.cost": float("inf")}, span_id=b"\x01" * 8),
        make_span({**OPENLLMETRY_NEW, "user.id": "u\x00ser"}, name="n\x00ul", span_id=b"\x02" * 8),
        make_span(OPENLLMETRY_NEW, span_id=b"\x03" * 8, start=2**64 - 1, end=2**64 - 1),
        make_span({}, name="root", span_id=ROOT, parent=b""),
    ]
    response = otlp_post(api_client, make_request(*spans).SerializeToString(), key=ingest_key)
    assert response.status_code == 200, response.content[:300]
    names = sorted(Call.objects.filter(project=project).values_list("name", flat=True))
    assert names == ["nul", "root"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {read_key}"}
    assert api_client.get("/api/v1/calls", **auth).status_code == 200
