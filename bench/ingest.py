"""Ingest API throughput against a raw COPY of the same rows into the same table.

    python -m bench.ingest [--events 20000] [--clients 4] [--batch 100] [--workers 2]

Both run on this machine against the same embedded PostgreSQL; the API goes through gunicorn,
key auth, body limits, msgspec validation, the bulk insert and the follow-up enqueue. The ratio
API/COPY is the figure to watch (target >= 0.25).
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from bench.common import RESULTS, gunicorn, percentile, print_table, setup_django

PROMPTS = [
    "How do I reset my password?",
    "What's the weather like in Paris tomorrow?",
    "Summarise this support ticket: the customer cannot log in after the update and is asking "
    "for a refund.",
    "Book a table for four at an Italian place near me tonight.",
]


def make_event(i: int) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(seconds=i % 3600)
    return {
        "type": "call",
        "id": str(uuid.uuid4()),
        "body": {
            "model": "gpt-4o-mini",
            "provider": "openai",
            "prompt": PROMPTS[i % len(PROMPTS)] + f" (#{i})",
            "response": "Here is what I found: " + "lorem ipsum dolor sit amet " * 20,
            "input_tokens": 120 + i % 50,
            "output_tokens": 300 + i % 80,
            "latency_ms": 400.0 + i % 900,
            "release": f"v{i % 3}",
            "environment": "prod",
            "tags": ["bench"],
            "metadata": {"route": "/chat", "i": i},
            "start_time": start.isoformat(),
        },
    }


def run_api(
    url: str, key: str, bodies: list[bytes], clients: int
) -> tuple[float, list[float], int]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    accepted = 0
    lock = threading.Lock()
    index = 0
    progress = tqdm(total=len(bodies), desc="API batches", unit="batch")

    def worker() -> None:
        nonlocal index, accepted
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                if index >= len(bodies):
                    break
                body = bodies[index]
                index += 1
            t0 = time.perf_counter()
            conn.request(
                "POST",
                "/api/v1/ingest",
                body,
                {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            payload = json.loads(response.read())
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed * 1000)
                accepted += payload.get("accepted", 0)
                progress.update(1)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    return time.perf_counter() - t0, latencies, accepted


def run_copy(project_id: int, events: list[dict[str, Any]]) -> float:
    """COPY the same rows (fresh ids) into traces_call: the database's own ceiling."""
    from django.db import connection

    columns = (
        "project_id, id, model, provider, prompt, response, input_tokens, output_tokens, "
        "total_tokens, latency_ms, release, environment, tags, metadata, start_time, received_at, "
        "trace_id, session_id, end_user_id, name, kind, cost_source, status, error, error_type, "
        "truncated, pii, flagged, signals, embed_status"
    )
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor() as cur, cur.copy(f"COPY traces_call ({columns}) FROM STDIN") as copy:
            for event in tqdm(events, desc="COPY rows", unit="row", mininterval=0.5):
                b = event["body"]
                copy.write_row(
                    (
                        project_id,
                        uuid.uuid4(),
                        b["model"],
                        b["provider"],
                        b["prompt"],
                        b["response"],
                        b["input_tokens"],
                        b["output_tokens"],
                        b["input_tokens"] + b["output_tokens"],
                        b["latency_ms"],
                        b["release"],
                        b["environment"],
                        b["tags"],
                        json.dumps(b["metadata"]),
                        b["start_time"],
                        now,
                        "",
                        "",
                        "",
                        "",
                        "llm",
                        "",
                        "ok",
                        "",
                        "",
                        [],
                        [],
                        False,
                        "{}",
                        0,
                    )
                )
        raw.commit()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    env = setup_django()
    from apps.accounts.models import Organization, Project
    from apps.accounts.services import api_key_create

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    project, _ = Project.objects.get_or_create(
        slug="bench", defaults={"organization": org, "name": "Bench"}
    )
    key = api_key_create(project=project, name="bench", scopes=["ingest"]).raw
    events = [make_event(i) for i in range(args.events)]
    bodies = [
        json.dumps({"batch": events[i : i + args.batch]}).encode()
        for i in range(0, len(events), args.batch)
    ]
    server_env = {
        **env,
        "INGEST_RATE_LIMIT_EVENTS_PER_S": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }
    with gunicorn(workers=args.workers, env=server_env) as url:
        # Warm the workers' connections and imports before timing.
        run_api(url, key, bodies[:4], 2)
        api_s, latencies, accepted = run_api(url, key, bodies[4:], args.clients)
    api_events = sum(len(json.loads(b)["batch"]) for b in bodies[4:])
    copy_s = run_copy(project.pk, events)
    api_rate, copy_rate = api_events / api_s, len(events) / copy_s
    rows = [
        (
            "ingest API (gunicorn)",
            f"{api_rate:,.0f}",
            f"{percentile(latencies, 50):.1f}",
            f"{percentile(latencies, 99):.1f}",
        ),
        ("raw COPY, same rows", f"{copy_rate:,.0f}", "-", "-"),
        ("ratio API / COPY", f"{api_rate / copy_rate:.2f}", "target >= 0.25", ""),
    ]
    print_table(
        f"Ingest: {api_events:,} events, batches of {args.batch}, {args.clients} clients, "
        f"{args.workers} gunicorn workers (accepted {accepted:,})",
        ["path", "events/s", "batch p50 ms", "batch p99 ms"],
        rows,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(
        json.dumps(
            {
                "api_events_per_s": api_rate,
                "copy_rows_per_s": copy_rate,
                "ratio": api_rate / copy_rate,
                "batch_p50_ms": percentile(latencies, 50),
                "batch_p99_ms": percentile(latencies, 99),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
