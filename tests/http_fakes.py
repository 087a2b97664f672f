"""A scripted local HTTP server: the outside world (Slack, webhooks, LLM providers) for tests.

Answers come from a script consumed one per request; when it runs out, ``default`` is answered.
An answer is an :class:`Answer` or a ``(status, body, headers)`` tuple; a dict or list body is
sent as JSON. Every request is recorded (method, path, headers, body).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict or list -> JSON; str -> as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


AnswerLike = Answer | tuple[int, Any, dict[str, str]]


def as_answer(answer: AnswerLike) -> Answer:
    return answer if isinstance(answer, Answer) else Answer(*answer)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeServer:
    host: str
    port: int
    script: list[AnswerLike] = field(default_factory=list)
    default: AnswerLike = (200, "ok", {})
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/services/T000/B000/XXXX") -> str:
        return f"{self.base_url}{path}"

    def answer(self, *answers: AnswerLike) -> None:
        with self.lock:
            self.script.extend(answers)

    def next_answer(self) -> Answer:
        with self.lock:
            return as_answer(self.script.pop(0) if self.script else self.default)


def _encode(body: Any) -> tuple[bytes, str | None]:
    if body is None:
        return b"", None
    if isinstance(body, str):
        return body.encode(), None
    return json.dumps(body).encode(), "application/json"


@contextmanager
def fake_server(default: AnswerLike = (200, "ok", {})) -> Iterator[FakeServer]:
    state: dict[str, FakeServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            server = state["server"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server.lock:
                server.requests.append(
                    Recorded(self.command, self.path, dict(self.headers.items()), body)
                )
            answer = server.next_answer()
            if answer.delay_s:
                time.sleep(answer.delay_s)
            payload, content_type = _encode(answer.body)
            try:
                self.send_response(answer.status)
                if content_type and "Content-Type" not in answer.headers:
                    self.send_header("Content-Type", content_type)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server = FakeServer("127.0.0.1", httpd.server_address[1], default=default)
    state["server"] = server
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
