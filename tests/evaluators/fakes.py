"""Local fake LLM providers (OpenAI-compatible chat completions and Anthropic messages).

The shared scripted server (:mod:`tests.http_fakes`) answers one scripted :class:`Answer` per
request. Helpers build well-formed structured answers in each provider's wire format, so tests
exercise the real parsing code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.http_fakes import Answer, FakeServer, Recorded, fake_server

FakeLLM = FakeServer
__all__ = [
    "Answer",
    "FakeLLM",
    "Recorded",
    "anthropic_answer",
    "error_answer",
    "fake_llm",
    "openai_answer",
]


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
    with fake_server(default=Answer(500, {"error": "no answer scripted"})) as server:
        yield server
