"""Faults against a live `make run` stack: nothing lost, nothing duplicated, the stack stays up.

    python -m bench.faults [--rate 100] [--phase-s 20] [--settle-s 300] [--keep-state]

Starts the real stack (``python -m devtools.devstack run`` in ``.driftline/faults``, on free
ports), creates a key with the CLI (``manage.py create_api_key``, found through the state file),
then streams LLM calls through the SDK (``@driftline.observe``, ids known from
``current_call_id``) at ``--rate`` calls/s while it injects, one phase each:

- ``baseline``: no fault;
- ``worker-kill``: SIGKILL of the main worker's pool children, three times, and once of the
  worker itself (the supervisor restarts it);
- ``redis-restart``: Redis stopped and started again on the same port and append-only file
  after ~8 s down;
- ``postgres-restart``: PostgreSQL stopped (fast shutdown) and started again after ~5 s;
- ``spool-full``: the server unreachable for ~10 s (a proxy in front of it refuses) with the
  SDK's spool limited to ``--spool-kib`` (a size-limited spool stands in for a full disk): the
  oldest spooled batches are evicted and counted by the SDK as ``spool_full`` drops.

Then it waits for the SDK to deliver and for the sweepers (follow-ups lost in an outage are
re-queued after ``SWEEP_GRACE_SECONDS``) and prints per fault: accepted (sent by the SDK),
stored, lost (neither stored nor counted as dropped by the SDK), dropped as counted by the
SDK, duplicated (rows per id > 1, rollup calls != stored calls), unprocessed (no follow-up);
and whether the stack answered /health after each fault. The goal is 0 / 0 / 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, print_table

STATE = ROOT / ".driftline" / "faults"
KEY = re.compile(r"^dl_[0-9a-f]{12}_\S+$", re.MULTILINE)


def log(message: str) -> None:
    print(f"[faults] {time.strftime('%H:%M:%S')} {message}", flush=True)


# --- The stack ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DRIFTLINE_ENV", "SECRET_KEY", "DEBUG"}
    }
    env["DRIFTLINE_STATE_DIR"] = str(STATE / "run")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "sdk")])
    return env


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/health", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    url: str
    redis_port: int

    @property
    def run(self) -> Path:
        return STATE / "run"

    def services(self) -> dict[str, Any]:
        return dict(json.loads((self.run / "services.json").read_text()))

    def processes(self) -> dict[str, Any]:
        return dict(json.loads((self.run / "processes.json").read_text()))

    def up(self) -> bool:
        return self.process.poll() is None and healthy(self.url)


def start_stack() -> Stack:
    port, redis_port = free_port(), free_port()
    env = {
        **clean_env(),
        "DRIFTLINE_PORT": str(port),
        "DRIFTLINE_REDIS_PORT": str(redis_port),
        "DRIFTLINE_SEED_DEMO": "0",
        "INGEST_RATE_LIMIT_EVENTS_PER_S": "0",
    }
    (STATE / "run").mkdir(parents=True, exist_ok=True)
    out = open(STATE / "make-run.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.devstack", "run"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(process, f"http://127.0.0.1:{port}", redis_port)
    deadline = time.monotonic() + 300
    while not stack.up():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"make run did not come up; see {STATE / 'make-run.log'}")
        time.sleep(1)
    return stack


def stop_stack(stack: Stack) -> int:
    if stack.process.poll() is None:
        os.kill(stack.process.pid, signal.SIGTERM)
    return stack.process.wait(timeout=180)


# --- A proxy the "spool-full" phase cuts -------------------------------------------------------


class Proxy:
    """TCP forwarder to the web server; while ``down`` it refuses (closes) new connections and
    cuts open ones, as a server that went away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.down = True
        with self.lock:
            for conn in list(self.open):
                with contextlib.suppress(OSError):
                    conn.close()
            self.open.clear()

    def _accept(self) -> None:
        while True:
            client, _ = self.sock.accept()
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update({client, upstream})
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (src, dst):
                with contextlib.suppress(OSError):
                    conn.close()
                with self.lock:
                    self.open.discard(conn)


# --- The stream ---------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    ids: list[str] = field(default_factory=list)
    up_after: bool = False
    note: str = ""
    sent: int = 0
    dropped: int = 0


class Stream:
    """Records calls through the SDK at a fixed rate into the current phase."""

    def __init__(self, rate: float) -> None:
        import driftline

        self.rate = rate
        self.phase: Phase | None = None
        self.stop = threading.Event()

        @driftline.observe(name="faults", kind="llm")
        def answer(question: str) -> str:
            driftline.update_current_call(model="gpt-4o-mini", input_tokens=12, output_tokens=30)
            call_id = driftline.current_call_id()
            assert call_id is not None
            if self.phase is not None:
                self.phase.ids.append(call_id)
            return f"answer to {question}"

        self.answer = answer
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        start = time.monotonic()
        while not self.stop.is_set():
            if self.phase is not None:
                self.answer(f"question {i}")
                i += 1
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif self.phase is None:
                time.sleep(0.01)
                start, i = time.monotonic(), 0


