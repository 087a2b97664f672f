"""Fixtures: a fake ingest server and a fake LLM provider, both real HTTP servers on localhost."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import driftline
import pytest


class FakeIngest:
    """Speaks ``POST /api/v1/ingest``. ``script`` holds answers to give first, in order:
    ``(status, headers)``; afterwards every request is answered 207 with per-event results."""

    def __init__(self, port: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.reject_ids: set[str] = set()
        # A batch holding one of these ids fails whole with a 500 (a server bug on some input:
        # its transaction rolls back); ``fail_all`` answers 500 to everything (database down).
        self.poison_names: set[str] = set()
        self.fail_all = False
        self.delay = 0.0
        self.lock = threading.Lock()
        self._server = self._make(port)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def _make(self, port: int) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if fake.delay:
                    time.sleep(fake.delay)
                gzipped = self.headers.get("Content-Encoding") == "gzip"
                body = gzip.decompress(raw) if gzipped else raw
                batch = json.loads(body)["batch"]
                with fake.lock:
                    fake.requests.append(
                        {
                            "path": self.path,
                            "auth": self.headers.get("Authorization"),
                            "gzip": gzipped,
                            "count": len(batch),
                            "bytes": len(raw),
                        }
                    )
                    scripted = fake.script.pop(0) if fake.script else None
                if scripted is not None:
                    status, headers = scripted
                    self._answer(status, {"detail": "scripted"}, headers)
                    return
                if fake.fail_all or any(
                    e.get("body", {}).get("name") in fake.poison_names for e in batch
                ):
                    self._answer(500, {"error": "server error"}, {})
                    return
                results = []
                with fake.lock:
                    seen = {e["id"] for e in fake.events}
                    for event in batch:
                        if event["id"] in fake.reject_ids:
                            results.append(
                                {"id": event["id"], "status": "error", "error": "body.kind: bad"}
                            )
                        elif event["id"] in seen:
                            results.append({"id": event["id"], "status": "duplicate"})
                        else:
                            fake.events.append(event)
                            seen.add(event["id"])
                            results.append({"id": event["id"], "status": "accepted"})
                self._answer(207, {"results": results}, {})

            def _answer(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        return server

    def calls(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["type"] == "call"]

    def feedbacks(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["type"] == "feedback"]

    def by_name(self, name: str) -> dict[str, Any]:
        matches = [e for e in self.calls() if e["body"]["name"] == name]
        assert len(matches) == 1, [e["body"]["name"] for e in self.calls()]
        return matches[0]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def restart(self) -> None:
        self._server = self._make(self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()


@pytest.fixture
def ingest() -> Iterator[FakeIngest]:
    server = FakeIngest()
    yield server
    server.stop()


@pytest.fixture
def spool_dir(tmp_path: Any) -> str:
    return str(tmp_path / "spool")


@pytest.fixture
def sdk(ingest: FakeIngest, spool_dir: str) -> Iterator[FakeIngest]:
    """driftline initialised against the fake ingest server; shut down afterwards."""
    driftline.init(
        api_key="dl_test_key",
        host=ingest.url,
        release="1.2.3",
        environment="test",
        spool_dir=spool_dir,
        flush_interval=0.05,
    )
    yield ingest
    driftline.shutdown(2.0)


@pytest.fixture(autouse=True)
def _no_leftover_client() -> Iterator[None]:
    yield
    driftline.shutdown(0.5)


@pytest.fixture
def free_port() -> int:
    """A local port with nothing listening (bound then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port
