"""A fake LLM provider on localhost: OpenAI Chat Completions and Responses, Anthropic Messages,
JSON and SSE streaming, so the real ``openai``/``anthropic`` packages can be pointed at it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 3,
    "total_tokens": 13,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 1},
}
RESP_USAGE = {
    "input_tokens": 7,
    "output_tokens": 4,
    "total_tokens": 11,
    "input_tokens_details": {"cached_tokens": 2},
    "output_tokens_details": {"reasoning_tokens": 1},
}
ANTHROPIC_USAGE = {
    "input_tokens": 12,
    "output_tokens": 5,
    "cache_read_input_tokens": 3,
    "cache_creation_input_tokens": 0,
}
WORDS = ["Hello", " from", " the", " fake"]


def _chat_chunk(delta: dict[str, Any], finish: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _response(text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-fake",
        "status": status,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
        if text
        else [],
        "usage": RESP_USAGE if status == "completed" else None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def _message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake",
        "content": [{"type": "text", "text": text}] if text else [],
        "stop_reason": "end_turn" if text else None,
        "stop_sequence": None,
        "usage": ANTHROPIC_USAGE,
    }


class FakeProvider:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                fake.requests.append({"path": self.path, "body": body})
                if body.get("model") == "error-model":
                    self._json(400, {"error": {"message": "bad model", "type": "invalid"}})
                    return
                if self.path.endswith("/chat/completions"):
                    self._chat(body)
                elif self.path.endswith("/responses"):
                    self._responses(body)
                elif self.path.endswith("/messages"):
                    self._messages(body)
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str | None, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for name, data in events:
                    text = data if isinstance(data, str) else json.dumps(data)
                    prefix = f"event: {name}\n" if name else ""
                    self.wfile.write(f"{prefix}data: {text}\n\n".encode())
                    self.wfile.flush()
                self.close_connection = True

            def _chat(self, body: dict[str, Any]) -> None:
                if body.get("tools") and not body.get("stream"):
                    call = {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                    message = {"role": "assistant", "content": None, "tool_calls": [call]}
                    self._json(200, {
                        "id": "chatcmpl-2", "object": "chat.completion", "created": 1,
                        "model": "gpt-fake", "usage": CHAT_USAGE,
                        "choices": [{"index": 0, "message": message,
                                     "finish_reason": "tool_calls"}],
                    })  # fmt: skip
                    return
                if not body.get("stream"):
                    self._json(
                        200,
                        {
                            "id": "chatcmpl-1",
                            "object": "chat.completion",
                            "created": 1,
                            "model": "gpt-fake",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": "".join(WORDS)},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": CHAT_USAGE,
                        },
                    )
                    return
                events: list[tuple[str | None, Any]] = [
                    (None, _chat_chunk({"role": "assistant", "content": ""}))
                ]
                events += [(None, _chat_chunk({"content": w})) for w in WORDS]
                events.append((None, _chat_chunk({}, "stop")))
                if (body.get("stream_options") or {}).get("include_usage"):
                    final = _chat_chunk({})
                    final["choices"] = []
                    final["usage"] = CHAT_USAGE
                    events.append((None, final))
                events.append((None, "[DONE]"))
                self._sse(events)

            def _responses(self, body: dict[str, Any]) -> None:
                if not body.get("stream"):
                    self._json(200, _response("Hi from responses"))
                    return
                seq = iter(range(100))
                events: list[tuple[str | None, Any]] = [
                    (
                        "response.created",
                        {
                            "type": "response.created",
                            "sequence_number": next(seq),
                            "response": _response("", "in_progress"),
                        },
                    )
                ]
                for word in ["Hi", " from", " responses"]:
                    events.append(
                        (
                            "response.output_text.delta",
                            {
                                "type": "response.output_text.delta",
                                "item_id": "msg_1",
                                "output_index": 0,
                                "content_index": 0,
                                "delta": word,
                                "logprobs": [],
                                "sequence_number": next(seq),
                            },
                        )
                    )
                events.append(
                    (
                        "response.completed",
                        {
                            "type": "response.completed",
                            "sequence_number": next(seq),
                            "response": _response("Hi from responses"),
                        },
                    )
                )
                self._sse(events)

            def _messages(self, body: dict[str, Any]) -> None:
                if body.get("tools") and not body.get("stream"):
                    reply = _message("Let me look.")
                    reply["content"].append(
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                         "input": {"city": "Paris"}}
                    )  # fmt: skip
                    reply["stop_reason"] = "tool_use"
                    self._json(200, reply)
                    return
                if not body.get("stream"):
                    self._json(200, _message("Bonjour le monde"))
                    return
                start = _message("")
                start["usage"] = {**ANTHROPIC_USAGE, "output_tokens": 1}
                events: list[tuple[str | None, Any]] = [
                    ("message_start", {"type": "message_start", "message": start}),
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": 0,
                            "content_block": {"type": "text", "text": ""},
                        },
                    ),
                ]
                for word in ["Bonjour", " le", " monde"]:
                    events.append(
                        (
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": 0,
                                "delta": {"type": "text_delta", "text": word},
                            },
                        )
                    )
                events += [
                    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    (
                        "message_delta",
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": 5},
                        },
                    ),
                    ("message_stop", {"type": "message_stop"}),
                ]
                self._sse(events)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
