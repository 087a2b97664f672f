"""/v1/logs (GenAI events attached to their span's call, whichever arrives first), the Langfuse
path and attributes, tool spans, the cost rule and the LLM-only metrics, on hand-built
payloads."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from apps.ingest import otlp
from tests.ingest.test_otlp import (
    CHILD,
    OPENLLMETRY_NEW,
    ROOT,
    T0,
    TRACE,
    any_value,
    kvs,
    make_request,
    make_span,
    only_call,
)

CHAT_SPAN = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 30,
    "gen_ai.usage.output_tokens": 9,
}
CALL_ID = otlp.span_event_id(TRACE, CHILD)


def record(
    name: str,
    body: Any = None,
    *,
    at: int = T0,
    span_id: bytes = CHILD,
    attributes: dict[str, Any] | None = None,
    as_attribute: bool = False,
) -> LogRecord:
    log = LogRecord(
        time_unix_nano=at,
        trace_id=TRACE,
        span_id=span_id,
        attributes=kvs({**(attributes or {}), **({"event.name": name} if as_attribute else {})}),
    )
    if not as_attribute:
        log.event_name = name
    if body is not None:
        log.body.CopyFrom(any_value(body))
    return log


def logs_request(*records: LogRecord) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    scope.scope.name = "opentelemetry.instrumentation.openai"
    scope.log_records.extend(records)
    return request


def conversation(*, span_id: bytes = CHILD, at: int = T0) -> ExportLogsServiceRequest:
    return logs_request(
        record(
            "gen_ai.system.message",
            {"content": "You are a support assistant."},
            at=at + 1,
            span_id=span_id,
        ),
        record(
            "gen_ai.user.message", {"content": "Where is my parcel?"}, at=at + 2, span_id=span_id
        ),
        record(
            "gen_ai.assistant.message",
            {"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "track"}}]},
            at=at + 3,
            span_id=span_id,
        ),
        record(
            "gen_ai.tool.message", {"content": "in transit", "id": "c1"}, at=at + 4, span_id=span_id
        ),
        # The older spelling: the event name as an attribute.
        record(
            "gen_ai.user.message", {"content": "When will it arrive?"}, at=at + 5, span_id=span_id
        ),
        record(
            "gen_ai.choice",
            {"index": 0, "finish_reason": "stop", "message": {"content": "Tomorrow."}},
            at=at + 6,
            span_id=span_id,
            as_attribute=True,
        ),
        # Not GenAI content: accepted and dropped.
        record("app.started", "hello", at=at + 7, span_id=span_id),
        LogRecord(time_unix_nano=at, body=any_value("plain log line without a span")),
    )


EXPECTED_MESSAGES = [
    {"role": "system", "content": "You are a support assistant."},
    {"role": "user", "content": "Where is my parcel?"},
    {"role": "assistant", "content": "", "tool_calls": [{"name": "track", "id": "c1"}]},
    {"role": "tool", "content": "in transit", "tool_call_id": "c1"},
    {"role": "user", "content": "When will it arrive?"},
]


def post(client: Any, path: str, body: bytes, *, key: str, **extra: Any) -> Any:
    extra.setdefault("content_type", "application/x-protobuf")
    return client.generic("POST", path, body, HTTP_AUTHORIZATION=f"Bearer {key}", **extra)


def logs_json(request: ExportLogsServiceRequest) -> bytes:
    data = json.loads(json_format.MessageToJson(request))
    for resource in data["resourceLogs"]:
        for scope in resource["scopeLogs"]:
            for log in scope["logRecords"]:
                for key in ("traceId", "spanId"):
                    if key in log:
                        log[key] = base64.b64decode(log[key]).hex()
    return json.dumps(data).encode()


def the_call(project: Any) -> Any:
    from apps.traces.models import Call

    return Call.objects.get(project=project, id=CALL_ID)


# --- pure ------------------------------------------------------------------------------------


def store_stragglers(project: Any, request: ExportLogsServiceRequest) -> None:
    """Store the request's events as pending ones received five minutes ago: what the sweep
    finds when a span and its events were stored concurrently and neither saw the other."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.ingest.models import OtlpLogEvent
    from apps.ingest.otlp.logs import map_logs_request

    received = timezone.now() - timedelta(minutes=5)
    for e in map_logs_request(request).events:
        OtlpLogEvent.objects.create(
            project=project,
            call_id=e.call_id,
            event_key=e.event_key,
            name=e.name,
            time_unix_nano=e.time_unix_nano,
            seq=e.seq,
            payload=e.payload,
            received_at=received,
        )


