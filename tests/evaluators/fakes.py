"""Local fake LLM providers (OpenAI-compatible chat completions and Anthropic messages).

The server answers from a script of :class:`Answer` (one per request; ``default`` when the
script is empty) and records every request. Helpers build well-formed structured answers in
each provider's wire format, so tests exercise the real parsing code.
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
    body: Any = None  # dict -> JSON; str -> as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeLLM:
    host: str
    port: int
    script: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=lambda: Answer(500, {"error": "no answer scripted"}))
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def next_answer(self) -> Answer:
        with self.lock:
            return self.script.pop(0) if self.script else self.default


def openai_answer(
    verdict: dict[str, Any] | str, *, prompt_tokens: int = 120, completion_tokens: int = 30
) -> Answer:
    content = verdict if isinstance(verdict, str) else json.dumps(verdict)
    return Answer(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        },
    )


def anthropic_answer(
    verdict: dict[str, Any] | None, *, input_tokens: int = 150, output_tokens: int = 40
) -> Answer:
    content: list[dict[str, Any]] = [{"type": "text", "text": "Let me record that."}]
    if verdict is not None:
        content.append(
            {"type": "tool_use", "id": "toolu_1", "name": "record_evaluation", "input": verdict}
        )
    return Answer(
        200,
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": "tool_use",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        },
    )


def error_answer(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"error": {"message": message, "type": "error"}}, headers or {})


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    state: dict[str, FakeLLM] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            server = state["server"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server.lock:
                server.requests.append(Recorded(self.path, dict(self.headers.items()), body))
            answer = server.next_answer()
            if answer.delay_s:
                time.sleep(answer.delay_s)
            payload = (
                answer.body.encode()
                if isinstance(answer.body, str)
                else json.dumps(answer.body).encode()
            )
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server = FakeLLM("127.0.0.1", httpd.server_address[1])
    state["server"] = server
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
