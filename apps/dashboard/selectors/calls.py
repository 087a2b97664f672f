"""Reads for the call page: a trace as a tree, a call's signal badges, neighbours de-duplicated."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from apps.traces.models import SIGNAL_CUTOFF, Call


@dataclass(frozen=True)
class TraceNode:
    call: Call
    depth: int


def trace_tree(calls: list[Call]) -> list[TraceNode]:
    """Calls of one trace in depth-first order with their nesting depth (orphans at the root)."""
    ids = {c.id for c in calls}
    children: dict[uuid.UUID | None, list[Call]] = {}
    for c in calls:
        parent = c.parent_id if c.parent_id in ids else None
        children.setdefault(parent, []).append(c)
    out: list[TraceNode] = []
    seen: set[uuid.UUID] = set()

    def walk(parent: uuid.UUID | None, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda c: c.start_time):
            if child.id in seen:  # a cycle in client-sent parent ids
                continue
            seen.add(child.id)
            out.append(TraceNode(call=child, depth=depth))
            walk(child.id, depth + 1)

    walk(None, 0)
    return out


@dataclass(frozen=True)
class Badge:
    label: str
    tone: str  # "bad" | "warn" | "info"


def call_signal_badges(call: Call) -> list[Badge]:
    """The safety/quality signals of a call as short badges (for tables and the call page)."""
    badges = []
    if call.status == "error":
        badges.append(Badge("error", "bad"))
    if call.flagged:
        badges.append(Badge("flagged", "bad"))
    if call.injection is not None and call.injection >= SIGNAL_CUTOFF:
        badges.append(Badge(f"injection {call.injection:.2f}", "bad"))
    if call.toxicity is not None and call.toxicity >= SIGNAL_CUTOFF:
        badges.append(Badge(f"toxicity {call.toxicity:.2f}", "bad"))
    if call.refusal:
        badges.append(Badge("refusal", "warn"))
    for kind in call.pii or []:
        badges.append(Badge(f"PII: {kind}", "warn"))
    return badges


# --- Neighbours --------------------------------------------------------------------------------

H = TypeVar("H", bound="_HitLike")


class _HitLike(Protocol):
    @property
    def prompt(self) -> str: ...
    @property
    def response(self) -> str: ...
    @property
    def start_time(self) -> datetime: ...


def dedupe_hits(hits: Sequence[H]) -> list[H]:
    """Nearest-neighbour hits minus repeats of one exchange: a chain span and its LLM child
    carry the same text at the same moment. The first (closest) of each is kept."""
    seen: set[tuple[str, str, datetime]] = set()
    out = []
    for hit in hits:
        key = (hit.prompt, hit.response, hit.start_time.replace(second=0, microsecond=0))
        if key in seen:
            continue
        seen.add(key)
        out.append(hit)
    return out