def test_log_records_map_to_content_events_and_others_are_dropped() -> None:
    from apps.ingest.otlp.logs import content_from_events, map_logs_request

    mapping = map_logs_request(conversation())
    assert mapping.dropped == 2
    assert {e.call_id for e in mapping.events} == {CALL_ID}
    content = content_from_events([(e.name, e.payload) for e in mapping.events])
    assert content["messages"] == EXPECTED_MESSAGES
    assert content["prompt"] == "When will it arrive?"
    assert content["response"] == "Tomorrow."


def test_operation_details_event_carries_messages_as_attributes() -> None:
    from apps.ingest.otlp.logs import content_from_events, map_logs_request

    details = record(
        "gen_ai.client.inference.operation.details",
        attributes={
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "Hi?"}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "Hello."}]}]
            ),
        },
    )
    mapping = map_logs_request(logs_request(details))
    content = content_from_events([(e.name, e.payload) for e in mapping.events])
    assert (content["prompt"], content["response"]) == ("Hi?", "Hello.")


# --- the endpoint: both orders, both encodings, redelivery -----------------------------------


@pytest.mark.django_db(transaction=True)
def test_logs_before_the_span_are_merged_when_it_lands(
    client: Any, project: Any, other_project: Any, ingest_key: str
) -> None:
    from apps.ingest.models import OtlpLogEvent

    response = post(client, "/v1/logs", conversation().SerializeToString(), key=ingest_key)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success")
    assert OtlpLogEvent.objects.filter(project=project, applied_at__isnull=True).count() == 6

    spans = make_request(make_span(CHAT_SPAN), make_span({}, name="root", span_id=ROOT, parent=b""))
    assert post(client, "/v1/traces", spans.SerializeToString(), key=ingest_key).status_code == 200
    call = the_call(project)
    assert call.messages == EXPECTED_MESSAGES
    assert (call.prompt, call.response) == ("When will it arrive?", "Tomorrow.")
    assert call.processed_at is None  # the follow-up has not run on it yet: it sees the content
    assert not OtlpLogEvent.objects.filter(project=project, applied_at__isnull=True).exists()
    assert not OtlpLogEvent.objects.filter(project=other_project).exists()


@pytest.mark.django_db(transaction=True)
def test_span_before_logs_updates_the_call_and_reruns_its_follow_up(
    client: Any, project: Any, ingest_key: str
) -> None:
    from apps.ingest.services import calls_follow_up

    spans = make_request(make_span(CHAT_SPAN))
    assert post(client, "/v1/traces", spans.SerializeToString(), key=ingest_key).status_code == 200
    calls_follow_up(project_id=project.pk, call_ids=[CALL_ID])
    call = the_call(project)
    assert (call.prompt, call.messages, call.processed_at is not None) == ("", None, True)
    first_processed = call.processed_at

    # OTLP/JSON, gzip; sent twice (an exporter retry): the content is the same.
    body = gzip.compress(logs_json(conversation()))
    for _ in range(2):
        response = post(
            client,
            "/v1/logs",
            body,
            key=ingest_key,
            content_type="application/json",
            HTTP_CONTENT_ENCODING="gzip",
        )
        assert response.status_code == 200, response.content
        assert response.json() == {}
    call = the_call(project)
    assert call.messages == EXPECTED_MESSAGES
    assert call.response == "Tomorrow."
    # The follow-up runs again so that signals and embedding see the content: reset here, or
    # already re-run by a live worker of the suite (a later processed_at).
    assert call.processed_at is None or call.processed_at > first_processed
    calls_follow_up(project_id=project.pk, call_ids=[CALL_ID])
    call = the_call(project)
    assert call.processed_at is not None
    assert call.signals != {}


