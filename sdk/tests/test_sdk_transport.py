"""The background sender against a real local HTTP server (no mocks of our own code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import driftline
import pytest
from driftline._transport import backoff, parse_retry_after


@driftline.observe
def work(i: int) -> int:
    return i * 2


def _wait_for(predicate: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_batches_by_size_and_gzips(sdk: Any) -> None:
    driftline.init(api_key="k", host=sdk.url, spool_dir=False, batch_size=10, flush_interval=30)
    for i in range(10):
        work(i)
    # A full batch is sent without waiting for the (30 s) interval or a flush.
    _wait_for(lambda: len(sdk.requests) == 1)
    assert sdk.requests[0]["count"] == 10
    for i in range(10, 35):
        work(i)
    result = driftline.flush(5)
    assert (result.sent, result.ok) == (35, True), result
    assert sum(r["count"] for r in sdk.requests) == 35
    assert all(r["gzip"] for r in sdk.requests)
    assert all(r["auth"] == "Bearer k" for r in sdk.requests)
    assert all(r["path"] == "/api/v1/ingest" for r in sdk.requests)


def test_backlog_is_sent_in_large_batches(sdk: Any) -> None:
    driftline.init(api_key="k", host=sdk.url, spool_dir=False, batch_size=10, flush_interval=30)
    sdk.delay = 0.5
    for i in range(2500):
        work(i)
    sdk.delay = 0
    assert driftline.flush(10).sent == 2500
    assert max(r["count"] for r in sdk.requests) == 1000  # the server's per-request limit


def test_call_event_shape(sdk: Any) -> None:
    work(21)
    assert driftline.flush(5).sent == 1
    event = sdk.calls()[0]
    body = event["body"]
    assert event["type"] == "call"
    assert len(event["id"]) == 36
    assert event["id"][14] == "4"
    assert body["name"] == "work"
    assert body["kind"] == "span"
    assert body["status"] == "ok"
    assert body["prompt"] == '{"i": 21}'
    assert body["response"] == "42"
    assert body["release"] == "1.2.3"
    assert body["environment"] == "test"
    assert body["trace_id"] == event["id"].replace("-", "")
    assert body["start_time"].endswith("Z")
    assert body["end_time"] >= body["start_time"]
    assert body["latency_ms"] >= 0


def test_retries_429_honouring_retry_after(sdk: Any) -> None:
    sdk.script = [(429, {"Retry-After": "0.2"}), (503, {})]
    work(1)
    result = driftline.flush(10)
    assert (result.sent, result.ok) == (1, True), result
    assert len(sdk.requests) == 3
    assert len(sdk.calls()) == 1


def test_long_retry_after_spools_instead_of_blocking_the_worker(sdk: Any) -> None:
    sdk.script = [(503, {"Retry-After": "120"})]
    work(1)
    result = driftline.flush(5)
    assert (result.sent, result.failed, result.dropped) == (0, 1, {}), result
    assert len(sdk.requests) == 1
    # A flush makes one probe even before the server's time is up; the server is back.
    result = driftline.flush(5)
    assert (result.sent, result.failed) == (1, 0), result


@pytest.mark.parametrize("status", [400, 401, 413])
def test_permanent_errors_are_dropped_and_counted(sdk: Any, status: int) -> None:
    sdk.script = [(status, {})]
    work(1)
    work(2)
    result = driftline.flush(5)
    assert result.dropped == {"rejected_4xx": 2}
    assert result.sent == 0
    assert f"HTTP {status}" in (result.last_error or "")
    assert len(sdk.requests) == 1  # never retried


def test_per_event_errors_in_207_are_dropped_not_retried(sdk: Any) -> None:
    work(1)
    driftline.flush(5)
    sdk.reject_ids.add("will-be-set")
    client = driftline._client.state.client
    assert client is not None
    # Reject the next call event by id: peek at the id through current_call_id.
    ids: list[str] = []

    @driftline.observe
    def remember() -> None:
        call_id = driftline.current_call_id()
        assert call_id is not None
        ids.append(call_id)
        sdk.reject_ids.add(call_id)

    remember()
    work(3)
    result = driftline.flush(5)
    assert result.sent == 2
    assert result.dropped == {"rejected_event": 1}
    assert ids[0] in (result.last_error or "")
    assert len(sdk.requests) == 2


def test_storm_of_429_goes_to_spool_then_replays(sdk: Any) -> None:
    driftline.init(
        api_key="k",
        host=sdk.url,
        spool_dir=driftline._client.state.client.cfg.spool_dir,  # type: ignore[union-attr]
        max_retries=2,
        flush_interval=0.05,
    )
    sdk.script = [(429, {"Retry-After": "0.05"})] * 50
    for i in range(20):
        work(i)
    result = driftline.flush(3)
    assert result.sent + result.failed == 20, result
    assert result.dropped == {}
    storm_requests = len(sdk.requests)
    assert storm_requests <= 10  # down after the retry budget: one probe per period, no hammering
    sdk.script = []
    result = driftline.flush(5)
    assert (result.sent, result.failed, result.ok) == (20, 0, True), result
    assert len(sdk.calls()) == 20


def test_queue_full_drops_are_counted_and_caller_never_blocks(ingest: Any) -> None:
    ingest.delay = 1.0  # a slow server keeps the worker busy
    driftline.init(api_key="k", host=ingest.url, spool_dir=False, max_queue_size=50, batch_size=10)
    for i in range(500):
        work(i)
    stats = driftline.stats()
    # At most 50 queued plus one batch (taken from the queue, so <= 50) in flight.
    assert stats.dropped.get("queue_full", 0) >= 400
    ingest.delay = 0
    result = driftline.flush(10)
    assert result.sent + result.dropped["queue_full"] == 500, result


def test_server_down_then_up_nothing_lost(sdk: Any, spool_dir: str) -> None:
    driftline.init(api_key="k", host=sdk.url, spool_dir=spool_dir, max_retries=1)
    sdk.stop()
    for i in range(30):
        work(i)
    down = driftline.flush(3)
    assert (down.failed, down.sent, down.dropped) == (30, 0, {}), down
    for i in range(30, 40):
        work(i)  # while down: straight to disk, no network wait
    assert driftline.flush(3).failed == 40
    sdk.restart()
    up = driftline.flush(5)
    assert (up.sent, up.failed, up.ok) == (40, 0, True), up
    assert sorted(json.loads(e["body"]["prompt"])["i"] for e in sdk.calls()) == list(range(40))


def test_spool_survives_the_process_and_is_replayed_by_the_next(
    ingest: Any, free_port: int, spool_dir: str
) -> None:
    driftline.init(api_key="k", host=f"http://127.0.0.1:{free_port}", spool_dir=spool_dir)
    for i in range(5):
        work(i)
    result = driftline.shutdown(1.0)
    assert result.failed == 5
    assert result.dropped == {}
    assert any(name.endswith(".jsonl.gz") for name in os.listdir(spool_dir))
    # A new process (here: a new client) with the same spool sends them.
    driftline.init(api_key="k", host=ingest.url, spool_dir=spool_dir)
    assert driftline.flush(5).sent == 5
    assert len(ingest.calls()) == 5


def test_spool_is_size_capped_oldest_dropped_and_counted(free_port: int, spool_dir: str) -> None:
    driftline.init(
        api_key="k",
        host=f"http://127.0.0.1:{free_port}",
        spool_dir=spool_dir,
        spool_max_bytes=3000,
        batch_size=5,
        max_retries=0,
    )

    @driftline.observe
    def noisy(text: str) -> str:
        return text

    for i in range(60):
        noisy(os.urandom(64).hex() + str(i))  # incompressible
        if i % 5 == 4:
            driftline.flush(1)
    result = driftline.flush(1)
    assert result.dropped.get("spool_full", 0) > 0
    assert result.failed + result.dropped["spool_full"] == 60, result
    total = sum(os.path.getsize(os.path.join(spool_dir, n)) for n in os.listdir(spool_dir))
    assert total <= 3000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_sends_its_own_events(sdk: Any) -> None:
    work(1)
    driftline.flush(5)
    work(2)  # queued in the parent at fork time: the child must not send it
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            for i in range(100, 103):
                work(i)
            result = driftline.flush(5)
            code = 0 if result.sent == 3 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    driftline.flush(5)
    inputs = sorted(json.loads(e["body"]["prompt"])["i"] for e in sdk.calls())
    assert inputs == [1, 2, 100, 101, 102]


def test_disabled_and_uninitialised_are_no_ops(ingest: Any) -> None:
    driftline.shutdown(1)
    assert work(4) == 8
    assert driftline.current_call_id() is None
    assert driftline.feedback("x", score=1) is None
    assert driftline.flush(1).sent == 0
    assert driftline.init(api_key="k", host=ingest.url, enabled=False) is False
    assert work(5) == 10
    assert driftline._client.state.client is None


def test_env_configuration(ingest: Any, monkeypatch: pytest.MonkeyPatch, spool_dir: str) -> None:
    monkeypatch.setenv("DRIFTLINE_API_KEY", "envkey")
    monkeypatch.setenv("DRIFTLINE_HOST", ingest.url)
    monkeypatch.setenv("DRIFTLINE_RELEASE", "r9")
    monkeypatch.setenv("DRIFTLINE_ENVIRONMENT", "staging")
    monkeypatch.setenv("DRIFTLINE_SAMPLE_RATE", "1.0")
    monkeypatch.setenv("DRIFTLINE_SPOOL_DIR", spool_dir)
    assert driftline.init() is True
    work(1)
    assert driftline.flush(5).sent == 1
    assert ingest.requests[0]["auth"] == "Bearer envkey"
    body = ingest.calls()[0]["body"]
    assert (body["release"], body["environment"]) == ("r9", "staging")
    monkeypatch.setenv("DRIFTLINE_ENABLED", "false")
    assert driftline.init() is False


def test_shutdown_spools_what_is_left_and_later_events_are_counted(
    ingest: Any, spool_dir: str
) -> None:
    ingest.delay = 2.0
    driftline.init(api_key="k", host=ingest.url, spool_dir=spool_dir)
    for i in range(3):
        work(i)
    result = driftline.shutdown(0.3)
    assert (result.failed, result.dropped) == (3, {}), result  # in flight: kept on disk too


def test_internal_errors_never_reach_the_caller(sdk: Any) -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    @driftline.observe
    def takes(obj: Any) -> str:
        return "fine"

    assert takes(Unprintable()) == "fine"
    result = driftline.flush(5)
    assert result.dropped == {"encode_error": 1}


def test_retry_after_parsing_and_backoff() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-1") == 0.0
    assert parse_retry_after("nonsense") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("100000") == 300.0
    delays = [backoff(n) for n in range(1, 12)]
    assert all(0 < d <= 30.05 for d in delays)


def test_caller_thread_never_touches_the_network(free_port: int, spool_dir: str) -> None:
    """Enqueue from many threads while the server is down: nothing raises, all counted."""
    driftline.init(
        api_key="k", host=f"http://127.0.0.1:{free_port}", spool_dir=spool_dir, max_retries=1
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for i in range(200):
                work(i)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = driftline.flush(5)
    assert (result.failed + result.sent, result.dropped) == (800, {}), result


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX only")


def test_events_are_flushed_at_interpreter_exit(ingest: Any, spool_dir: str) -> None:
    """No flush or shutdown in the program: the atexit hook sends what is queued."""
    program = textwrap.dedent(
        f"""
        import driftline
        driftline.init(api_key="k", host={ingest.url!r}, spool_dir={spool_dir!r},
                       flush_interval=60)

        @driftline.observe
        def last_words(i):
            return i

        for i in range(7):
            last_words(i)
        """
    )
    done = subprocess.run(  # noqa: S603 - our own program text, run by this interpreter
        [sys.executable, "-c", program], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(ingest.calls()) == 7


def test_spool_refuses_a_folder_that_is_not_ours(tmp_path: Any) -> None:
    from driftline._spool import Spool

    real = tmp_path / "elsewhere"
    real.mkdir()
    link = tmp_path / "driftline-spool-x"
    link.symlink_to(real)
    spool = Spool(str(link / "abc"), 10**6)
    assert spool.write([b'{"a":1}']) == (False, 0, "spool_error")
    assert not (real / "abc").exists() or not any((real / "abc").iterdir())
