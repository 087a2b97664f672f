"""Reads for the calls explorer (filters, ranges, sorted keyset pages) and the call page (a
trace as a tree, a call's signal badges, neighbours de-duplicated)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from django.db.models import F, Q, QuerySet

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.dashboard.models import SavedView
from apps.traces.metrics import time_window
from apps.traces.models import LLM_KINDS, SIGNAL_CUTOFF, Call, EmbedStatus, is_llm
from apps.traces.selectors import CallFilters, call_queryset


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


def call_no_embedding_note(call: Call) -> str:
    """Why a call has no vector, from its ``embed_status``: a span is never embedded, so
    "the worker may be behind" would have a new user wait for nothing."""
    if call.embed_status == EmbedStatus.NOT_APPLICABLE:
        if not is_llm(call.kind):
            return (
                f"Only LLM calls are embedded; this one is a {call.kind}. Record the model call "
                'with a wrapped client, or use @driftline.observe(kind="llm") on a function '
                "that calls the model itself."
            )
        return "This call has no prompt to embed."
    if call.embed_status == EmbedStatus.SKIPPED:
        return (
            "This call was sampled out by the embedding budget "
            "(DRIFTLINE_EMBEDDING_BUDGET_PER_HOUR); feedback on it gets it embedded."
        )
    return "This call has no embedding yet: the embed worker may be behind."


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


# --- The calls explorer: filters, ranges, sorting, keyset pages --------------------------------

# Sort keys of the explorer -> the column behind them. The nullable ones (a span without
# usage, a call without a price) sort last in both directions.
SORTS: dict[str, str] = {
    "time": "start_time",
    "latency": "latency_ms",
    "cost": "cost_usd",
    "tokens": "total_tokens",
}
DEFAULT_SORT = "-time"
# Range filters: query-parameter stem -> column (``latency_min`` / ``latency_max`` ...).
RANGES: dict[str, str] = {"latency": "latency_ms", "cost": "cost_usd", "tokens": "total_tokens"}


@dataclass(frozen=True)
class CallQuery:
    """What the explorer lists: the shared call filters, value ranges and one sort.

    ``ranges`` maps a column of :data:`RANGES` to an inclusive ``(low, high)`` (either may be
    None). ``sort`` is a key of :data:`SORTS`, ``-`` in front for descending.
    """

    filters: CallFilters
    ranges: dict[str, tuple[float | None, float | None]]
    sort: str = DEFAULT_SORT
    kinds: tuple[str, ...] = ()

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def call_query_from_params(data: Mapping[str, Any]) -> CallQuery:
    """The one place where the explorer's cleaned query parameters become filters (the calls
    page, saved views and chart/KPI links all go through it). A new filter is a form field and
    a line here (plus a clause in :func:`explorer_queryset` if ``CallFilters`` lacks it)."""
    window = time_window(data["range"]) if data.get("range") else None
    filters = CallFilters(
        start=data.get("start") or (window.start if window else None),
        end=data.get("end") or None,
        model=data.get("model") or None,
        release=data.get("release") or None,
        environment=data.get("environment") or None,
        status=data.get("status") or None,
        tag=data.get("tag") or None,
        trace_id=data.get("trace") or None,
        search=data.get("q") or None,
        flagged={"1": True, "0": False}.get(data.get("flagged") or ""),
    )
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for stem, column in RANGES.items():
        low, high = _number(data.get(f"{stem}_min")), _number(data.get(f"{stem}_max"))
        if low is not None or high is not None:
            ranges[column] = (low, high)
    sort = data.get("sort") or DEFAULT_SORT
    if sort.lstrip("-") not in SORTS:
        sort = DEFAULT_SORT
    kind = data.get("kind") or ""
    kinds = LLM_KINDS if kind == "metrics" else ((kind,) if kind else ())
    return CallQuery(filters=filters, ranges=ranges, sort=sort, kinds=kinds)


def _number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def explorer_queryset(*, project: Project, query: CallQuery) -> QuerySet[Call]:
    qs = call_queryset(project=project, filters=query.filters)
    if query.kinds:
        qs = qs.filter(kind__in=query.kinds)
    for column, (low, high) in query.ranges.items():
        if low is not None:
            qs = qs.filter(**{f"{column}__gte": low})
        if high is not None:
            qs = qs.filter(**{f"{column}__lte": high})
    return qs


def _cursor_encode(sort: str, value: Any, call_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, str(call_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str, *, sort: str) -> tuple[Any, uuid.UUID]:
    """A cursor is only valid for the sort it was made for; anything else is a 400 naming it."""
    try:
        if len(cursor) > 300:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, value, call_id = json.loads(base64.urlsafe_b64decode(padded))
        if made_for != sort:
            raise ValueError("another sort")
        if SORTS[sort.lstrip("-")] == "start_time":
            value = datetime.fromisoformat(value)
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError("not a number")
        return value, uuid.UUID(call_id)
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ApplicationError(
            "cursor: invalid, start from the first page", field="cursor"
        ) from exc


def explorer_page(
    *, project: Project, query: CallQuery, limit: int = 50, cursor: str | None = None
) -> tuple[list[Call], str | None]:
    """One page of the explorer, keyset-paginated on (sort column, id): stable when many calls
    share a value (the id breaks ties, in the sort's direction) and O(limit) at any depth.
    NULLs come after every value in both directions, so a page boundary inside them holds."""
    column = SORTS[query.sort_key]
    desc = query.descending
    qs = explorer_queryset(project=project, query=query)
    if cursor:
        value, call_id = _cursor_decode(cursor, sort=query.sort)
        after = "lt" if desc else "gt"
        if value is None:
            qs = qs.filter(Q(**{f"{column}__isnull": True}) & Q(**{f"id__{after}": call_id}))
        else:
            qs = qs.filter(
                Q(**{f"{column}__{after}": value})
                | Q(**{column: value, f"id__{after}": call_id})
                | Q(**{f"{column}__isnull": True})
            )
    field = F(column).desc(nulls_last=True) if desc else F(column).asc(nulls_last=True)
    rows = list(qs.order_by(field, "-id" if desc else "id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _cursor_encode(query.sort, getattr(last, column), last.id)
    return rows[:limit], next_cursor


def saved_views_for(*, project: Project, user: Any) -> list[SavedView]:
    """The person's saved views in this project, by name."""
    return list(SavedView.objects.filter(project=project, user=user).order_by("name"))
