"""Real client packages, unchanged, against the live server and a fake OpenAI on localhost:
OpenLLMetry emitting GenAI events as OTLP logs, the plain OpenTelemetry SDK with its logs
exporter, the Langfuse SDK (its own OTLP path and Basic auth) and OpenInference.

Each: a real ``openai`` call inside an application span -> one stored LLM call with model,
prompt, response and tokens, its cost priced by our table, and the application span stored for
the trace tree but not counted among the overview's LLM calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from apps.traces.models import Call
from tests.ingest.test_otlp_clients import RESOURCE, FakeOpenAI, ask, fake_openai, otlp_env

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["fake_openai", "otlp_env"]  # fixtures used by name


def logs_exporter(live_server: Any, key: str) -> OTLPLogExporter:
    return OTLPLogExporter(
        endpoint=f"{live_server.url}/v1/logs", headers={"Authorization": f"Bearer {key}"}
    )


def assert_priced_llm_call_and_overview(project: Any, *, prompt: str, response: str) -> Call:
    """The follow-up prices the call; the overview counts it and not the application span."""
    from apps.ingest.services import calls_follow_up
    from apps.traces.metrics import OverviewFilters, TimeWindow
    from apps.traces.rollup_selectors import rollup_overview_totals
    from apps.traces.rollups import rollup_flush

    calls = list(Call.objects.filter(project=project))
    llm = [c for c in calls if c.kind == "llm"]
    assert len(llm) == 1, [(c.name, c.kind) for c in calls]
    assert any(c.kind == "span" for c in calls), [(c.name, c.kind) for c in calls]
    calls_follow_up(project_id=project.pk, call_ids=[str(c.id) for c in calls])
    call = Call.objects.get(project=project, id=llm[0].id)
    assert call.model.startswith("gpt-4o-mini")
    assert call.prompt == prompt
    assert call.response == response
    assert (call.input_tokens, call.output_tokens) == (21, 7)
    assert call.cost_source == "computed"
    assert call.cost_usd is not None
    assert call.cost_usd > 0
    # Same trace as the application span. (Not always its direct child: OpenLLMetry's
    # uninstrument() leaves a wrapper behind in this process that opens a span of its own.)
    assert call.trace_id in {c.trace_id for c in calls if c.kind == "span"}
    assert call.parent_id is not None

    rollup_flush(project_id=project.pk)
    now = datetime.now(UTC)
    window = TimeWindow(
        key="1h",
        start=now - timedelta(hours=1),
        end=now + timedelta(minutes=1),
        bucket=timedelta(minutes=5),
    )
    current, _ = rollup_overview_totals(project=project, window=window, filters=OverviewFilters())
    assert current.calls.calls == 1
    return call


# --- OpenLLMetry with GenAI events on OTLP logs -------------------------------------------------


def test_openllmetry_events_on_logs(
    otlp_env: str,
    fake_openai: str,
    live_server: Any,
    ingest_key: str,
    project: Any,
    monkeypatch: Any,
) -> None:
    """``use_attributes=False``: content leaves as gen_ai.* log events, the span has none."""
    import openai
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    tracer_provider = TracerProvider(resource=RESOURCE)
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(logs_exporter(live_server, ingest_key))
    )
    instrumentor = OpenAIInstrumentor(use_attributes=False)
    instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    try:
        # Logs are exported as they are emitted, the spans only at the end: logs first.
        tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
        client = openai.OpenAI(base_url=fake_openai, api_key="sk-test", max_retries=0)
        with tracer_provider.get_tracer("app").start_as_current_span(
            "POST /ask", kind=SpanKind.SERVER
        ):
            ask(client)
        assert tracer_provider.force_flush(5_000)
        assert logger_provider.force_flush(5_000)
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()
        logger_provider.shutdown()

    call = assert_priced_llm_call_and_overview(
        project, prompt="How do I reset my password?", response="Open Settings, then Security."
    )
    assert call.messages == [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "How do I reset my password?"},
    ]


# --- the plain OpenTelemetry SDK: a span, and GenAI events through its logs exporter -------------


def test_plain_sdk_with_genai_events_as_logs(
    otlp_env: str, fake_openai: str, live_server: Any, ingest_key: str, project: Any
) -> None:
    """An app that instruments itself: the span first, then its events on logs (span before
    logs: the stored call is updated)."""
    import openai

    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(logs_exporter(live_server, ingest_key))
    )
    tracer = tracer_provider.get_tracer("app")
    logger = logger_provider.get_logger("app.genai")
    client = openai.OpenAI(base_url=fake_openai, api_key="sk-test", max_retries=0)
    messages = [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    with (
        tracer.start_as_current_span("POST /ask", kind=SpanKind.SERVER),
        tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span,
    ):
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.response.model", answer.model)
        assert answer.usage is not None
        span.set_attribute("gen_ai.usage.input_tokens", answer.usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", answer.usage.completion_tokens)
        context = set_span_in_context(span)
    # The span is exported (stored) first; its events follow on logs.
    assert Call.objects.filter(project=project, kind="llm").count() == 1
    for message in messages:
        logger.emit(
            event_name=f"gen_ai.{message['role']}.message",
            body={"content": message["content"]},
            context=context,
        )
    logger.emit(
        event_name="gen_ai.choice",
        body={
            "index": 0,
            "finish_reason": "stop",
            "message": {"content": answer.choices[0].message.content},
        },
        context=context,
    )
    logger.emit(body="an ordinary application log line", context=context)  # dropped
    assert logger_provider.force_flush(5_000)
    logger_provider.shutdown()
    tracer_provider.shutdown()

    assert_priced_llm_call_and_overview(
        project, prompt="How do I reset my password?", response="Open Settings, then Security."
    )


# --- the Langfuse SDK, unchanged: host and key changed ------------------------------------------

LANGFUSE_SCRIPT = textwrap.dedent(
    """
    import sys
    from langfuse import get_client, propagate_attributes
    from langfuse.openai import OpenAI

    client = OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
    langfuse = get_client()
    with langfuse.start_as_current_observation(as_type="span", name="handle request"):
        with propagate_attributes(
            user_id="end-user-7", session_id="conv-1", tags=["beta"], metadata={"team": "geo"}
        ):
            answer = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": "You are a support assistant."},
                    {"role": "user", "content": "How do I reset my password?"},
                ],
                name="support-answer",
            )
    assert answer.choices[0].message.content == "Open Settings, then Security."
    langfuse.flush()
    langfuse.shutdown()
    """
)


def test_langfuse_sdk_unchanged(
    fake_openai: str, live_server: Any, ingest_key: str, project: Any
) -> None:
    """Run in its own interpreter: ``langfuse.openai`` patches the openai package for good."""
    env = {
        **os.environ,
        "LANGFUSE_PUBLIC_KEY": "pk-lf-migrated",
        "LANGFUSE_SECRET_KEY": ingest_key,
        "LANGFUSE_BASE_URL": live_server.url,
        "LANGFUSE_HOST": live_server.url,
        "LANGFUSE_RELEASE": "2.4.1",
        "LANGFUSE_TRACING_ENVIRONMENT": "staging",
    }
    for name in list(env):
        if name.startswith("OTEL_"):
            del env[name]
    done = subprocess.run(
        [sys.executable, "-c", LANGFUSE_SCRIPT, fake_openai],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert FakeOpenAI.requests[0]["json"]["model"] == "gpt-4o-mini"

    call = assert_priced_llm_call_and_overview(
        project, prompt="How do I reset my password?", response="Open Settings, then Security."
    )
    assert call.messages == [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    assert (call.end_user_id, call.session_id) == ("end-user-7", "conv-1")
    assert "beta" in call.tags
    assert (call.release, call.environment) == ("2.4.1", "staging")
    assert call.metadata["team"] == "geo"
    assert call.name == "support-answer"


# --- OpenInference -----------------------------------------------------------------------------


def test_openinference_openai(otlp_env: str, fake_openai: str, project: Any) -> None:
    import openai
    from openinference.instrumentation.openai import OpenAIInstrumentor

    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=fake_openai, api_key="sk-test", max_retries=0)
        with provider.get_tracer("app").start_as_current_span("POST /ask", kind=SpanKind.SERVER):
            ask(client)
        assert provider.force_flush(5_000)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()

    call = assert_priced_llm_call_and_overview(
        project, prompt="How do I reset my password?", response="Open Settings, then Security."
    )
    assert call.messages == [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    assert call.cached_tokens == 5
