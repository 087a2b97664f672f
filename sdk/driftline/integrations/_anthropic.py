"""Anthropic Messages API, sync and async, streamed or not.

Usage: ``input_tokens`` excludes cached input in Anthropic's accounting
(https://docs.anthropic.com/en/api/messages); we record input as
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` and the cache reads as
``cached_tokens``, which matches OpenAI's meaning of both fields.
"""

from __future__ import annotations

import functools
import json
from typing import Any, TypeVar

from .._client import Client, state
from .._config import logger
from ._common import (
    _MARK,
    Recorder,
    _begin,
    _finish,
    _follow_async,
    _follow_sync,
    attr,
    last_user_text,
    patch,
    plain,
    record_tool_calls,
    set_usage,
    text_of,
)

# ``messages.stream()`` returns a manager that makes the request on ``__enter__`` through this
# private attribute (anthropic/lib/streaming/_messages.py); we wrap it to follow the raw stream.
_SYNC_REQUEST = "_MessageStreamManager__api_request"
_ASYNC_REQUEST = "_AsyncMessageStreamManager__api_request"

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
        record_tool_calls(
            self.rec,
            [
                {"id": attr(b, "id"), "name": attr(b, "name"), "arguments": attr(b, "input")}
                for b in attr(result, "content") or []
                if attr(b, "type") == "tool_use"
            ],
        )
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


def _follow_manager(manager: Any, client: Client, kwargs: dict[str, Any]) -> None:
    if hasattr(manager, _SYNC_REQUEST):
        recorder, _ = _begin(client, MessagesRecorder, "anthropic.messages.stream", kwargs)
        api_request = getattr(manager, _SYNC_REQUEST)

        def request() -> Any:
            try:
                raw = api_request()
            except BaseException as exc:
                _finish(client, recorder.rec, exc)
                raise
            return _follow_sync(raw, client, recorder)

        setattr(manager, _SYNC_REQUEST, request)
    elif hasattr(manager, _ASYNC_REQUEST):
        recorder, _ = _begin(client, MessagesRecorder, "anthropic.messages.stream", kwargs)
        pending = getattr(manager, _ASYNC_REQUEST)

        async def request_async() -> Any:
            try:
                raw = await pending
            except BaseException as exc:
                _finish(client, recorder.rec, exc)
                raise
            return _follow_async(raw, client, recorder)

        setattr(manager, _ASYNC_REQUEST, request_async())


def _patch_stream_helper(messages: Any) -> None:
    original = getattr(messages, "stream", None)
    if original is None or getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def stream(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)
        client = state.client
        if client is not None:
            try:
                _follow_manager(manager, client, kwargs)
            except Exception:
                logger.exception("driftline: could not follow messages.stream()")
        return manager

    setattr(stream, _MARK, True)
    messages.stream = stream


def wrap_anthropic(client: C) -> C:
    """Record every ``messages.create`` and ``messages.stream`` of this client (sync or async).

    Returns the same object.
    """
    try:
        messages = getattr(client, "messages", None)
        if messages is not None:
            patch(messages, "create", MessagesRecorder, "anthropic.messages.create")
            _patch_stream_helper(messages)
    except Exception:
        logger.exception("driftline: could not wrap the Anthropic client; left as is")
    return client
