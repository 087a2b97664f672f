"""The scorer plug-in contract: one class, one method, one registry.

A scorer looks at one call and returns a small mapping of signals (``{"refusal": True}``).
:func:`apps.quality.signals.compute_signals` runs every registered scorer on every ingested call
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
    """What a scorer sees of one call. Text fields are never None (missing is ``""``)."""

    prompt: str
    response: str
    call: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    prompt_embedding: npt.NDArray[np.float32] | None = None


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
