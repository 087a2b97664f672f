"""Anthropic Messages API, sync and async, streamed or not.

Usage: ``input_tokens`` excludes cached input in Anthropic's accounting
(https://docs.anthropic.com/en/api/messages); we record input as
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` and the cache reads as
``cached_tokens``, which matches OpenAI's meaning of both fields.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from .._config import logger
from ._common import Recorder, attr, last_user_text, patch, plain, set_usage, text_of

C = TypeVar("C")


class MessagesRecorder(Recorder):
    provider = "anthropic"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._usage_in: dict[str, int] = {}
        self._out = 0

    def prepare(self) -> dict[str, Any]:
        kwargs = self.kwargs
        messages = plain(kwargs.get("messages"))
        system = kwargs.get("system")
        recorded: Any = messages if isinstance(messages, list) else None
        system_text = text_of(plain(system)) if system is not None else None
        if recorded is not None and system_text:
            recorded = [{"role": "system", "content": system_text}, *recorded]
        metadata = kwargs.get("metadata")
        user = attr(metadata, "user_id") if isinstance(metadata, dict) else None
        model = kwargs.get("model")
        self.rec.set(
            model=model if isinstance(model, str) else None,
            messages=recorded,
            prompt=last_user_text(messages),
            user_id=user if isinstance(user, str) else None,
        )
        return kwargs

    def _input(self, usage: Any) -> None:
        for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = attr(usage, key)
            if isinstance(value, int):
                self._usage_in[key] = value

    def _store_usage(self) -> None:
        u = self._usage_in
        total_in = (
            u.get("input_tokens", 0)
            + u.get("cache_read_input_tokens", 0)
            + u.get("cache_creation_input_tokens", 0)
        )
        set_usage(
            self.rec,
            input_tokens=total_in if u else None,
            output_tokens=self._out,
            total_tokens=total_in + self._out,
            cached_tokens=u.get("cache_read_input_tokens"),
        )

    def response(self, result: Any) -> None:
        model = attr(result, "model")
        if isinstance(model, str):
            self.rec.set(model=model)
        texts: list[str] = []
        tools: list[Any] = []
        for block in attr(result, "content") or []:
            kind = attr(block, "type")
            if kind == "text" and isinstance(attr(block, "text"), str):
                texts.append(attr(block, "text"))
            elif kind == "tool_use":
                tools.append({"name": attr(block, "name"), "input": attr(block, "input")})
        if texts:
            self.rec.set(response="".join(texts))
        elif tools:
            self.rec.set(response=json.dumps(tools, default=str))
        usage = attr(result, "usage")
        if usage is not None:
            self._input(usage)
            out = attr(usage, "output_tokens")
            self._out = out if isinstance(out, int) else 0
            self._store_usage()

    def event(self, item: Any) -> bool:
        kind = attr(item, "type")
        if kind == "content_block_delta":
            text = attr(item, "delta", "text")
            if isinstance(text, str) and text:
                self.rec.mark_first_token()
                self.parts.append(text)
        elif kind == "message_start":
            message = attr(item, "message")
            model = attr(message, "model")
            if isinstance(model, str):
                self.rec.set(model=model)
            usage = attr(message, "usage")
            if usage is not None:
                self._input(usage)
                out = attr(usage, "output_tokens")
                self._out = out if isinstance(out, int) else 0
                self._store_usage()
        elif kind == "message_delta":
            usage = attr(item, "usage")
            if usage is not None:
                self._input(usage)  # cumulative counts, present in newer API versions
                out = attr(usage, "output_tokens")
                if isinstance(out, int):
                    self._out = out
                self._store_usage()
        elif kind == "error":
            self.rec.status = "error"
            self.rec.error = str(attr(item, "error", "message") or "stream error")
            self.rec.error_type = str(attr(item, "error", "type") or "StreamError")
        return True


def wrap_anthropic(client: C) -> C:
    """Record every ``messages.create`` made through this Anthropic client (sync or async).

    Returns the same object.
    """
    try:
        messages = getattr(client, "messages", None)
        if messages is not None:
            patch(messages, "create", MessagesRecorder, "anthropic.messages.create")
    except Exception:
        logger.exception("driftline: could not wrap the Anthropic client; left as is")
    return client
