"""OTLP/HTTP trace ingest, end to end: spans/s through gunicorn, protobuf + gzip.

    python -m bench.otlp [--spans 20000] [--batch 100] [--clients 4] [--workers 2]

Each export is an ``ExportTraceServiceRequest`` of ``--batch`` spans as OpenLLMetry writes them
(a chat span with GenAI attributes, messages and usage; every fourth span an HTTP span of the same
trace), serialised to protobuf and gzip-compressed once before timing, posted to ``/v1/traces``
by ``--clients`` threads with keep-alive connections. Timed: decode, mapping, key auth, the native
bulk insert, the pending-log probe and the follow-up enqueue (the follow-up itself runs in the
worker, not here). REFERENCE.md compares the figure with Phoenix's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from typing import Any

from bench.common import RESULTS, gunicorn, percentile, post_concurrently, print_table, setup_django

PROMPTS = [
    "How do I reset my password?",
    "What's the weather like in Paris tomorrow?",
    "Summarise this support ticket: the customer cannot log in after the update.",
    "Book a table for four at an Italian place near me tonight.",
]


def make_export(first: int, size: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    def kv(key: str, value: Any) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=str(value)))

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [kv("service.name", "bench-bot"), kv("service.version", "1.0.0")]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "opentelemetry.instrumentation.openai.v1"
    now = time.time_ns()
    for i in range(first, first + size):
        trace_id = os.urandom(16)
        start = now - (i % 3600) * 1_000_000_000
        if i % 4 == 3:
            attrs = [kv("http.request.method", "POST"), kv("url.path", "/chat")]
            name = "POST /chat"
        else:
            prompt = PROMPTS[i % len(PROMPTS)] + f" (#{i})"
            attrs = [
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.provider.name", "openai"),
                kv("gen_ai.request.model", "gpt-4o-mini"),
                kv("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
                kv("gen_ai.usage.input_tokens", 120 + i % 50),
                kv("gen_ai.usage.output_tokens", 300 + i % 80),
                kv(
                    "gen_ai.input.messages",
                    json.dumps(
                        [
                            {"role": "system", "parts": [{"type": "text", "content": "Be kind."}]},
                            {"role": "user", "parts": [{"type": "text", "content": prompt}]},
                        ]
                    ),
                ),
                kv(
                    "gen_ai.output.messages",
                    json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [
                                    {"type": "text", "content": "Here is what I found. " * 20}
                                ],
                            }
                        ]
                    ),
                ),
            ]
            name = "chat gpt-4o-mini"
        scope.spans.append(
            Span(
                trace_id=trace_id,
                span_id=os.urandom(8),
                name=name,
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start,
                end_time_unix_nano=start + (400 + i % 900) * 1_000_000,
                attributes=attrs,
            )
        )
    return gzip.compress(request.SerializeToString())


def run(url: str, key: str, bodies: list[bytes], clients: int) -> tuple[float, list[float], int]:
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
    }
    return post_concurrently(
        url,
        "/v1/traces",
        headers,
        bodies,
        clients,
        tally=lambda status, _body: int(status != 200),
        desc="OTLP exports",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    env = setup_django()
    from apps.accounts.models import Organization, Project
    from apps.accounts.services import api_key_create
    from apps.traces.models import Call

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    project, _ = Project.objects.get_or_create(
        slug="bench-otlp", defaults={"organization": org, "name": "Bench OTLP"}
    )
    key = api_key_create(project=project, name="bench-otlp", scopes=["ingest"]).raw
    bodies = [make_export(i, args.batch) for i in range(0, args.spans, args.batch)]
    warm, timed = bodies[:4], bodies[4:]
    before = Call.objects.filter(project=project).count()
    server_env = {
        **env,
        "INGEST_RATE_LIMIT_EVENTS_PER_S": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }
    with gunicorn(workers=args.workers, env=server_env) as url:
        run(url, key, warm, 2)
        seconds, latencies, failures = run(url, key, timed, args.clients)
    stored = Call.objects.filter(project=project).count() - before
    spans = len(timed) * args.batch
    rate = spans / seconds
    print_table(
        f"OTLP /v1/traces: {spans:,} spans, protobuf+gzip, batches of {args.batch}, "
        f"{args.clients} clients, {args.workers} gunicorn workers, {os.cpu_count()} CPUs "
        f"({stored:,} stored incl. warm-up, {failures} failed exports)",
        ["path", "spans/s", "export p50 ms", "export p99 ms"],
        [
            (
                "OTLP traces (gunicorn)",
                f"{rate:,.0f}",
                f"{percentile(latencies, 50):.1f}",
                f"{percentile(latencies, 99):.1f}",
            )
        ],
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "otlp.json").write_text(
        json.dumps(
            {
                "spans_per_s": rate,
                "export_p50_ms": percentile(latencies, 50),
                "export_p99_ms": percentile(latencies, 99),
                "spans": spans,
                "batch": args.batch,
                "clients": args.clients,
                "workers": args.workers,
                "failures": failures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
