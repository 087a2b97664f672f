"""Helpers shared by benchmarks: embedded services, a gunicorn server, percentiles."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def setup_django(stack: str = "bench") -> dict[str, str]:
    """Start (or reuse) the bench stack's PostgreSQL and Redis, migrate, and set Django up."""
    from devtools.devstack import services

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DEBUG", "0")
    manager = services(stack, keep=True)
    env = manager.__enter__()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    return env


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gunicorn(*, workers: int = 2, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real gunicorn serving the project on a free loopback port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "apps.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in header:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*[f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)


def post_concurrently(
    url: str,
    path: str,
    headers: dict[str, str],
    bodies: Sequence[bytes],
    clients: int,
    *,
    tally: Callable[[int, bytes], int],
    desc: str = "batches",
) -> tuple[float, list[float], int]:
    """POST every body to ``url + path`` from ``clients`` keep-alive connections at once.

    Returns the wall time, each request's latency in ms and the sum of ``tally(status, body)``
    over the answers (events accepted, failures: what the caller counts).
    """
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    total = 0
    lock = threading.Lock()
    pending = iter(bodies)
    progress = tqdm(total=len(bodies), desc=desc, unit="batch")

    def worker() -> None:
        nonlocal total
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                body = next(pending, None)
            if body is None:
                break
            t0 = time.perf_counter()
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed * 1000)
                total += tally(response.status, answer)
                progress.update(1)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    return time.perf_counter() - t0, latencies, total
