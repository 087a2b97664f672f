"""Driftline client SDK: record LLM calls and feedback, send them in the background.

Quickstart::

    import driftline
    driftline.init(api_key="dl_...", host="https://driftline.example.com")

    @driftline.observe
    def answer(question: str) -> str: ...

See README.md for the options, wrappers, sampling, redaction and the delivery guarantees.
"""

from __future__ import annotations

from ._client import (
    current_call_id,
    current_trace_id,
    feedback,
    flush,
    init,
    last_call_id,
    shutdown,
    stats,
    update_current_call,
)
from ._observe import observe
from ._prompts import Prompt, register_prompt
from ._transport import FlushResult
from .integrations import wrap_anthropic, wrap_openai

__version__ = "0.1.0"

__all__ = [
    "FlushResult",
    "Prompt",
    "__version__",
    "current_call_id",
    "current_trace_id",
    "feedback",
    "flush",
    "init",
    "last_call_id",
    "observe",
    "register_prompt",
    "shutdown",
    "stats",
    "update_current_call",
    "wrap_anthropic",
    "wrap_openai",
]
