"""The SDK against the real ingest API (live Django server, PostgreSQL, Redis rate limiter).

Everything goes through the public SDK: ``init``, ``@observe``, ``feedback``, ``flush``. The
"server down" case points the SDK at a port where nothing listens, then opens a TCP proxy on that
port forwarding to the live server, and checks that every event spooled meanwhile arrives.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import driftline
import pytest
from driftline._spool import Spool

from apps.traces.models import Call, Feedback

pytestmark = pytest.mark.django_db(transaction=True)


class TcpProxy:
    """Listens on ``port`` and pipes every connection to ``target`` (host, port)."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def _free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@pytest.fixture
def spool(tmp_path: Any) -> str:
    return str(tmp_path / "spool")


@pytest.fixture(autouse=True)
def _sdk_shutdown() -> Iterator[None]:
    yield
    driftline.shutdown(2.0)


@driftline.observe(name="retrieve", kind="retrieval")
def retrieve(question: str) -> list[str]:
    return ["Passwords are reset under Settings > Security."]


@driftline.observe(name="answer", kind="chain")
def answer(question: str) -> str:
    docs = retrieve(question)
    driftline.update_current_call(
        user_id="end-user-1",
        session_id="sess-1",
        model="gpt-4o-mini",
        input_tokens=12,
        output_tokens=9,
        tags=["sdk-test"],
        metadata={"route": "faq"},
    )
    return docs[0]


@driftline.observe(name="explode")
def explode() -> None:
    raise TimeoutError("provider timed out")


def test_calls_and_feedback_land_in_the_database(
    live_server: Any, project: Any, ingest_key: str, spool: str
) -> None:
    driftline.init(
        api_key=ingest_key,
        host=live_server.url,
        release="2.0.0",
        environment="ci",
        spool_dir=spool,
        redact="default",
    )
    ids: list[str] = []

    @driftline.observe(name="handler")
    def handler(q: str) -> str:
        ids.append(driftline.current_call_id() or "")
        return answer(q)

    handler("How do I reset my password? mail me at jane@example.com")
    with pytest.raises(TimeoutError):
        explode()
    driftline.feedback(ids[0], score=0.0, label="wrong", comment="outdated", user_id="end-user-1")
    result = driftline.flush(15)
    assert (result.sent, result.ok) == (5, True), result

    calls = {c.name: c for c in Call.objects.filter(project=project)}
    assert set(calls) == {"handler", "answer", "retrieve", "explode"}
    root, chain, leaf = calls["handler"], calls["answer"], calls["retrieve"]
    assert str(root.id) == ids[0]
    assert chain.parent_id == root.id
    assert leaf.parent_id == chain.id
    assert root.trace_id == chain.trace_id == leaf.trace_id == root.id.hex
    assert leaf.kind == "retrieval"
    assert chain.kind == "chain"
    assert root.kind == "span"
    assert "jane@example.com" not in root.prompt
    assert "[EMAIL]" in root.prompt
    assert chain.model == "gpt-4o-mini"
    assert chain.input_tokens == 12
    assert chain.end_user_id == "end-user-1"
    assert chain.session_id == "sess-1"
    assert chain.tags == ["sdk-test"]
    assert chain.metadata == {"route": "faq"}
    assert root.release == "2.0.0"
    assert root.environment == "ci"
    assert calls["explode"].status == "error"
    assert calls["explode"].error_type == "TimeoutError"
    assert calls["explode"].error == "provider timed out"

    feedback = Feedback.objects.get(project=project)
    assert str(feedback.call_id) == ids[0]
    assert (feedback.score, feedback.label, feedback.comment) == (0.0, "wrong", "outdated")


def test_server_down_then_back_up_loses_nothing(
    live_server: Any, project: Any, ingest_key: str, spool: str
) -> None:
    port = _free_port()
    driftline.init(
        api_key=ingest_key, host=f"http://127.0.0.1:{port}", spool_dir=spool, max_retries=1
    )
    for i in range(25):
        answer(f"question {i}")  # 50 calls (answer + retrieve)
    down = driftline.flush(5)
    assert (down.sent, down.failed, down.dropped) == (0, 50, {}), down

    live = live_server.url.split("//", 1)[1]
    host, live_port = live.rsplit(":", 1)
    proxy = TcpProxy(port, (host, int(live_port)))
    try:
        for i in range(25, 30):
            answer(f"question {i}")
        up = driftline.flush(20)
    finally:
        proxy.close()
    assert (up.sent, up.failed, up.ok) == (60, 0, True), up
    prompts = set(
        Call.objects.filter(project=project, name="answer").values_list("prompt", flat=True)
    )
    assert prompts == {f"question {i}" for i in range(30)}
    assert Call.objects.filter(project=project).count() == 60


def test_replayed_events_are_stored_once(
    live_server: Any, project: Any, ingest_key: str, spool: str
) -> None:
    driftline.init(api_key=ingest_key, host=live_server.url, spool_dir=spool)
    answer("once")
    assert driftline.flush(10).sent == 2
    driftline.shutdown(2)
    # The same two events left on the spool, as after a response lost on the way back.
    stored = list(Call.objects.filter(project=project))
    lines = [
        json.dumps(
            {"type": "call", "id": str(c.id), "body": {"start_time": "2026-01-01T00:00:00Z"}}
        ).encode()
        for c in stored
    ]
    Spool(spool, 10**6).write(lines)
    driftline.init(api_key=ingest_key, host=live_server.url, spool_dir=spool)
    result = driftline.flush(10)
    assert (result.sent, result.failed, result.dropped) == (2, 0, {}), result
    assert Call.objects.filter(project=project).count() == 2


def test_wrong_key_is_dropped_and_counted(live_server: Any, project: Any, spool: str) -> None:
    driftline.init(api_key="dl_wrong_key", host=live_server.url, spool_dir=spool)
    answer("nobody hears this")
    result = driftline.flush(10)
    assert result.dropped == {"rejected_4xx": 2}, result
    assert "HTTP 401" in (result.last_error or "")
    assert Call.objects.filter(project=project).count() == 0