@pytest.mark.django_db
def test_logs_auth_and_bad_bodies(client: Any, ingest_key: str) -> None:
    body = conversation().SerializeToString()
    assert (
        client.generic("POST", "/v1/logs", body, content_type="application/x-protobuf").status_code
        == 401
    )
    assert post(client, "/v1/logs", b"\xff\xff", key=ingest_key).status_code == 400
    assert (
        post(client, "/v1/logs", body, key=ingest_key, content_type="text/plain").status_code == 415
    )


# --- Langfuse ---------------------------------------------------------------------------------

LANGFUSE_GENERATION = {
    "langfuse.observation.type": "generation",
    "langfuse.observation.model.name": "gpt-4o-mini",
    "langfuse.observation.input": json.dumps(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of Italy?"},
        ]
    ),
    "langfuse.observation.output": json.dumps({"role": "assistant", "content": "Rome."}),
    "langfuse.observation.usage_details": json.dumps({"input": 11, "output": 2, "total": 13}),
    "langfuse.observation.cost_details": json.dumps({"input": 0, "output": 0, "total": 0}),
    "langfuse.observation.prompt.name": "capitals",
    "langfuse.observation.prompt.version": 3,
    "langfuse.observation.metadata.team": json.dumps("geo"),
    "langfuse.trace.metadata.tenant": json.dumps("acme"),
    "langfuse.trace.tags": ["beta", "eu"],
    "langfuse.release": json.dumps("v7"),
    "langfuse.environment": "staging",
    "langfuse.observation.completion_start_time": json.dumps("2025-11-22T08:26:40.250000Z"),
    "user.id": "u-1",
    "session.id": "s-1",
}


def test_langfuse_generation_maps_like_genai() -> None:
    body = only_call(make_request(make_span(LANGFUSE_GENERATION)))["body"]
    assert (body["kind"], body["model"]) == ("llm", "gpt-4o-mini")
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of Italy?"},
    ]
    assert (body["prompt"], body["response"]) == ("Capital of Italy?", "Rome.")
    assert (body["input_tokens"], body["output_tokens"], body["total_tokens"]) == (11, 2, 13)
    assert body["cost_usd"] == 0.0  # kept as sent; the follow-up prices it (cost rule)
    assert (body["user_id"], body["session_id"]) == ("u-1", "s-1")
    assert (body["release"], body["environment"]) == ("v7", "staging")
    assert {"beta", "eu", "service:support-bot"} <= set(body["tags"])
    assert body["ttft_ms"] == pytest.approx(250.0)
    assert (body["prompt_name"], body["prompt_version"]) == ("capitals", "3")
    metadata = body["metadata"]
    assert (metadata["team"], metadata["tenant"]) == ("geo", "acme")
    assert not any(k.startswith("langfuse.observation.input") for k in metadata)


def test_genai_prompt_name_and_version_are_the_calls_prompt_version() -> None:
    attrs = {**OPENLLMETRY_NEW, "gen_ai.prompt.name": "support", "gen_ai.prompt.version": "v2"}
    body = only_call(make_request(make_span(attrs)))["body"]
    assert (body["prompt_name"], body["prompt_version"]) == ("support", "v2")