# --- Faults -------------------------------------------------------------------------------------


def kill_worker_children(stack: Stack) -> str:
    import psutil  # type: ignore[import-untyped]

    pid = stack.processes()["worker"]["pid"]
    children = psutil.Process(pid).children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    return f"{len(children)} pool processes"


def no_fault(phase_s: float) -> str:
    time.sleep(phase_s)
    return "no fault"


def fault_worker_kill(stack: Stack, phase_s: float) -> str:
    notes = []
    for _ in range(3):
        time.sleep(phase_s / 5)
        notes.append(kill_worker_children(stack))
    time.sleep(phase_s / 10)
    os.kill(stack.processes()["worker"]["pid"], signal.SIGKILL)
    notes.append("the worker itself")
    time.sleep(phase_s / 5)
    return "SIGKILL: " + ", ".join(notes)


def fault_redis_restart(stack: Stack, phase_s: float) -> str:
    from devtools.devstack import start_redis, stop_redis

    redis_dir = Path(stack.services()["redis_dir"])
    time.sleep(phase_s / 4)
    stop_redis(redis_dir)
    time.sleep(8)
    url = start_redis(redis_dir, port=stack.redis_port)
    assert url.endswith(f":{stack.redis_port}/0"), url
    time.sleep(phase_s / 2)
    return "down ~8 s, same port and append-only file"


def fault_postgres_restart(stack: Stack, phase_s: float) -> str:
    from devtools.devstack import start_postgres, stop_postgres

    pg_dir = Path(stack.services()["postgres_dir"])
    time.sleep(phase_s / 4)
    stop_postgres(pg_dir)
    time.sleep(5)
    start_postgres(pg_dir)
    time.sleep(phase_s / 2)
    return "fast shutdown, down ~5 s"


def fault_spool_full(proxy: Proxy, phase_s: float) -> str:
    time.sleep(phase_s / 4)
    proxy.cut()
    time.sleep(10)
    proxy.down = False
    time.sleep(phase_s / 2)
    return "server unreachable ~10 s, spool limited"


# --- Counting -----------------------------------------------------------------------------------


def counts(database_url: str, project_id: int, ids: list[str]) -> dict[str, int]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id::text, count(*), bool_and(processed_at IS NOT NULL) FROM traces_call"
            " WHERE project_id = %s AND id = ANY(%s::uuid[]) GROUP BY id",
            (project_id, ids),
        ).fetchall()
    stored = len(rows)
    return {
        "stored": stored,
        "duplicated": sum(n - 1 for _, n, _ in rows),
        "unprocessed": sum(1 for _, _, done in rows if not done),
    }


