"""A live `make run` (in a folder of its own, on free ports): production server, a CLI that finds
the stack from a second terminal and after it stopped, crashed workers restarted, and every
service stopped on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools.devstack import ROOT, _free_port, postgres_pid

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CREATE_KEY = ["create_api_key", "--project", "demo", "--scopes", "ingest,read"]
KEY = re.compile(r"^dl_[0-9a-f]{12}_\S+$", re.MULTILINE)


def _clean_env(state: Path) -> dict[str, str]:
    """A second terminal's environment: nothing says where the stack is but the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DRIFTLINE_ENV", "SECRET_KEY", "DEBUG"}
    }
    env["DRIFTLINE_STATE_DIR"] = str(state)
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{ROOT / 'sdk'}"
    return env


def _get(url: str, key: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:  # not listening (yet)
        return 0, ""


def _create_key(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *CREATE_KEY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    keys = KEY.findall(result.stdout)
    assert keys, result.stdout
    return keys[-1]


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_make_run_serves_production_and_the_cli_finds_it(tmp_path: Path) -> None:
    state = tmp_path / "run"
    port, redis_port = _free_port(), _free_port()
    env = {
        **_clean_env(state),
        "DRIFTLINE_PORT": str(port),
        "DRIFTLINE_REDIS_PORT": str(redis_port),
        "DRIFTLINE_SEED_DEMO": "0",
        "DRIFTLINE_WEB_WORKERS": "2",
    }
    log = open(tmp_path / "make-run.log", "wb")  # noqa: SIM115
    stack = subprocess.Popen(
        [sys.executable, "-m", "devtools.devstack", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    output = lambda: (tmp_path / "make-run.log").read_text(errors="replace")  # noqa: E731
    try:
        _wait(lambda: "Ctrl-C stops everything" in output() or stack.poll() is not None, 300, "up")
        assert stack.poll() is None, output()[-4000:]
        _wait(lambda: _get(f"{base}/login/")[0] == 200, 120, "the web server")
        # Database, broker and a worker heartbeat (beat sends one every 15 s).
        _wait(lambda: _get(f"{base}/api/v1/health")[0] == 200, 180, "a healthy stack")
        # Production settings, gunicorn, the password shown once, the secret key kept private.
        assert "web (gunicorn, production settings)" in output()
        assert re.search(r"login: admin / \S+ +\(shown once", output())
        assert (state / "secret-key").stat().st_mode & 0o777 == 0o600
        status, body = _get(f"{base}/no-such-page")
        assert status == 404
        assert "URLconf" not in body
        assert "Not found" in body
        assert _get(f"{base}/static/css/app.css")[0] == 200  # whitenoise, collected at start
        assert (state / "static" / "css" / "app.css.gz").exists()

        # A second terminal: no environment variable, the key works against the live server.
        recorded = json.loads((state / "services.json").read_text())
        assert recorded["DATABASE_URL"].endswith(f"host={state / 'pg'}")
        assert recorded["CELERY_BROKER_URL"] == f"redis://127.0.0.1:{redis_port}/0"
        key = _create_key(_clean_env(state))
        assert _get(f"{base}/api/v1/calls", key)[0] == 200

        # A crashed worker is restarted; the stack stays up.
        processes = json.loads((state / "processes.json").read_text())
        os.kill(processes["worker"]["pid"], signal.SIGKILL)
        _wait(
            lambda: json.loads((state / "processes.json").read_text())["worker"]["restarts"] == 1,
            30,
            "the worker restart",
        )
        assert stack.poll() is None
        assert _get(f"{base}/login/")[0] == 200
    finally:
        if stack.poll() is None:
            os.kill(stack.pid, signal.SIGTERM)
        returncode = stack.wait(timeout=180)
        log.close()
    # SIGTERM stops everything, PostgreSQL and Redis included.
    assert returncode == 0, output()[-4000:]
    assert postgres_pid(state / "pg") is None
    redis_pid = (
        int((state / "redis" / "redis.pid").read_text() or 0)
        if (state / "redis" / "redis.pid").exists()
        else 0
    )
    assert not redis_pid
    # After it stopped: the same data, PostgreSQL started for the command and stopped again.
    assert _create_key(_clean_env(state)) != key
    assert postgres_pid(state / "pg") is None