def test_langfuse_error_level_and_span_types() -> None:
    attrs = {
        "langfuse.observation.type": "retriever",
        "langfuse.observation.level": "ERROR",
        "langfuse.observation.status_message": "index offline",
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert (body["kind"], body["status"], body["error"]) == ("retrieval", "error", "index offline")


@pytest.mark.django_db
def test_langfuse_path_takes_basic_auth_with_the_key_as_secret(
    client: Any, project: Any, ingest_key: str
) -> None:
    body = make_request(make_span(LANGFUSE_GENERATION)).SerializeToString()
    path = "/api/public/otel/v1/traces"
    good = base64.b64encode(f"pk-lf-anything:{ingest_key}".encode()).decode()
    response = client.generic(
        "POST",
        path,
        body,
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Basic {good}",
    )
    assert response.status_code == 200
    assert the_call(project).model == "gpt-4o-mini"
    bad = base64.b64encode(b"pk-lf-anything:dl_wrong_key").decode()
    response = client.generic(
        "POST", path, body, content_type="application/x-protobuf", HTTP_AUTHORIZATION=f"Basic {bad}"
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert post(client, path, body, key=ingest_key).status_code == 200  # Bearer works too


# --- tool spans ---------------------------------------------------------------------------------


def test_execute_tool_span_shows_arguments_and_result() -> None:
    attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_42",
        "gen_ai.tool.call.arguments": json.dumps({"city": "Paris"}),
        "gen_ai.tool.call.result": json.dumps({"temp_c": 21}),
    }
    body = only_call(make_request(make_span(attrs, name="execute_tool get_weather")))["body"]
    assert body["kind"] == "tool"
    assert body["prompt"] == '{"city": "Paris"}'
    assert body["response"] == '{"temp_c": 21}'
    assert body["metadata"]["gen_ai.tool.name"] == "get_weather"
    assert body["metadata"]["gen_ai.tool.call.id"] == "call_42"
    assert "gen_ai.tool.call.arguments" not in body["metadata"]


def test_openinference_tool_span_uses_input_and_output_value() -> None:
    attrs = {
        "openinference.span.kind": "TOOL",
        "tool.name": "lookup",
        "input.value": '{"order": 7}',
        "output.value": "shipped",
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert (body["kind"], body["prompt"], body["response"]) == ("tool", '{"order": 7}', "shipped")


def test_tool_messages_keep_their_call_id() -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "tool_call", "id": "c9", "name": "wx", "arguments": {"c": 1}}
                    ],
                },
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": "c9", "response": "sunny"}],
                },
            ]
        ),
    }
    body = only_call(make_request(make_span(attrs)))["body"]
    assert body["messages"][1]["tool_calls"] == [{"name": "wx", "id": "c9", "arguments": '{"c":1}'}]
    assert body["messages"][2] == {"role": "tool", "content": "sunny"}
    assert body["prompt"] == "Weather?"


def test_a_span_with_only_gen_ai_attributes_is_an_llm_call_and_http_is_not() -> None:
    assert only_call(make_request(make_span({"gen_ai.system": "openai"})))["body"]["kind"] == "llm"
    http = {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat"}
    assert only_call(make_request(make_span(http, name="POST")))["body"]["kind"] == "span"


# --- cost rule and LLM-only metrics -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_zero_client_cost_is_priced_and_non_llm_spans_are_not_counted(
    client: Any, project: Any, ingest_key: str
) -> None:
    """OpenLIT's shape: gen_ai.usage.cost = 0 on a priced model, and HTTP client spans."""
    from datetime import UTC, datetime, timedelta

    from apps.ingest.services import calls_follow_up
    from apps.traces.metrics import OverviewFilters, TimeWindow
    from apps.traces.models import Call
    from apps.traces.rollup_selectors import rollup_overview_totals
    from apps.traces.rollups import rollup_flush

    now = int(datetime.now(UTC).timestamp() * 1e9)
    chat = {**CHAT_SPAN, "gen_ai.usage.cost": 0.0, "gen_ai.request.model": "gpt-4o-mini"}
    http = {"http.request.method": "POST", "server.address": "api.openai.com"}
    free = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "my-own-model",
        "gen_ai.usage.cost": 0.0,
        "gen_ai.usage.input_tokens": 5,
    }
    paid = {**CHAT_SPAN, "gen_ai.usage.cost": 0.5}
    spans = make_request(
        make_span(chat, start=now, end=now + 10**9),
        make_span(http, name="POST", span_id=ROOT, parent=b"", start=now, end=now + 10**9),
        make_span(free, span_id=b"\x01" * 8, start=now, end=now + 10**9),
        make_span(paid, span_id=b"\x02" * 8, start=now, end=now + 10**9),
    )
    assert post(client, "/v1/traces", spans.SerializeToString(), key=ingest_key).status_code == 200
    ids = [str(c.id) for c in Call.objects.filter(project=project)]
    calls_follow_up(project_id=project.pk, call_ids=ids)
    by_model = {c.model or c.name: c for c in Call.objects.filter(project=project)}
    chat_call = Call.objects.get(project=project, id=CALL_ID)
    assert chat_call.cost_source == "computed"
    assert chat_call.cost_usd is not None
    assert chat_call.cost_usd > 0
    own = by_model["my-own-model"]
    assert (own.cost_usd, own.cost_source) == (0.0, "client")  # no price: the client's stays
    paid_call = Call.objects.get(project=project, id=otlp.span_event_id(TRACE, b"\x02" * 8))
    assert (paid_call.cost_usd, paid_call.cost_source) == (0.5, "client")
    assert by_model["POST"].kind == "span"

    rollup_flush(project_id=project.pk)
    window = TimeWindow(
        key="1h",
        start=datetime.now(UTC) - timedelta(hours=1),
        end=datetime.now(UTC) + timedelta(minutes=1),
        bucket=timedelta(minutes=5),
    )
    current, _previous = rollup_overview_totals(
        project=project, window=window, filters=OverviewFilters()
    )
    assert current.calls.calls == 3  # the HTTP span is trace context, not an LLM call


