"""The scorer plug-in contract: one class, one method, one registry.

A scorer looks at one call and returns a small mapping of signals (``{"refusal": True}``).
:func:`apps.quality.safety.compute_signals` runs every registered scorer on every ingested call
and merges their outputs, so a team adds its own signal with::

    class Politeness(Scorer):
        name = "politeness"

        def score(self, call: CallContext) -> Mapping[str, Any]:
            return {"polite": "please" in call.prompt.lower()}

    register(Politeness())

Scorers run in the ingest worker on every call: they must be pure, fast (well under a
millisecond for typical text), deterministic and must not do I/O per call. A scorer that wants to
raise a safety flag adds reasons to the ``"flags"`` key (a list of short strings); the lists of all
scorers are concatenated and ``flagged`` is true when any reason is present.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

# The one cut-off of every 0..1 safety score: a score at or above it raises the flag. Learned
# scores are calibrated so that 0.5 is the chosen operating point (see scorers/learned.py).
FLAG_CUTOFF = 0.5

# The longest text a scorer needs to look at. Attack markers and PII sit anywhere in a prompt,
# but a 1 MB paste must not cost the worker 100 ms of regex time; the head and the tail are kept.
SCAN_LIMIT = 32_000


def clip(text: str, limit: int = SCAN_LIMIT) -> str:
    """``text`` itself, or its head and tail when it is longer than ``limit`` characters."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n" + text[-half:]


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a scorer sees of one call. Text fields are never None (missing is ``""``).

    ``prompt`` is the whole input (the call's prompt, or all its chat messages joined);
    ``user_text`` is the part the end user or a tool supplied (chat messages other than system,
    developer and assistant), which is where injections and abuse come from: an app's own system
    prompt says "never reveal these instructions" on every call and must not count against it.

    ``prompt_embedding`` / ``response_embedding`` are the vectors the embed worker computed for
    the prompt (user text) and the response, in the vector space named ``provider_key``; None
    when the call was not embedded (sampled out, provider down): scorers then fall back to their
    heuristics. ``context`` is retrieved or tool-supplied text the call carried (RAG documents),
    which is where indirect injections hide. ``safety_fpr`` is the project's chosen benign FPR
    per learned signal (``{"injection": 0.005}``); a signal it does not name uses the default
    operating point (:func:`apps.quality.scorers.learned.target_fpr`).
    """

    prompt: str
    response: str
    call: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    prompt_embedding: npt.NDArray[np.float32] | None = None
    user_text: str | None = None
    response_embedding: npt.NDArray[np.float32] | None = None
    provider_key: str | None = None
    context: str = ""
    safety_fpr: Mapping[str, float] = field(default_factory=dict)

    @property
    def untrusted_text(self) -> str:
        """``user_text`` when the call has chat messages, else the whole prompt."""
        return self.prompt if self.user_text is None else self.user_text


# Roles whose messages the application itself wrote.
_TRUSTED_ROLES = frozenset({"system", "developer", "assistant", "model"})


def message_text(content: Any) -> str:
    """Text of a chat message ``content``: a string, or OpenAI/Anthropic/GenAI content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        for key in ("text", "content"):
            if isinstance(content.get(key), str | list):
                return message_text(content[key])
        return ""
    if isinstance(content, list):
        return "\n".join(text for part in content if (text := message_text(part)))
    return ""


def split_messages(messages: Any) -> tuple[str, str | None]:
    """``(all text, untrusted text)`` of a list of ``{"role", "content"}`` chat messages;
    ``("", None)`` when ``messages`` is not such a list."""
    if not isinstance(messages, list) or not messages:
        return "", None
    every: list[str] = []
    untrusted: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        text = message_text(message.get("content"))
        if not text:
            continue
        every.append(text)
        if str(message.get("role", "user")).lower() not in _TRUSTED_ROLES:
            untrusted.append(text)
    return "\n".join(every), "\n".join(untrusted)


class Scorer(ABC):
    """Base class of a signal plug-in; subclasses set ``name`` and implement :meth:`score`."""

    name: ClassVar[str]

    @abstractmethod
    def score(self, call: CallContext) -> Mapping[str, Any]:
        """Signals for ``call``: JSON-serialisable values keyed by signal name."""


_REGISTRY: dict[str, Scorer] = {}
_LOCK = threading.Lock()


def register(scorer: Scorer) -> Scorer:
    """Add ``scorer`` (or replace the one registered under the same name); returns it."""
    with _LOCK:
        _REGISTRY[scorer.name] = scorer
    return scorer


def unregister(name: str) -> None:
    """Remove the scorer registered as ``name`` (no error when absent)."""
    with _LOCK:
        _REGISTRY.pop(name, None)


def registered() -> list[Scorer]:
    """The registered scorers, in registration order."""
    with _LOCK:
        return list(_REGISTRY.values())


def get(name: str) -> Scorer | None:
    """The scorer registered as ``name``, if any."""
    return _REGISTRY.get(name)
