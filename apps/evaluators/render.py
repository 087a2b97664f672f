"""Judge prompt variables, filled from a call.

| variable              | value                                                              |
| --------------------- | ------------------------------------------------------------------ |
| ``{{prompt}}``        | the call's prompt (the last user message when only messages came)  |
| ``{{messages}}``      | the conversation, one ``role: content`` block per message          |
| ``{{response}}``      | the call's response                                                |
| ``{{metadata.a.b}}``  | ``metadata["a"]["b"]`` (JSON for objects and lists)                |
| ``{{context}}``       | retrieved context: ``metadata.context`` / ``.documents`` /        |
|                       | ``.retrieved_context``, else the trace's retrieval spans' outputs  |

A variable that the template uses but the call does not have is reported in ``missing``
(preview shows it; a job with a missing variable fails with that message instead of asking the
judge about an empty slot: the peers' most common silent failure).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_\-]+)*)\s*\}\}")
KNOWN = ("prompt", "messages", "response", "context")
CONTEXT_KEYS = ("context", "documents", "retrieved_context", "contexts")
MAX_VARIABLE_CHARS = 20_000


@dataclass(frozen=True)
class CallView:
    """The fields of a call that evaluators read (no ORM object crosses into scorers)."""

    prompt: str
    messages: Any
    response: str
    metadata: dict[str, Any]
    context_loader: Callable[[], str] | None = None

    def context(self) -> str:
        for key in CONTEXT_KEYS:
            value = self.metadata.get(key) if isinstance(self.metadata, dict) else None
            text = _as_text(value)
            if text:
                return text
        return self.context_loader() if self.context_loader is not None else ""

    def prompt_text(self) -> str:
        if self.prompt:
            return self.prompt
        if isinstance(self.messages, list):
            for message in reversed(self.messages):
                if isinstance(message, dict) and message.get("role") == "user":
                    return _as_text(message.get("content"))
        return ""


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]


def template_variables(template: str) -> list[str]:
    return [m.group(1) for m in VARIABLE.finditer(template)]


def check_template(template: str) -> str | None:
    """Why ``template`` cannot be rendered (an unknown variable), or None."""
    for name in template_variables(template):
        if name not in KNOWN and not name.startswith("metadata."):
            return (
                f"unknown variable {{{{{name}}}}} "
                "(use prompt, messages, response, context, metadata.<path>)"
            )
    return None


def render(template: str, call: CallView) -> Rendered:
    missing: list[str] = []
    cache: dict[str, str] = {}

    def value_of(name: str) -> str:
        if name in cache:
            return cache[name]
        if name == "prompt":
            text = call.prompt_text()
        elif name == "response":
            text = call.response
        elif name == "messages":
            text = messages_text(call.messages) or call.prompt_text()
        elif name == "context":
            text = call.context()
        elif name.startswith("metadata."):
            text = _as_text(_lookup(call.metadata, name.split(".")[1:]))
        else:
            text = ""
        text = text[:MAX_VARIABLE_CHARS]
        if not text.strip() and name not in missing:
            missing.append(name)
        cache[name] = text
        return text

    out = VARIABLE.sub(lambda m: value_of(m.group(1)), template)
    return Rendered(out, tuple(missing))


def messages_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    lines = []
    for message in messages:
        if isinstance(message, dict):
            role = str(message.get("role") or "message")
            lines.append(f"{role}: {_as_text(message.get('content'))}")
    return "\n\n".join(lines)


def _lookup(value: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value)
    if isinstance(value, list):
        # OpenAI-style content parts: [{"type": "text", "text": ...}]
        parts = [
            p.get("text") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
        if parts:
            return "\n".join(str(p) for p in parts)
    return json.dumps(value, ensure_ascii=False, default=str)
