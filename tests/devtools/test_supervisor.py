"""The `make run` supervisor keeps its processes up: a crashed one is restarted with back-off,
the others are left alone, and stop() ends every process group."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from devtools.devstack import Child, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


def _poll_until(supervisor: Supervisor, predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.poll()
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_worker_is_restarted_and_the_rest_keeps_running(tmp_path: Path) -> None:
    supervisor = Supervisor(status_path=tmp_path / "processes.json", min_backoff_s=0.1)
    supervisor.add(Child("worker", SLEEPER))
    supervisor.add(Child("web", SLEEPER))
    supervisor.start()
    try:
        worker, web = supervisor.children["worker"], supervisor.children["web"]
        assert worker.process is not None
        assert web.process is not None
        first_pid, web_pid = worker.process.pid, web.process.pid
        os.kill(first_pid, signal.SIGKILL)
        _poll_until(supervisor, lambda: worker.restarts == 1)
        assert worker.process.pid != first_pid
        assert worker.process.poll() is None
        assert web.process.pid == web_pid
        assert web.restarts == 0
        status = json.loads((tmp_path / "processes.json").read_text())
        assert status["worker"] == {"pid": worker.process.pid, "restarts": 1, "command": SLEEPER}
    finally:
        supervisor.stop(timeout=5)
    assert not _alive(worker.process.pid)
    assert not _alive(web.process.pid)


def test_a_process_that_keeps_crashing_backs_off_exponentially_up_to_the_cap() -> None:
    supervisor = Supervisor(min_backoff_s=0.05, max_backoff_s=0.2)
    crasher = Child("beat", CRASHER)
    supervisor.add(crasher)
    supervisor.start()
    try:
        backoffs: list[float] = []
        deadline = time.monotonic() + 15
        while len(backoffs) < 5 and time.monotonic() < deadline:
            before = crasher.restart_at
            supervisor.poll()
            if crasher.restart_at is not None and crasher.restart_at != before:
                backoffs.append(crasher.backoff_s)
            time.sleep(0.01)
        assert backoffs == [0.05, 0.1, 0.2, 0.2, 0.2]
        assert crasher.restarts >= 4  # restarted each time, never given up on
    finally:
        supervisor.stop(timeout=5)


def test_a_one_shot_child_is_not_restarted() -> None:
    supervisor = Supervisor(min_backoff_s=0.01)
    seed = Child("seed", CRASHER, restart=False)
    supervisor.add(seed)
    supervisor.start()
    assert seed.process is not None
    seed.process.wait(timeout=10)
    for _ in range(20):
        supervisor.poll()
        time.sleep(0.01)
    assert seed.restarts == 0
    assert seed.restart_at is None