def rollup_gap(database_url: str, project_id: int) -> int:
    """Calls counted by the project-level minute rollups minus calls stored (0 when exact)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rolled = conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM traces_callrollup"
            " WHERE project_id = %s AND grain = 60 AND level = 2",
            (project_id,),
        ).fetchone()
        stored = conn.execute(
            "SELECT count(*) FROM traces_call WHERE project_id = %s", (project_id,)
        ).fetchone()
    assert rolled is not None
    assert stored is not None
    return int(rolled[0]) - int(stored[0])


def create_project_and_key(stack: Stack, slug: str) -> tuple[int, str]:
    """A fresh project (so rollups count only this run) and a key made by the CLI."""
    import psycopg

    env = clean_env()
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHELL_PROJECT.format(slug=slug)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "--project", slug, "--scopes", "ingest"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = KEY.findall(result.stdout)[-1]
    with psycopg.connect(stack.services()["DATABASE_URL"]) as conn:
        row = conn.execute("SELECT id FROM accounts_project WHERE slug = %s", (slug,)).fetchone()
    assert row is not None
    return int(row[0]), key


SHELL_PROJECT = (
    "from apps.accounts.models import Organization, Project; "
    "org, _ = Organization.objects.get_or_create(slug='faults', defaults={{'name': 'Faults'}}); "
    "Project.objects.get_or_create(slug='{slug}', defaults={{'organization': org, "
    "'name': '{slug}'}})"
)


# --- Main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="calls/s through the SDK")
    parser.add_argument("--phase-s", type=float, default=20.0)
    parser.add_argument("--settle-s", type=float, default=300.0, help="wait for sweepers")
    parser.add_argument("--spool-kib", type=int, default=16)
    parser.add_argument("--keep-state", action="store_true", help="reuse .driftline/faults")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.keep_state:
        shutil.rmtree(STATE, ignore_errors=True)
    started = time.monotonic()
    log("starting the stack (python -m devtools.devstack run)")
    stack = start_stack()
    phases: list[Phase] = []
    try:
        project_id, key = create_project_and_key(stack, f"faults-{int(time.time())}")
        web_port = int(stack.url.rsplit(":", 1)[1])
        proxy = Proxy(web_port)
        import driftline

        def sdk(spool_name: str, max_bytes: int) -> None:
            spool = STATE / spool_name
            shutil.rmtree(spool, ignore_errors=True)
            driftline.init(
                api_key=key,
                host=f"http://127.0.0.1:{proxy.port}",
                spool_dir=str(spool),
                spool_max_bytes=max_bytes,
                timeout=5.0,
                max_retries=3,
                flush_interval=0.5,
            )

        sdk("spool", 64 * 2**20)  # the SDK's default spool limit
        stream = Stream(args.rate)
        faults = [
            ("baseline", lambda: no_fault(args.phase_s)),
            ("worker-kill", lambda: fault_worker_kill(stack, args.phase_s)),
            ("redis-restart", lambda: fault_redis_restart(stack, args.phase_s)),
            ("postgres-restart", lambda: fault_postgres_restart(stack, args.phase_s)),
            ("spool-full", lambda: fault_spool_full(proxy, args.phase_s)),
        ]
        dropped_before = sent_before = 0
        sdk_stats: dict[str, Any] = {"sent": 0, "dropped": {}}
        for name, inject in faults:
            if name == "spool-full":
                # A full disk, simulated: a fresh client whose spool holds only --spool-kib.
                stream.phase = None
                done = driftline.shutdown(timeout=60)
                sdk_stats = {"sent": done.sent, "dropped": dict(done.dropped)}
                dropped_before = sent_before = 0
                sdk("spool-small", args.spool_kib * 1024)
            phase = Phase(name)
            phases.append(phase)
            stream.phase = phase
            log(f"{name}: streaming at {args.rate:.0f} calls/s")
            phase.note = str(inject())
            stream.phase = None
            result = driftline.flush(timeout=60)
            phase.dropped = result.dropped_total - dropped_before
            phase.sent = result.sent - sent_before
            dropped_before, sent_before = result.dropped_total, result.sent
            phase.note += f"; SDK dropped {phase.dropped} ({dict(result.dropped) or '-'})"
            deadline = time.monotonic() + 60
            phase.up_after = stack.up()
            while not phase.up_after and time.monotonic() < deadline:
                time.sleep(1)
                phase.up_after = stack.up()
            log(f"{name}: {phase.note}; stack up: {phase.up_after}")
        stream.stop.set()
        final = driftline.shutdown(timeout=60)
        dropped_all = dict(sdk_stats["dropped"])
        for reason, n in final.dropped.items():
            dropped_all[reason] = dropped_all.get(reason, 0) + n
        sdk_stats = {
            "sent": sdk_stats["sent"] + final.sent,
            "dropped": dropped_all,
            "failed": final.failed,
            "pending": final.pending,
        }
        log(f"SDK: {sdk_stats}")
        database_url = stack.services()["DATABASE_URL"]
        all_ids = [i for p in phases for i in p.ids]
        deadline = time.monotonic() + args.settle_s
        log(f"waiting up to {args.settle_s:.0f} s for follow-ups and sweepers")
        while True:
            total = counts(database_url, project_id, all_ids)
            if total["unprocessed"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(5)
        gap = None
        rollup_deadline = time.monotonic() + 90
        while gap != 0 and time.monotonic() < rollup_deadline:
            gap = rollup_gap(database_url, project_id)
            if gap:
                time.sleep(5)
        rows = []
        report: list[dict[str, Any]] = []
        for phase in phases:
            c = counts(database_url, project_id, phase.ids)
            dropped = phase.dropped
            lost = len(phase.ids) - c["stored"] - dropped
            entry = {
                "fault": phase.name,
                "recorded": len(phase.ids),
                "accepted": phase.sent,
                "stored": c["stored"],
                "lost": lost,
                "dropped_counted": dropped,
                "duplicated": c["duplicated"],
                "unprocessed": c["unprocessed"],
                "stack_up": phase.up_after,
                "note": phase.note,
            }
            report.append(entry)
            rows.append(
                (
                    phase.name,
                    len(phase.ids),
                    entry["accepted"],
                    c["stored"],
                    lost,
                    dropped,
                    c["duplicated"],
                    c["unprocessed"],
                    "yes" if phase.up_after else "NO",
                )
            )
        print_table(
            f"bench.faults: {len(all_ids):,} calls through the SDK, rollup gap {gap}, "
            f"{time.monotonic() - started:.0f} s",
            ["fault", "sent", "accepted", "stored", "lost", "dropped*", "dup", "unproc", "up"],
            rows,
        )
        print("  sent: calls recorded through the SDK; dropped*: counted by the SDK as dropped")
        print("  (never silent); dup: rows per id > 1; unproc: stored, no follow-up after sweepers")
        for entry in report:
            print(f"  {entry['fault']}: {entry['note']}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "faults.json").write_text(
            json.dumps({"phases": report, "sdk": sdk_stats, "rollup_gap": gap}, indent=2)
        )
        bad = any(e["lost"] or e["duplicated"] or e["unprocessed"] for e in report) or gap
        return 1 if bad or not all(p.up_after for p in phases) else 0
    finally:
        code = stop_stack(stack)
        log(f"stack stopped (exit {code})")


if __name__ == "__main__":
    raise SystemExit(main())
