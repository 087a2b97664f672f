"""What ``@driftline.observe`` costs the caller, against Langfuse's ``@observe``.

    python -m bench.sdk.overhead [--calls 20000] [--seconds 3] [--rate 1000]

Part 1, per-call overhead: the same tiny function undecorated, under ``@driftline.observe``
(server up: a local fake ingest answering 207; server down: a closed port) and under Langfuse's
``@observe`` (pointed at a closed local port, as the brief asks). Each call is timed on its own
with ``perf_counter_ns``; overhead = decorated minus undecorated, median and p99, in us.

Part 2, the caller's latency while the server is healthy, down (closed port) or slow (a local
server sleeping 2 s per request): a ~100 us CPU-bound handler called at a steady rate; per-call
p50/p99/p99.9 in us, and what ``flush`` reports (sent, on disk, dropped). Target: the p99 with the
server down is no higher than with it healthy.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "sdk"))

import driftline  # noqa: E402 - after the path tweak, so a checkout runs without installing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeIngest:
    """A local ingest endpoint: answers 207, optionally after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if delay:
                    time.sleep(delay)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                batch = json.loads(raw)["batch"]
                fake.received += len(batch)
                body = json.dumps(
                    {"results": [{"id": e["id"], "status": "accepted"} for e in batch]}
                ).encode()
                self.send_response(207)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]


def _time_calls(func: Callable[[str], Any], calls: int) -> list[float]:
    """Per-call wall time in microseconds."""
    clock = time.perf_counter_ns
    out = [0.0] * calls
    arg = "How do I reset my password?"
    for _ in range(min(2000, calls)):  # warm-up (lazy thread start, caches)
        func(arg)
    for i in range(calls):
        t0 = clock()
        func(arg)
        out[i] = (clock() - t0) / 1000.0
    return out


def target(question: str) -> str:
    return question[::-1]


def _driftline_init(host: str, spool: str) -> None:
    driftline.init(api_key="dl_bench", host=host, spool_dir=spool, environment="bench")


def part1(calls: int, spool: str) -> list[list[object]]:
    results: dict[str, list[float]] = {}
    results["undecorated"] = _time_calls(target, calls)

    server = FakeIngest()
    _driftline_init(server.url, spool)
    results["driftline (server up)"] = _time_calls(driftline.observe(target), calls)
    driftline.shutdown(10)
    server.stop()

    _driftline_init(f"http://127.0.0.1:{_free_port()}", spool)
    results["driftline (server down)"] = _time_calls(driftline.observe(target), calls)
    driftline.shutdown(2)

    fake_secret = "sk-lf-" + "bench"  # not a credential: the port is closed
    os.environ.update(
        LANGFUSE_PUBLIC_KEY="pk-lf-bench",
        LANGFUSE_SECRET_KEY=fake_secret,
        LANGFUSE_HOST="http://127.0.0.1:9",
        LANGFUSE_BASE_URL="http://127.0.0.1:9",
    )
    try:
        import logging

        logging.getLogger("langfuse").setLevel(logging.CRITICAL)
        from langfuse import Langfuse, observe

        lf = Langfuse(public_key="pk-lf-bench", secret_key=fake_secret, host="http://127.0.0.1:9")
        results["langfuse (closed port)"] = _time_calls(observe(target), calls)
        lf.shutdown()
    except Exception as exc:  # the comparison is optional when langfuse is missing
        print(f"langfuse not measured: {exc!r}")

    base = statistics.median(results["undecorated"])
    base99 = _pct(results["undecorated"], 99)
    rows: list[list[object]] = []
    for name, values in results.items():
        med, p99 = statistics.median(values), _pct(values, 99)
        rows.append([name, med, p99, med - base, p99 - base99])
    lf_row = next((r for r in rows if str(r[0]).startswith("langfuse")), None)
    for row in rows:
        if lf_row is not None and _f(lf_row[3]) > 0 and row[0] != "undecorated":
            row.append(_f(row[3]) / _f(lf_row[3]))
        else:
            row.append("")
    return rows


