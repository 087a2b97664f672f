"""The transport contract: one class per integration, one ``notify()`` (Healthchecks' design).

``notify()`` returns the HTTP status of a delivered message or raises :class:`TransportError`:
``permanent`` errors are not retried, and those that are the channel's fault (a deleted Slack
channel, a revoked webhook) also carry ``disable_channel`` so the channel is switched off with a
visible reason instead of failing forever. Transient errors may carry ``retry_after`` (429).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, TypeVar


@dataclass(frozen=True)
class ExampleCall:
    call_id: str
    text: str  # untrusted (a prompt): transports escape it
    url: str


@dataclass(frozen=True)
class AlertMessage:
    """Everything a transport needs to render one notification; no ORM objects."""

    event: str  # "firing" | "escalated" | "renotify" | "resolved" | "acknowledged" | "test"
    severity: str  # "warning" | "critical" | "info"
    title: str
    rule_name: str
    project_name: str
    summary: str  # what changed
    confidence: str  # how sure we are
    figures: tuple[tuple[str, str], ...]  # ("Current", "0.31"), ("Baseline", "0.04")...
    labels: tuple[tuple[str, str], ...]  # the affected group: ("release", "v42"), ("model", ...)
    examples: tuple[ExampleCall, ...]
    url: str
    occurred_at: datetime
    delivery_id: str  # unique per notification: receivers can deduplicate on it
    incident_id: int | None = None
    rule_id: int | None = None
    extra: dict[str, object] = field(default_factory=dict)
    # The side-by-side comparison behind a regression (prompt versions), when there is one.
    compare_url: str = ""


class TransportError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        disable_channel: bool = False,
        retry_after: float | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.disable_channel = disable_channel and permanent
        self.retry_after = retry_after
        self.http_status = http_status


class Transport(ABC):
    kind: ClassVar[str]
    # The least time between two messages to one channel (a receiver's rate limit).
    min_interval_s: ClassVar[float] = 0.0

    def __init__(self, *, url: str, secret: str = "") -> None:
        self.url = url
        self.secret = secret

    @abstractmethod
    def notify(self, message: AlertMessage) -> int:
        """Deliver ``message``; the HTTP status on success, else raise TransportError."""


TRANSPORTS: dict[str, type[Transport]] = {}
T = TypeVar("T", bound=type[Transport])


def register(cls: T) -> T:
    TRANSPORTS[cls.kind] = cls
    return cls


def get_transport(kind: str) -> type[Transport]:
    try:
        return TRANSPORTS[kind]
    except KeyError:
        raise TransportError(f"unknown channel kind {kind!r}", permanent=True) from None
