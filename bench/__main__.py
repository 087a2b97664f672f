"""``make bench``: every benchmark in sequence, each in its own process, then one table of the
headline figures side by side (read back from bench/results/*.json).

    python -m bench [--only ingest,overview] [--skip search] [--calls 1000000] [--n 100000]

While each runs, its process tree is sampled (psutil, every 0.5 s) for the peak RSS of web
(gunicorn) processes, worker (celery) processes and the benchmark process itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs installed; used for RSS only
from tqdm import tqdm

from bench.common import RESULTS, ROOT, print_table


@dataclass
class Step:
    name: str
    module: str
    args: list[str] = field(default_factory=list)


def steps(calls: int, n: int) -> list[Step]:
    return [
        Step("ingest", "bench.ingest"),
        Step("embed", "bench.embed"),
        Step("overview", "bench.overview", ["--calls", str(calls)]),
        Step("search", "bench.search", ["--n", str(n)]),
        Step("drift", "bench.drift.run", ["--quick"]),
        Step("signals", "bench.quality.signals"),
        Step("sdk", "bench.sdk.overhead"),
    ]


def role(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""
    if "gunicorn" in cmd:
        return "web"
    if "celery" in cmd and " worker" in cmd:
        return "worker"
    return ""


def run(step: Step) -> tuple[int, float, dict[str, float]]:
    """Run one benchmark; returns (exit code, seconds, peak RSS MB by role)."""
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", step.module, *step.args], cwd=ROOT)
    parent = psutil.Process(child.pid)
    peaks: dict[str, float] = {"bench": 0.0, "web": 0.0, "worker": 0.0}
    while child.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        web = worker = 0.0
        for proc in procs:
            try:
                rss = proc.memory_info().rss / 2**20
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            kind = role(proc)
            if kind == "web":
                web = max(web, rss)
            elif kind == "worker":
                worker = max(worker, rss)
            elif proc.pid == parent.pid:
                peaks["bench"] = max(peaks["bench"], rss)
        peaks["web"], peaks["worker"] = max(peaks["web"], web), max(peaks["worker"], worker)
        time.sleep(0.5)
    return child.wait(), time.perf_counter() - t0, peaks


def _load(name: str) -> dict[str, Any]:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else {}


def _fmt(value: Any, spec: str = ",.2f") -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def headline(calls: int, n: int) -> list[list[str]]:
    ingest, embed = _load("ingest.json"), _load("embed.json")
    overview, search = _load(f"overview-{calls}.json"), _load(f"search-{n}.json")
    q30 = overview.get("queries", {}).get("30d/all", {})
    half = search.get("halfvec/ef100", {})
    return [
        [
            "ingest API vs raw COPY",
            f"{_fmt(ingest.get('api_events_per_s'), ',.0f')} vs "
            f"{_fmt(ingest.get('copy_rows_per_s'), ',.0f')} rows/s",
            f"ratio {_fmt(ingest.get('ratio'))}",
            ">= 0.25",
        ],
        [
            "embed pipeline vs raw encode",
            f"{_fmt(embed.get('pipeline_texts_per_s'), ',.0f')} vs "
            f"{_fmt(embed.get('raw_texts_per_s'), ',.0f')} texts/s",
            f"ratio {_fmt(embed.get('ratio'))}",
            ">= 0.9",
        ],
        [
            f"overview 30d at {calls:,} calls (raw | rollup)",
            f"p50 {_fmt(q30.get('raw_p50_ms'), ',.0f')} | {_fmt(q30.get('rollup_p50_ms'))} ms",
            f"p95 {_fmt(q30.get('raw_p95_ms'), ',.0f')} | {_fmt(q30.get('rollup_p95_ms'))} ms",
            "p95 <= 300 ms",
        ],
        [
            f"similar-call search, {n:,} halfvec, ef 100",
            f"p50 {_fmt(half.get('p50_ms'))} / p95 {_fmt(half.get('p95_ms'))} ms",
            f"recall@10 {_fmt(half.get('recall_at_10'), '.3f')}",
            "p95 <= 50 ms, recall >= 0.95",
        ],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated step names")
    parser.add_argument("--skip", default="", help="comma-separated step names")
    parser.add_argument("--calls", type=int, default=1_000_000, help="overview calls")
    parser.add_argument("--n", type=int, default=100_000, help="search vectors")
    args = parser.parse_args()
    only = {s for s in args.only.split(",") if s}
    skip = {s for s in args.skip.split(",") if s}
    chosen = [
        s for s in steps(args.calls, args.n) if (not only or s.name in only) and s.name not in skip
    ]
    rows, failed = [], []
    for step in tqdm(chosen, desc="benchmarks", unit="bench"):
        tqdm.write(f"--- {step.name}: python -m {step.module} {' '.join(step.args)}")
        code, seconds, peaks = run(step)
        if code:
            failed.append(step.name)
        rows.append(
            [
                step.name,
                "ok" if code == 0 else f"exit {code}",
                f"{seconds:,.0f}",
                *(f"{peaks[k]:,.0f}" if peaks[k] else "-" for k in ("bench", "web", "worker")),
            ]
        )
    print_table(
        "Benchmarks run",
        ["step", "status", "seconds", "bench RSS MB", "web RSS MB", "worker RSS MB"],
        rows,
    )
    print_table(
        "Headline figures",
        ["what", "measured", "ratio / p95", "target"],
        headline(args.calls, args.n),
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
