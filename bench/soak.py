"""Soak: events through the SDK, the ingest API and the workers on this machine; nothing lost,
lag bounded.

    python -m bench.soak [--events 100000] [--rate 3000] [--embed-budget 5000]

Starts gunicorn (2 workers) and three Celery workers on the bench stack (``ingest`` x2,
``embed`` x1, ``default,drift,alerts`` x1), records ``--events`` LLM calls with
``@driftline.observe`` at ``--rate`` calls/s (the SDK sends in the background), then waits until
every call is stored and followed up. Every second it samples: calls stored, calls not yet
followed up (the lag, as a count and as the age of the oldest), the ``ingest``/``embed`` queue
lengths, and the RSS of web and worker processes. Prints events/s, lag and memory; fails if a
single event is missing (stored != sent by the SDK) or the SDK counted a drop.

The embedding budget is lowered (``--embed-budget`` per project-hour) because on 2 shared cores
the model is the ceiling (~300 texts/s): the embed backlog is reported but not waited for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs installed; used for RSS only
from tqdm import tqdm

from bench.common import RESULTS, ROOT, gunicorn, print_table, setup_django


@dataclass
class Samples:
    stored: list[int] = field(default_factory=list)
    lag_calls: list[int] = field(default_factory=list)
    lag_age_s: list[float] = field(default_factory=list)
    ingest_queue: list[int] = field(default_factory=list)
    embed_queue: list[int] = field(default_factory=list)
    web_mb: float = 0.0
    worker_mb: float = 0.0


def rss_by_role(roots: list[int]) -> tuple[float, float]:
    """Largest single web (gunicorn) and worker (celery) process RSS, MB."""
    web = worker = 0.0
    for pid in roots:
        try:
            parent = psutil.Process(pid)
            procs = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            try:
                cmd = " ".join(proc.cmdline())
                rss = proc.memory_info().rss / 2**20
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if "gunicorn" in cmd:
                web = max(web, rss)
            elif "celery" in cmd:
                worker = max(worker, rss)
    return web, worker


def start_worker(queues: str, concurrency: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "apps",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            str(concurrency),
            "-n",
            f"soak-{queues.split(',')[0]}@%h",
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=3000.0, help="calls/s recorded")
    parser.add_argument("--embed-budget", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500, help="calls before measuring")
    parser.add_argument("--timeout", type=float, default=900.0, help="max wait for the tail")
    args = parser.parse_args()
    env = setup_django()

    import redis
    from django.db import connection

    from apps.accounts.models import Organization, Project
    from apps.accounts.services import api_key_create

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    project = Project.objects.create(organization=org, name="Soak", slug=f"soak-{int(time.time())}")
    key = api_key_create(project=project, name="soak", scopes=["ingest"]).raw
    child_env = {
        **os.environ,
        **env,
        "DEBUG": "0",
        "DRIFTLINE_EMBEDDING_BUDGET_PER_HOUR": str(args.embed_budget),
    }
    broker = redis.Redis.from_url(child_env["CELERY_BROKER_URL"])
    workers = [
        start_worker("ingest", 2, child_env),
        start_worker("embed", 1, child_env),
        start_worker("default,drift,alerts", 1, child_env),
    ]
    samples = Samples()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL), "
                    "coalesce(extract(epoch FROM now() - min(received_at) FILTER "
                    "(WHERE processed_at IS NULL)), 0) FROM traces_call WHERE project_id = %s",
                    [project.pk],
                )
                stored, lag, age = cursor.fetchone() or (0, 0, 0)
            samples.stored.append(int(stored))
            samples.lag_calls.append(int(lag))
            samples.lag_age_s.append(float(age))
            samples.ingest_queue.append(int(broker.llen("ingest")))
            samples.embed_queue.append(int(broker.llen("embed")))
            web, worker = rss_by_role([os.getpid(), *(w.pid for w in workers)])
            samples.web_mb, samples.worker_mb = (
                max(samples.web_mb, web),
                max(samples.worker_mb, worker),
            )
            stop.wait(1.0)

    sys.path.insert(0, str(ROOT / "sdk"))
    import driftline

    result: dict[str, Any] = {}
    try:
        with gunicorn(workers=2, env=child_env) as url:
            driftline.init(
                api_key=key,
                host=url,
                release="soak",
                environment="bench",
                max_queue_size=50_000,
                batch_size=500,
                flush_interval=0.5,
                spool_dir=False,
            )

            @driftline.observe(kind="llm")
            def answer(i: int) -> str:
                driftline.update_current_call(
                    model=("gpt-4o-mini", "claude-haiku")[i % 2],
                    input_tokens=50 + i % 100,
                    output_tokens=100 + i % 200,
                )
                return f"answer {i}"

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()

            def wait_settled(expected: int, desc: str) -> None:
                with tqdm(total=expected, desc=desc, unit="call") as bar:
                    deadline = time.monotonic() + args.timeout
                    while time.monotonic() < deadline:
                        stored = samples.stored[-1] if samples.stored else 0
                        lag = samples.lag_calls[-1] if samples.lag_calls else 0
                        bar.n = stored - lag
                        bar.refresh()
                        if stored >= expected and lag == 0:
                            return
                        time.sleep(1.0)

            # Warm-up: workers load their models on the first task; not part of the figures.
            for i in range(args.warmup):
                answer(i)
            driftline.flush(timeout=120)
            wait_settled(args.warmup, "warm-up")
            for series in (samples.lag_calls, samples.lag_age_s, samples.ingest_queue):
                series.clear()

            t0 = time.perf_counter()
            for i in tqdm(range(args.events), desc="SDK calls", unit="call", unit_scale=True):
                answer(args.warmup + i)
                ahead = (i + 1) / args.rate - (time.perf_counter() - t0)
                if ahead > 0.005:
                    time.sleep(ahead)
            flushed = driftline.flush(timeout=300)
            send_s = time.perf_counter() - t0
            sent = int(flushed.sent) - args.warmup
            wait_settled(sent + args.warmup, "stored + followed up")
            total_s = time.perf_counter() - t0
            stop.set()
            sampler.join()
            result = {
                "events": args.events,
                "sdk_sent": sent,
                "sdk_dropped": dict(flushed.dropped),
                "stored": samples.stored[-1] - args.warmup,
                "lost": sent - (samples.stored[-1] - args.warmup),
                "send_events_per_s": sent / send_s,
                "end_to_end_events_per_s": sent / total_s,
                "lag_calls_max": max(samples.lag_calls),
                "lag_age_s_max": max(samples.lag_age_s),
                "ingest_queue_max": max(samples.ingest_queue),
                "embed_queue_end": samples.embed_queue[-1],
                "web_rss_mb_peak": samples.web_mb,
                "worker_rss_mb_peak": samples.worker_mb,
            }
            driftline.shutdown(timeout=5)
    finally:
        stop.set()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()

    print_table(
        f"Soak: {args.events:,} calls via SDK -> API -> workers at {args.rate:,.0f}/s",
        ["what", "value"],
        [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in result.items()],
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    return 0 if result.get("lost") == 0 and not result.get("sdk_dropped") else 1


if __name__ == "__main__":
    sys.exit(main())