@pytest.mark.django_db(transaction=True)
def test_sweep_merges_stragglers_and_drops_expired_events(
    client: Any, project: Any, ingest_key: str
) -> None:
    """A span and its events stored concurrently, neither seeing the other: the sweep merges."""
    from django.utils import timezone

    from apps.ingest.models import OtlpLogEvent
    from apps.ingest.otlp.services import LOG_EVENT_RETENTION, otlp_log_events_sweep

    spans = make_request(make_span(CHAT_SPAN))
    assert post(client, "/v1/traces", spans.SerializeToString(), key=ingest_key).status_code == 200
    store_stragglers(project, conversation())
    assert the_call(project).messages is None
    assert otlp_log_events_sweep() == 1
    assert the_call(project).messages == EXPECTED_MESSAGES
    assert otlp_log_events_sweep() == 0
    OtlpLogEvent.objects.update(received_at=timezone.now() - LOG_EVENT_RETENTION * 2)
    otlp_log_events_sweep()
    assert not OtlpLogEvent.objects.exists()


# --- events on the span around the model call (OpenLLMetry, use_attributes=False) -----------

APP_ID = otlp.span_event_id(TRACE, ROOT)
SECOND = bytes.fromhex("eee19b7ec3c1b175")


def app_span(attrs: dict[str, Any] | None = None) -> Any:
    """The application span around the model call (``POST /ask``): not an LLM call."""
    return make_span(attrs or {}, name="POST /ask", span_id=ROOT, parent=b"", end=T0 + 3 * 10**9)


def calls_by_id(project: Any) -> dict[str, Any]:
    from apps.traces.models import Call

    return {str(c.id): c for c in Call.objects.filter(project=project)}


def event_calls(project: Any) -> dict[str, int]:
    from apps.ingest.models import OtlpLogEvent

    out: dict[str, int] = {}
    for call_id in OtlpLogEvent.objects.filter(project=project).values_list("call_id", flat=True):
        out[str(call_id)] = out.get(str(call_id), 0) + 1
    return out