def _f(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _handler_work(question: str) -> str:
    digest = question.encode()
    for _ in range(150):  # ~100 us of CPU
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def _paced(func: Callable[[str], Any], seconds: float, rate: float) -> list[float]:
    clock = time.perf_counter
    period = 1.0 / rate
    out: list[float] = []
    start = clock()
    next_at = start
    i = 0
    while clock() - start < seconds:
        t0 = clock()
        func(f"question {i}")
        out.append((clock() - t0) * 1e6)
        i += 1
        next_at += period
        pause = next_at - clock()
        if pause > 0:
            time.sleep(pause)
    return out


def part2(seconds: float, rate: float, rounds: int, spool: str) -> list[list[object]]:
    """Each scenario ``rounds`` times, interleaved; the median of the rounds' percentiles."""
    observed = driftline.observe(name="handler")(_handler_work)
    names = ["undecorated", "server healthy", "server down (closed port)", "server slow (2 s)"]
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    outcome: dict[str, str] = {}
    dropped: dict[str, int] = {}
    for _ in range(rounds):
        for name in names:
            if name == "undecorated":
                values = _paced(_handler_work, seconds, rate)
                runs[name].append((_pct(values, 50), _pct(values, 99), _pct(values, 99.9)))
                continue
            server = None if "down" in name else FakeIngest(delay=2.0 if "slow" in name else 0.0)
            shutil.rmtree(spool, ignore_errors=True)
            host = server.url if server else f"http://127.0.0.1:{_free_port()}"
            _driftline_init(host, spool)
            values = _paced(observed, seconds, rate)
            result = driftline.flush(10 if name == "server healthy" else 0.5)
            outcome[name] = (
                f"sent {result.sent}, on disk {result.failed}, in memory {result.pending}"
            )
            dropped[name] = dropped.get(name, 0) + sum(result.dropped.values())
            driftline.shutdown(3.0)
            if server is not None:
                server.stop()
            runs[name].append((_pct(values, 50), _pct(values, 99), _pct(values, 99.9)))
    rows: list[list[object]] = []
    for name in names:
        p50 = statistics.median(r[0] for r in runs[name])
        p99 = statistics.median(r[1] for r in runs[name])
        p999 = statistics.median(r[2] for r in runs[name])
        rows.append([name, p50, p99, p999, outcome.get(name, ""), dropped.get(name, "")])
    return rows


def _print(title: str, header: list[str], rows: list[list[object]]) -> None:
    try:
        from bench.common import print_table
    except ImportError:  # run outside the project: plain text
        print_table = None
    if print_table is not None:
        print_table(title, header, rows)
        return
    print(title)
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    spool = tempfile.mkdtemp(prefix="driftline-bench-spool-")
    try:
        rows1 = part1(args.calls, spool)
        _print(
            f"@observe per-call cost, {args.calls:,} calls (us)",
            ["variant", "median", "p99", "overhead median", "overhead p99", "vs langfuse"],
            rows1,
        )
        rows2 = part2(args.seconds, args.rate, args.rounds, spool)
        _print(
            f"caller latency (us), CPU-bound handler at {args.rate:,.0f}/s, {args.seconds:.0f} s,"
            f" median of {args.rounds} rounds",
            ["server", "p50", "p99", "p99.9", "flush() after the run (last round)", "dropped"],
            rows2,
        )
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "sdk_overhead.json").write_text(
            json.dumps({"overhead": rows1, "caller_latency": rows2}, indent=2, default=str)
        )
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    lf = next((r for r in rows1 if str(r[0]).startswith("langfuse")), None)
    ours = next(r for r in rows1 if r[0] == "driftline (server up)")
    if lf is not None:
        ratio = _f(ours[3]) / _f(lf[3])
        print(f"median overhead driftline/langfuse = {ratio:.3f} (target <= 0.5)")
    healthy = next(r for r in rows2 if r[0] == "server healthy")
    down = next(r for r in rows2 if str(r[0]).startswith("server down"))
    ratio99 = _f(down[2]) / _f(healthy[2])
    print(f"caller p99 server down / healthy = {ratio99:.2f} (target <= 1.0 within noise)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
