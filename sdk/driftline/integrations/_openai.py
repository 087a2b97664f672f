"""OpenAI: Chat Completions and Responses, sync and async, streamed or not.

Streamed chat completions only carry usage when ``stream_options={"include_usage": True}``
(https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options); the
wrapper asks for it when the caller did not, and then hides the extra final chunk (empty
``choices``, only ``usage``) so the caller sees the stream it would have seen without us.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from .._config import logger
from ._common import (
    Recorder,
    attr,
    given,
    last_user_text,
    patch,
    plain,
    record_tool_calls,
    set_usage,
    text_of,
)

C = TypeVar("C")


class ChatRecorder(Recorder):
    provider = "openai"

    def prepare(self) -> dict[str, Any]:
        kwargs = self.kwargs
        rec = self.rec
        messages = plain(kwargs.get("messages"))
        rec.set(
            model=kwargs.get("model") if isinstance(kwargs.get("model"), str) else None,
            messages=messages if isinstance(messages, list) else None,
            prompt=last_user_text(messages),
            user_id=kwargs.get("user") if isinstance(kwargs.get("user"), str) else None,
        )
        if kwargs.get("stream") is True:
            options = kwargs.get("stream_options")
            if not given(options):
                kwargs = {**kwargs, "stream_options": {"include_usage": True}}
                self.hide_usage_chunk = True
            elif isinstance(options, dict) and "include_usage" not in options:
                kwargs = {**kwargs, "stream_options": {**options, "include_usage": True}}
                self.hide_usage_chunk = True
        return kwargs

    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        set_usage(
            self.rec,
            input_tokens=attr(usage, "prompt_tokens"),
            output_tokens=attr(usage, "completion_tokens"),
            total_tokens=attr(usage, "total_tokens"),
            cached_tokens=attr(usage, "prompt_tokens_details", "cached_tokens"),
            reasoning_tokens=attr(usage, "completion_tokens_details", "reasoning_tokens"),
        )

    def response(self, result: Any) -> None:
        model = attr(result, "model")
        if isinstance(model, str):
            self.rec.set(model=model)
        choices = attr(result, "choices")
        if choices:
            message = attr(choices[0], "message")
            content = text_of(attr(message, "content"))
            tool_calls = [
                {
                    "id": attr(c, "id"),
                    "name": attr(c, "function", "name"),
                    "arguments": attr(c, "function", "arguments"),
                }
                for c in attr(message, "tool_calls") or []
            ]
            record_tool_calls(self.rec, tool_calls)
            if content is None and tool_calls:
                content = json.dumps([{k: c[k] for k in ("name", "arguments")} for c in tool_calls])
            if content is not None:
                self.rec.set(response=content)
        self._usage(attr(result, "usage"))

    def event(self, item: Any) -> bool:
        choices = attr(item, "choices")
        usage = attr(item, "usage")
        if usage is not None:
            self._usage(usage)
        model = attr(item, "model")
        if isinstance(model, str) and model:
            self.rec.set(model=model)
        if choices:
            for choice in choices:
                if attr(choice, "index") not in (0, None):
                    continue
                delta = attr(choice, "delta", "content")
                if isinstance(delta, str) and delta:
                    self.rec.mark_first_token()
                    self.parts.append(delta)
            return True
        # The usage-only chunk we asked for: the caller did not, so they must not see it.
        return not (self.hide_usage_chunk and usage is not None)


class ResponsesRecorder(Recorder):
    provider = "openai"

    def prepare(self) -> dict[str, Any]:
        kwargs = self.kwargs
        rec = self.rec
        model = kwargs.get("model")
        data = plain(kwargs.get("input"))
        instructions = kwargs.get("instructions")
        messages: Any = None
        prompt = None
        if isinstance(data, str):
            prompt = data
            if isinstance(instructions, str):
                messages = [
                    {"role": "system", "content": instructions},
                    {"role": "user", "content": data},
                ]
        elif isinstance(data, list):
            messages = data
            if isinstance(instructions, str):
                messages = [{"role": "system", "content": instructions}, *data]
            prompt = last_user_text(data)
        rec.set(
            model=model if isinstance(model, str) else None,
            prompt=prompt,
            messages=messages,
            user_id=kwargs.get("user") if isinstance(kwargs.get("user"), str) else None,
        )
        return kwargs

    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        set_usage(
            self.rec,
            input_tokens=attr(usage, "input_tokens"),
            output_tokens=attr(usage, "output_tokens"),
            total_tokens=attr(usage, "total_tokens"),
            cached_tokens=attr(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=attr(usage, "output_tokens_details", "reasoning_tokens"),
        )

    def response(self, result: Any) -> None:
        model = attr(result, "model")
        if isinstance(model, str):
            self.rec.set(model=model)
        text = None
        try:
            text = result.output_text
        except Exception:
            text = None
        if not isinstance(text, str) or not text:
            texts = []
            for item in attr(result, "output") or []:
                for part in attr(item, "content") or []:
                    if isinstance(attr(part, "text"), str):
                        texts.append(attr(part, "text"))
            text = "".join(texts) if texts else None
        if text is not None:
            self.rec.set(response=text)
        self._usage(attr(result, "usage"))
        if attr(result, "status") == "failed":
            err = attr(result, "error", "message")
            self.rec.status = "error"
            self.rec.error = str(err or "response failed")
            self.rec.error_type = str(attr(result, "error", "code") or "ResponseFailed")

    def event(self, item: Any) -> bool:
        kind = attr(item, "type")
        if kind == "response.output_text.delta":
            delta = attr(item, "delta")
            if isinstance(delta, str) and delta:
                self.rec.mark_first_token()
                self.parts.append(delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            final = attr(item, "response")
            if final is not None:
                self.response(final)
        elif kind == "error":
            self.rec.status = "error"
            self.rec.error = str(attr(item, "message") or "stream error")
            self.rec.error_type = str(attr(item, "code") or "StreamError")
        return True


def wrap_openai(client: C) -> C:
    """Record every chat completion and response made through this OpenAI client.

    Works on ``openai.OpenAI``/``AsyncOpenAI`` (and Azure variants). Returns the same object.
    """
    try:
        chat = getattr(client, "chat", None)
        completions = getattr(chat, "completions", None)
        if completions is not None:
            patch(completions, "create", ChatRecorder, "openai.chat.completions.create")
            patch(completions, "parse", ChatRecorder, "openai.chat.completions.parse")
        responses = getattr(client, "responses", None)
        if responses is not None:
            patch(responses, "create", ResponsesRecorder, "openai.responses.create")
            patch(responses, "parse", ResponsesRecorder, "openai.responses.parse")
    except Exception:
        logger.exception("driftline: could not wrap the OpenAI client; left as is")
    return client
