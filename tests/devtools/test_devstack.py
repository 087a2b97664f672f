"""The embedded services survive a crash: stale pid and socket files do not block a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import redis

from devtools.devstack import start_redis, stop_redis


def test_redis_restarts_after_a_crash_with_a_stale_pid_file(tmp_path: Path) -> None:
    url = start_redis(tmp_path)
    assert redis.Redis.from_url(url).ping()
    pid = int((tmp_path / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    # The pid file still names the dead server.
    assert (tmp_path / "redis.pid").exists()
    url = start_redis(tmp_path)
    try:
        assert redis.Redis.from_url(url).ping()
        assert start_redis(tmp_path) == url  # a running server is reused, not doubled
    finally:
        stop_redis(tmp_path)
    assert not (tmp_path / "redis.pid").exists()


def _in_new_process(code: str) -> str:
    """Run devstack code as `make run` does after a crash: in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", f"from pathlib import Path; from devtools import devstack; {code}"],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def test_postgres_restarts_after_a_crash_and_keeps_its_data(tmp_path: Path) -> None:
    data = tmp_path / "pg"
    start = f"print(devstack.start_postgres(Path({str(data)!r})))"
    url = _in_new_process(start)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        postmaster = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(postmaster, signal.SIGKILL)
        time.sleep(1.0)
        assert (data / "postmaster.pid").exists()  # stale after the crash
        url = _in_new_process(start)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    finally:
        _in_new_process(f"devstack.stop_postgres(Path({str(data)!r}))")


def test_stop_after_a_restart_stops_the_new_postgres(tmp_path: Path) -> None:
    """Issue 13: after PostgreSQL was restarted behind `make run`'s back, its shutdown used a
    handle naming the old postmaster and left the new one running."""
    from devtools.devstack import postgres_pid, start_postgres, stop_postgres

    data = tmp_path / "pg"
    start_postgres(data)  # this process now holds pgserver's handle of the first postmaster
    first = postgres_pid(data)
    assert first is not None
    # Restarted by someone else (a fault test, an operator): a new postmaster.
    _in_new_process(f"devstack.stop_postgres(Path({str(data)!r}))")
    _in_new_process(f"print(devstack.start_postgres(Path({str(data)!r})))")
    second = postgres_pid(data)
    assert second is not None
    assert second != first
    stop_postgres(data)
    assert postgres_pid(data) is None
    assert not (data / "postmaster.pid").exists()


def test_celery_processes_print_no_banner() -> None:
    # make run prints the URL, login and key once; four celery banners used to bury them.
    from devtools.devstack import stack_commands

    commands = stack_commands("127.0.0.1", "8000", reload=False)
    celery = {name: cmd for name, cmd in commands.items() if "celery" in cmd}
    assert set(celery) == {"worker", "embed-worker", "evaluate-worker", "beat"}
    for cmd in celery.values():
        assert cmd.index("--quiet") < cmd.index("worker" if "worker" in cmd else "beat")


def test_stop_gives_make_run_its_ctrl_c_and_leaves_a_reused_pid_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make stop` used to stop only PostgreSQL and Redis: the supervisor went on restarting
    # web, workers and beat against a dead broker.
    from devtools import devstack

    monkeypatch.setenv("DRIFTLINE_STATE_DIR", str(tmp_path))
    marker = tmp_path / "got-sigterm"
    code = (
        "import pathlib, signal, sys, time\n"
        f"def bye(*_): pathlib.Path({str(marker)!r}).write_text('x'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    # The command line names devtools.devstack, as the real supervisor's does.
    fake = subprocess.Popen(
        [sys.executable, "-c", code, "devtools.devstack", "run"], stdout=subprocess.PIPE, text=True
    )
    assert fake.stdout is not None
    assert fake.stdout.readline().strip() == "ready"
    threading.Thread(target=fake.wait, daemon=True).start()  # reaped like make reaps it
    devstack.write_state(supervisor_pid=fake.pid)
    assert devstack.stop_supervisor(timeout=10)
    assert marker.read_text() == "x"

    sleep = "import time; time.sleep(60)"
    # A reused pid is left alone: any other program, a `devstack test` or `stop` (of any
    # checkout), a `make run` of another checkout, and the process asking.
    others = [
        subprocess.Popen([sys.executable, "-c", sleep]),
        subprocess.Popen([sys.executable, "-c", sleep, "devtools.devstack", "test"]),
        subprocess.Popen([sys.executable, "-c", sleep, "devtools.devstack", "stop"]),
        subprocess.Popen([sys.executable, "-c", sleep, "devtools.devstack", "run"], cwd=tmp_path),
    ]
    try:
        for other in others:
            devstack.write_state(supervisor_pid=other.pid)
            assert not devstack.stop_supervisor(timeout=1)
            assert other.poll() is None
        devstack.write_state(supervisor_pid=os.getpid())
        assert devstack.running_supervisor() is None
    finally:
        for other in others:
            other.kill()
            other.wait()