def assert_content_on_the_child(project: Any) -> None:
    from apps.ingest.models import OtlpLogEvent

    calls = calls_by_id(project)
    child, app = calls[CALL_ID], calls[APP_ID]
    assert child.messages == EXPECTED_MESSAGES
    assert (child.prompt, child.response) == ("When will it arrive?", "Tomorrow.")
    assert (app.messages, app.prompt, app.response) == (None, "", "")
    assert event_calls(project) == {CALL_ID: 6}
    assert not OtlpLogEvent.objects.filter(project=project, applied_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_outer_span_events_after_the_spans_go_to_its_llm_child(
    client: Any, project: Any, ingest_key: str
) -> None:
    spans = make_request(make_span(CHAT_SPAN), app_span())
    assert post(client, "/v1/traces", spans.SerializeToString(), key=ingest_key).status_code == 200
    body = conversation(span_id=ROOT).SerializeToString()
    # Sent twice (an exporter retry): the second delivery is no longer refused by the unique
    # key (the first was moved), and is dropped as the child's duplicate.
    for _ in range(2):
        assert post(client, "/v1/logs", body, key=ingest_key).status_code == 200
        assert_content_on_the_child(project)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("exports", ["together", "child first"])
def test_outer_span_events_before_the_spans_go_to_its_llm_child(
    client: Any, project: Any, ingest_key: str, exports: str
) -> None:
    from apps.ingest.models import OtlpLogEvent

    body = conversation(span_id=ROOT).SerializeToString()
    assert post(client, "/v1/logs", body, key=ingest_key).status_code == 200
    assert event_calls(project) == {APP_ID: 6}
    if exports == "together":
        batches = [make_request(make_span(CHAT_SPAN), app_span())]
    else:  # a span is exported when it ends (SimpleSpanProcessor): the model call first
        batches = [make_request(make_span(CHAT_SPAN)), make_request(app_span())]
    for spans in batches:
        response = post(client, "/v1/traces", spans.SerializeToString(), key=ingest_key)
        assert response.status_code == 200
    assert_content_on_the_child(project)
    if exports == "together":  # folded before it was stored: the follow-up sees the content
        assert calls_by_id(project)[CALL_ID].processed_at is None
    assert OtlpLogEvent.objects.filter(project=project).count() == 6


@pytest.mark.django_db(transaction=True)
def test_sweep_moves_outer_span_stragglers_to_the_llm_child(
    client: Any, project: Any, ingest_key: str
) -> None:
    """Spans and events stored concurrently, neither seeing the other: the sweep moves them."""

    from apps.ingest.otlp.services import otlp_log_events_sweep

    spans = make_request(make_span(CHAT_SPAN), app_span())
    assert post(client, "/v1/traces", spans.SerializeToString(), key=ingest_key).status_code == 200
    store_stragglers(project, conversation(span_id=ROOT))
    assert otlp_log_events_sweep() == 1
    assert_content_on_the_child(project)
    assert otlp_log_events_sweep() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("order", ["spans first", "events first"])
@pytest.mark.parametrize("case", ["two llm children", "outside the window", "llm parent"])
def test_outer_span_events_stay_when_no_one_child_owns_them(
    client: Any, project: Any, ingest_key: str, order: str, case: str
) -> None:
    from apps.ingest.models import OtlpLogEvent

    at, parent = T0, app_span()
    spans = [make_span(CHAT_SPAN)]
    if case == "two llm children":  # overlapping calls: which one is it?
        spans.append(make_span(CHAT_SPAN, span_id=SECOND, start=T0, end=T0 + 2 * 10**9))
    elif case == "outside the window":  # the child ends at T0 + 1.25 s; a second of slack
        at = T0 + 2_500_000_000
    else:  # a model call's own events are never moved, even with a model call under it
        parent = make_span(CHAT_SPAN, name="chat", span_id=ROOT, parent=b"", end=T0 + 3 * 10**9)
    trace = make_request(*spans, parent).SerializeToString()
    logs = conversation(span_id=ROOT, at=at).SerializeToString()
    requests = [("/v1/traces", trace), ("/v1/logs", logs)]
    for path, body in requests if order == "spans first" else reversed(requests):
        assert post(client, path, body, key=ingest_key).status_code == 200
    calls = calls_by_id(project)
    assert calls[APP_ID].messages == EXPECTED_MESSAGES
    assert calls[APP_ID].response == "Tomorrow."
    assert [c.messages for i, c in calls.items() if i != APP_ID] == [None] * len(spans)
    assert event_calls(project) == {APP_ID: 6}
    assert not OtlpLogEvent.objects.filter(project=project, applied_at__isnull=True).exists()
