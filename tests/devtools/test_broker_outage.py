"""Issue 13: a Redis restart no longer ends a Celery worker. A real worker (prefork, as `make
run` starts it) on a Redis of its own rides out the outage and answers again after it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from devtools.devstack import ROOT, start_redis, stop_redis

WORKER_ARGS = ["-Q", "outage-test", "--concurrency", "1", "-l", "INFO", "-n", "outage@%h"]
pytestmark = [pytest.mark.worker, pytest.mark.timeout(300)]


def test_the_worker_settings_ride_out_broker_outages() -> None:
    from apps.celery import app

    assert app.conf.broker_connection_retry is True
    assert app.conf.broker_connection_retry_on_startup is True
    assert app.conf.broker_connection_max_retries is None
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert app.conf.broker_transport_options["health_check_interval"] == 10


def _connected(log: Path) -> int:
    """How often the worker's consumer (re)connected to the broker, from its log."""
    return log.read_text(errors="replace").count("celery.worker.consumer.connection: Connected")


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return False


def test_a_worker_survives_a_redis_restart_on_the_same_port(tmp_path: Path) -> None:
    broker = start_redis(tmp_path / "redis")
    port = int(broker.rsplit(":", 1)[1].split("/")[0])
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "apps", "worker", *WORKER_ARGS],
        cwd=ROOT,
        env={
            **os.environ,
            "CELERY_BROKER_URL": broker,
            "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
            "DATABASE_TEST_NAME": str(settings.DATABASES["default"]["NAME"]),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    path = tmp_path / "worker.log"
    try:
        assert _wait(lambda: "outage@" in path.read_text() and "ready." in path.read_text(), 180)
        assert _connected(path) == 1
        stop_redis(tmp_path / "redis")
        # Longer than the health check interval: the worker notices and keeps retrying.
        assert _wait(lambda: "Cannot connect to redis" in path.read_text(), 60), path.read_text()
        time.sleep(5)
        assert worker.poll() is None, path.read_text()[-3000:]
        assert start_redis(tmp_path / "redis", port=port) == broker  # same port, same AOF
        assert _wait(lambda: _connected(path) >= 2, 90), path.read_text()[-3000:]
        time.sleep(3)
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        stop_redis(tmp_path / "redis")
    text = (tmp_path / "worker.log").read_text()
    assert "restore_unacked" not in text
