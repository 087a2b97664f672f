"""Ingest API throughput through the `make run` server against a raw COPY of the same rows.

    python -m bench.ingest [--events 20000] [--clients 4] [--batch 100] [--workers N]
                           [--also-sync]

All on this machine against the same embedded PostgreSQL, side by side in one run:

- the ingest API through the web server exactly as ``make run`` starts it
  (``devtools.devstack.gunicorn_command``: gthread workers sized to the machine, production
  settings, DEBUG off): key auth, body limits, msgspec validation, the COPY + insert into the
  partitioned ``traces_call`` and the follow-up enqueue;
- ``--also-sync``: the server the earlier closing notes measured (2 sync workers);
- a raw COPY of the same rows into a plain table (``bench_plain_call``: primary key + time
  index, not partitioned, no trigger): the baseline of issue 17, target ratio >= 0.25;
- for reference, a raw COPY into ``traces_call`` itself (the baseline of the earlier notes).

Events/s per core divides by the machine's cores (the server, PostgreSQL and the clients share
them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from bench.common import (
    RESULTS,
    ROOT,
    free_port,
    percentile,
    post_concurrently,
    print_table,
    setup_django,
)

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
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return post_concurrently(
        url,
        "/api/v1/ingest",
        headers,
        bodies,
        clients,
        tally=lambda _status, body: int(json.loads(body).get("accepted", 0)),
        desc="API batches",
    )


PLAIN = "bench_plain_call"


def make_plain_table() -> None:
    """traces_call's columns in a plain table: primary key + time index, not partitioned."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PLAIN}")
        cursor.execute(f"CREATE TABLE {PLAIN} (LIKE traces_call INCLUDING DEFAULTS)")
        cursor.execute(f"ALTER TABLE {PLAIN} ADD PRIMARY KEY (id)")
        cursor.execute(f"CREATE INDEX ON {PLAIN} (project_id, start_time)")


def run_copy(project_id: int, events: list[dict[str, Any]], table: str) -> float:
    """COPY the same rows (fresh ids) into ``table``: the database's own ceiling."""
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
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for event in tqdm(events, desc=f"COPY {table}", unit="row", mininterval=0.5):
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


@contextlib.contextmanager
def serve(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """Run ``command`` (a gunicorn bound to ``port`` in ``env``) until the block ends."""
    port = env["BENCH_PORT"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", int(port))) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def fresh_bodies(events: list[dict[str, Any]], batch: int) -> list[bytes]:
    """The same rows under new ids: a second server run must not see duplicates."""
    renamed = [{**event, "id": str(uuid.uuid4())} for event in events]
    return [
        json.dumps({"batch": renamed[i : i + batch]}).encode()
        for i in range(0, len(renamed), batch)
    ]


def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    key: str,
    events: list[dict[str, Any]],
    batch: int,
    clients: int,
) -> dict[str, Any]:
    bodies = fresh_bodies(events, batch)
    with serve(command, env) as url:
        # Warm every worker's connections and imports before timing.
        run_api(url, key, bodies[:8], clients)
        seconds, latencies, accepted = run_api(url, key, bodies[8:], clients)
    sent = sum(len(json.loads(b)["batch"]) for b in bodies[8:])
    if accepted != sent:
        raise RuntimeError(f"{name}: accepted {accepted} of {sent}")
    return {
        "name": name,
        "events": sent,
        "events_per_s": sent / seconds,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def main() -> None:
    from devtools.devstack import gunicorn_command, web_workers

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0, help="default: as make run sizes it")
    parser.add_argument("--also-sync", action="store_true", help="also 2 sync workers (old)")
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
    workers = args.workers or web_workers()
    # Other processes on the same cores move every figure here: say how busy the machine was.
    load_before = os.getloadavg()[0]
    port = str(free_port())
    # What make run exports (devtools.devstack.production_env), minus the rate limit.
    server_env = {
        **env,
        "BENCH_PORT": port,
        "DRIFTLINE_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DRIFTLINE_SECURE_COOKIES": "0",
        "INGEST_RATE_LIMIT_EVENTS_PER_S": "0",
        "LOG_LEVEL": "WARNING",
        "DRIFTLINE_STATIC_ROOT": str(ROOT / "static"),
    }
    runs = [
        measure(
            f"ingest API, make run server ({workers} gthread workers)",
            gunicorn_command("127.0.0.1", port, workers=workers),
            server_env,
            key,
            events,
            args.batch,
            args.clients,
        )
    ]
    if args.also_sync:
        old = [sys.executable, "-m", "gunicorn", "apps.wsgi", "--bind", f"127.0.0.1:{port}"]
        old += ["--workers", "2", "--log-level", "warning"]
        runs.append(
            measure(
                "ingest API, 2 sync workers (earlier notes)",
                old,
                {**server_env, "DRIFTLINE_ENV": "development", "DEBUG": "0"},
                key,
                events,
                args.batch,
                args.clients,
            )
        )
    make_plain_table()
    plain_rate = len(events) / run_copy(project.pk, events, PLAIN)
    same_rate = len(events) / run_copy(project.pk, events, "traces_call")
    cores = os.cpu_count() or 1
    api_rate = runs[0]["events_per_s"]
    rows: list[tuple[str, ...]] = [
        (
            r["name"],
            f"{r['events_per_s']:,.0f}",
            f"{r['events_per_s'] / cores:,.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
        )
        for r in runs
    ]
    rows += [
        ("raw COPY, plain indexed table", f"{plain_rate:,.0f}", f"{plain_rate / cores:,.0f}"),
        ("raw COPY, traces_call (partitioned)", f"{same_rate:,.0f}", f"{same_rate / cores:,.0f}"),
        ("ratio make run / COPY plain", f"{api_rate / plain_rate:.2f}", "target >= 0.25"),
        ("ratio make run / COPY traces_call", f"{api_rate / same_rate:.2f}", "(earlier notes)"),
    ]
    print_table(
        f"Ingest: {runs[0]['events']:,} events, batches of {args.batch}, {args.clients} clients, "
        f"{cores} cores, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after",
        ["path", "events/s", "per core", "batch p50 ms", "batch p99 ms"],
        [(*row, *[""] * (5 - len(row))) for row in rows],
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(
        json.dumps(
            {
                "api_events_per_s": api_rate,
                "api_events_per_s_per_core": api_rate / cores,
                "copy_plain_rows_per_s": plain_rate,
                "copy_traces_call_rows_per_s": same_rate,
                "ratio": api_rate / plain_rate,
                "ratio_traces_call": api_rate / same_rate,
                "load_average_before": load_before,
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
