"""A batch the server fails on (HTTP 500 twice) is halved down to the event that breaks it;
that one is dropped and counted, the rest delivered. An outage answering 500 to everything loses
nothing. Against a real local HTTP server."""

from __future__ import annotations

import time
from typing import Any

import driftline
from driftline import _transport


@driftline.observe
def work(i: int) -> int:
    return i * 2


def _ids(ingest: Any) -> list[str]:
    return [e["id"] for e in ingest.calls()]


@driftline.observe
def breaks_the_server() -> int:
    return 0


def test_one_event_breaking_the_server_is_dropped_and_its_neighbours_delivered(
    ingest: Any, spool_dir: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(_transport, "backoff", lambda attempt: 0.01)
    driftline.init(
        api_key="k", host=ingest.url, spool_dir=spool_dir, batch_size=100, flush_interval=30
    )
    ingest.poison_names = {"breaks_the_server"}
    for i in range(10):
        work(i)
        if i == 6:
            breaks_the_server()
    result = driftline.flush(10)
    assert result.sent == 10, result
    assert result.dropped == {"rejected_event": 1}, result
    assert result.failed == 0
    assert "500" in (result.last_error or "")
    names = [e["body"]["name"] for e in ingest.calls()]
    assert len(names) == 10
    assert "breaks_the_server" not in names
    # 2 x 500 for the 11, then two per halving on the bad event's side: ~2 log2(11) + a few.
    assert len(ingest.requests) <= 16, len(ingest.requests)


def test_a_bad_event_on_the_spool_does_not_block_its_replay(
    ingest: Any, spool_dir: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(_transport, "backoff", lambda attempt: 0.01)
    driftline.init(
        api_key="k", host=ingest.url, spool_dir=spool_dir, batch_size=100, flush_interval=30
    )
    ingest.poison_names = {"breaks_the_server"}
    ingest.stop()  # down: everything goes to the spool
    for i in range(20):
        work(i)
    breaks_the_server()
    assert driftline.flush(3).failed == 21
    ingest.restart()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        result = driftline.flush(5)
        if result.failed == 0 and result.sent == 20:
            break
        time.sleep(0.2)
    assert (result.sent, result.failed, result.dropped) == (20, 0, {"rejected_event": 1}), result


def test_an_outage_answering_500_to_everything_loses_nothing(
    ingest: Any, spool_dir: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(_transport, "backoff", lambda attempt: 0.01)
    driftline.init(
        api_key="k", host=ingest.url, spool_dir=spool_dir, batch_size=200, flush_interval=30
    )
    ingest.fail_all = True
    for i in range(200):
        work(i)
    result = driftline.flush(10)
    assert result.dropped == {}, result
    assert result.sent == 0
    assert result.failed == 200  # on the spool
    assert len(ingest.requests) <= 40, len(ingest.requests)  # ~2 per halving, not 2 per event
    ingest.fail_all = False
    deadline = time.monotonic() + 20
    while driftline.flush(5).sent < 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    result = driftline.flush(5)
    assert (result.sent, result.dropped, result.failed) == (200, {}, 0), result
    assert len(set(_ids(ingest))) == 200
