"""The writes of OTLP logs: GenAI content events kept for their call, merged whichever of span
and events arrives first.

- Events first: they are stored pending (``OtlpLogEvent.applied_at`` null). When the span's
  export arrives, ``otlp_pending_merge_into_events`` folds their content into the span's event
  body *before* it is stored, so the call's follow-up (signals, embedding) sees the content.
- Span first: ``otlp_log_events_store`` merges the events into the stored call at once and
  runs the call's follow-up again (``processed_at`` reset: cost, signals, embedding and the
  rollup minute recomputed, all of them idempotent).

A call's content is always rebuilt from *all* its events in order, under a per-call advisory
lock, so concurrent exports and redeliveries converge on the same content.

Events on the span *around* the model call: some SDKs emit a model call's events in the context
of the span that encloses it (OpenLLMetry with ``use_attributes=False``: every Anthropic event, a
streamed OpenAI call's ``gen_ai.choice``), so they name a call that is not an LLM call. Such an
event belongs to the one LLM child of that call whose time window holds it (``_owner``); it is
moved (re-keyed) to the child in every path: ``otlp_calls_merge`` (span first, the late merge
and the sweep) and ``otlp_pending_merge_into_events`` (events first). With no such child, or
several, it stays where it was sent. An event of an LLM call is never moved.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.ingest.models import OtlpLogEvent
from apps.ingest.otlp.logs import LogContentEvent, content_from_events
from apps.traces.models import LLM_KINDS, Call, CallId

# Events are kept this long (a call's later events rebuild its content from all of them;
# exporters send a call's spans and events within seconds), then dropped by the sweep.
LOG_EVENT_RETENTION = timedelta(days=1)
# Pending events older than this whose call is stored are merged by the sweep: it closes the
# window where a span and its events are stored concurrently and neither sees the other.
LOG_EVENT_SWEEP_GRACE = timedelta(minutes=1)

# pg_advisory_xact_lock(class, key): one content merge per call at a time.
_LOCK_CLASS = 0x4F544C47  # "OTLG"
_MERGED_FIELDS = ("messages", "prompt", "response")
# An event on the span around a model call is the child's when it lies in the child's window
# give or take this: streamed calls may stamp their events at stream end, past the span's end.
CHILD_WINDOW_SLACK = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _content_of(rows: Iterable[OtlpLogEvent]) -> dict[str, Any]:
    ordered = sorted(rows, key=lambda r: (r.time_unix_nano, r.received_at, r.seq))
    return content_from_events([(r.name, r.payload) for r in ordered])


def _events_by_call(
    project: Project, call_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[OtlpLogEvent]]:
    out: dict[uuid.UUID, list[OtlpLogEvent]] = {}
    for row in OtlpLogEvent.objects.filter(project=project, call_id__in=list(call_ids)):
        out.setdefault(row.call_id, []).append(row)
    return out


def _lock(call_ids: Iterable[uuid.UUID]) -> None:
    with connection.cursor() as cursor:
        for call_id in sorted(call_ids, key=str):  # in a fixed order: no deadlock between merges
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_CLASS, str(call_id)]
            )


@dataclass(frozen=True)
class _Child:
    """An LLM call under a non-LLM call, and its time window (unix ns, slack included)."""

    call_id: uuid.UUID
    start_time: datetime
    low_ns: int
    high_ns: int

    @classmethod
    def of(cls, call_id: uuid.UUID, start: datetime, end: datetime | None) -> _Child:
        slack = CHILD_WINDOW_SLACK // timedelta(microseconds=1)
        low = (start - _EPOCH) // timedelta(microseconds=1) - slack
        high = ((end or start) - _EPOCH) // timedelta(microseconds=1) + slack
        return cls(call_id=call_id, start_time=start, low_ns=low * 1000, high_ns=high * 1000)


def _owner(children: Sequence[_Child], at: int) -> uuid.UUID | None:
    """The one child whose window holds an event at ``at``; None when none or several do."""
    if at <= 0:  # a record with no time at all
        return None
    found = {c.call_id for c in children if c.low_ns <= at <= c.high_ns}
    return found.pop() if len(found) == 1 else None


def _stored_llm_children(
    project: Project, parents: Mapping[uuid.UUID, str]
) -> dict[uuid.UUID, list[_Child]]:
    """The stored LLM calls whose parent is one of ``parents`` (call id -> its trace id), by
    parent; the (project, trace_id) index finds them."""
    out: dict[uuid.UUID, list[_Child]] = {}
    if not parents:
        return out
    rows = Call.objects.filter(
        project=project,
        trace_id__in=set(parents.values()),
        parent_id__in=list(parents),
        kind__in=LLM_KINDS,
    ).values_list("id", "parent_id", "trace_id", "start_time", "end_time")
    for call_id, parent_id, trace_id, start, end in rows:
        if parent_id is not None and parents.get(parent_id) == trace_id:
            out.setdefault(parent_id, []).append(_Child.of(call_id, start, end))
    return out


def _move_to_children(
    rows_by_call: dict[uuid.UUID, list[OtlpLogEvent]],
    children: Mapping[uuid.UUID, Sequence[_Child]],
    *,
    only: Iterable[uuid.UUID] | None = None,
) -> set[uuid.UUID]:
    """Re-key the events of each parent in ``children`` that one child owns (``_owner``) to
    that child, in ``rows_by_call`` and in the table; ``only``: the children that may receive
    events (default all). Returns the children that received events.

    Runs under the advisory locks of the parents and the children, with the children's rows
    loaded: an event the child already has (a redelivery after an earlier move) is dropped
    rather than re-keyed onto the unique key."""
    allowed = None if only is None else set(only)
    moved: dict[uuid.UUID, list[uuid.UUID]] = {}
    duplicates: list[uuid.UUID] = []
    for parent_id, candidates in children.items():
        kept: list[OtlpLogEvent] = []
        for row in rows_by_call.get(parent_id, []):
            target = _owner(candidates, row.time_unix_nano)
            if target is None or (allowed is not None and target not in allowed):
                kept.append(row)
                continue
            theirs = rows_by_call.setdefault(target, [])
            if any(r.event_key == row.event_key for r in theirs):
                duplicates.append(row.id)
                continue
            row.call_id = target
            theirs.append(row)
            moved.setdefault(target, []).append(row.id)
        if kept:
            rows_by_call[parent_id] = kept
        else:
            rows_by_call.pop(parent_id, None)
    if duplicates:
        OtlpLogEvent.objects.filter(id__in=duplicates).delete()
    for target, ids in moved.items():
        OtlpLogEvent.objects.filter(id__in=ids).update(call_id=target)
    return set(moved)


def _parent_of(body: Mapping[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(body["parent_id"])) if body.get("parent_id") else None
    except ValueError:
        return None


def _time_of(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def otlp_pending_merge_into_events(
    *, project: Project, events: Sequence[dict[str, Any]]
) -> list[uuid.UUID]:
    """Fold the content of pending log events into the span events about to be stored.

    Returns the ids of the log events used (``otlp_spans_stored`` marks them applied). One
    indexed query when there are none, which is the common case, and no more when they are on
    LLM spans. Events on a non-LLM span go to its LLM child when one owns them (``_owner``): a
    child in this export gets them folded into its body; a stored child gets them from the
    late merge (left pending, not folded into the parent).
    """
    by_id = {uuid.UUID(e["id"]): e for e in events}
    pending = set(
        OtlpLogEvent.objects.filter(
            project=project, call_id__in=list(by_id), applied_at__isnull=True
        ).values_list("call_id", flat=True)
    )
    if not pending:
        return []
    bodies: dict[uuid.UUID, dict[str, Any]] = {call_id: e["body"] for call_id, e in by_id.items()}
    outer = {
        call_id: str(bodies[call_id].get("trace_id") or "")
        for call_id in pending
        if bodies[call_id].get("kind", "llm") not in LLM_KINDS
    }
    if outer:
        with transaction.atomic():
            rows_by_call = _pending_to_children(project, bodies, outer, pending)
    else:
        rows_by_call = _events_by_call(project, pending)
    used: list[uuid.UUID] = []
    for call_id, rows in rows_by_call.items():
        content = _content_of(rows)
        body = bodies[call_id]
        for name in _MERGED_FIELDS:
            if name in content:
                body[name] = content[name]
        if content.get("tool_calls"):
            body.setdefault("metadata", {})["gen_ai.output.tool_calls"] = content["tool_calls"]
        used += [r.id for r in rows]
    return used


def _pending_to_children(
    project: Project,
    bodies: Mapping[uuid.UUID, Mapping[str, Any]],
    outer: Mapping[uuid.UUID, str],
    pending: Iterable[uuid.UUID],
) -> dict[uuid.UUID, list[OtlpLogEvent]]:
    """The events to fold into the bodies of this export, by call, once the pending events of
    the non-LLM calls ``outer`` (call id -> trace id) are moved to the LLM child in this export
    that owns them. Those a stored child owns are left out (and pending): the late merge of the
    parent moves them. Runs in a transaction (the locks)."""
    children: dict[uuid.UUID, dict[uuid.UUID, _Child]] = {parent_id: {} for parent_id in outer}
    for parent_id, found in _stored_llm_children(project, outer).items():
        children[parent_id].update((child.call_id, child) for child in found)
    in_export: set[uuid.UUID] = set()
    for call_id, body in bodies.items():
        parent = _parent_of(body)
        start = _time_of(body.get("start_time"))
        if (
            parent is None
            or parent not in outer
            or call_id in children[parent]  # stored already (a re-sent export)
            or start is None
            or body.get("kind", "llm") not in LLM_KINDS
            or str(body.get("trace_id") or "") != outer[parent]
        ):
            continue
        end = _time_of(body["end_time"]) if body.get("end_time") else None
        children[parent][call_id] = _Child.of(call_id, start, end)
        in_export.add(call_id)
    by_parent = {parent_id: list(found.values()) for parent_id, found in children.items() if found}
    _lock({*outer, *in_export})
    rows_by_call = _events_by_call(project, {*pending, *in_export})
    if not by_parent:
        return rows_by_call
    _move_to_children(rows_by_call, by_parent, only=in_export)
    for parent_id, found in by_parent.items():
        if parent_id in rows_by_call:
            kept = [r for r in rows_by_call[parent_id] if _owner(found, r.time_unix_nano) is None]
            if kept:
                rows_by_call[parent_id] = kept
            else:
                del rows_by_call[parent_id]
    return rows_by_call


def otlp_spans_stored(
    *, project: Project, used_events: Sequence[uuid.UUID], call_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """After span events are stored: mark the log events folded into them applied, and merge
    into the stored calls any event that arrived while the spans were being stored."""
    if used_events:
        OtlpLogEvent.objects.filter(id__in=list(used_events), applied_at__isnull=True).update(
            applied_at=timezone.now()
        )
    if not call_ids:
        return []
    late = sorted(
        set(
            OtlpLogEvent.objects.filter(
                project=project, call_id__in=list(call_ids), applied_at__isnull=True
            ).values_list("call_id", flat=True)
        ),
        key=str,
    )
    if not late:
        return []
    with transaction.atomic():
        return otlp_calls_merge(project=project, call_ids=late)


def otlp_log_events_store(*, project: Project, events: Sequence[LogContentEvent]) -> int:
    """Keep the events (a redelivered one is refused by the unique key) and merge the content of
    every stored call they belong to. Returns the number of calls updated."""
    if not events:
        return 0
    now = timezone.now()
    rows = [
        OtlpLogEvent(
            project=project,
            call_id=uuid.UUID(e.call_id),
            event_key=e.event_key,
            name=e.name,
            time_unix_nano=e.time_unix_nano,
            seq=e.seq,
            payload=e.payload,
            received_at=now,
        )
        for e in events
    ]
    call_ids = sorted({r.call_id for r in rows}, key=str)
    with transaction.atomic():
        OtlpLogEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        updated = otlp_calls_merge(project=project, call_ids=call_ids)
    return len(updated)


def otlp_calls_merge(*, project: Project, call_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Rebuild the content of the stored calls among ``call_ids`` from all their events; their
    follow-up runs again after commit. Calls not stored yet are left pending. The events of a
    stored non-LLM call that one of its stored LLM children owns (``_owner``) are moved to that
    child first, and the child is rebuilt instead. Returns the calls updated."""
    from apps.ingest.services import enqueue_follow_up

    starts = dict(
        CallId.objects.filter(project=project, id__in=list(call_ids)).values_list(
            "id", "start_time"
        )
    )
    if not starts:
        return []
    stored = set(starts)
    # The one query more than a plain merge: which of them are not model calls.
    outer = dict(
        Call.objects.filter(
            project=project, id__in=list(stored), start_time__in=set(starts.values())
        )
        .exclude(kind__in=LLM_KINDS)
        .values_list("id", "trace_id")
    )
    children = _stored_llm_children(project, outer)
    for found in children.values():
        starts.update((child.call_id, child.start_time) for child in found)
    _lock(starts)  # the children too: their content may change
    rows_by_call = _events_by_call(project, starts)
    merged = stored | _move_to_children(rows_by_call, children)
    now = timezone.now()
    updated: list[uuid.UUID] = []
    for call_id in sorted(merged, key=str):
        if call_id not in rows_by_call:
            continue  # all its events went to its child
        content = _content_of(rows_by_call[call_id])
        fields: dict[str, Any] = {k: content[k] for k in _MERGED_FIELDS if k in content}
        if not fields:
            continue
        # start_time prunes the partitions; processed_at null makes the follow-up run again.
        Call.objects.filter(project=project, id=call_id, start_time=starts[call_id]).update(
            **fields, processed_at=None
        )
        updated.append(call_id)
    OtlpLogEvent.objects.filter(
        project=project, call_id__in=list(merged), applied_at__isnull=True
    ).update(applied_at=now)
    if updated:
        project_id = project.pk
        ids = list(updated)
        transaction.on_commit(lambda: enqueue_follow_up(project_id=project_id, call_ids=ids))
    return updated


def otlp_log_events_sweep(*, limit: int = 5000) -> int:
    """Merge stragglers (pending events whose call is stored), drop expired events. Returns
    the number of calls merged."""
    now = timezone.now()
    stale = (
        OtlpLogEvent.objects.filter(
            applied_at__isnull=True, received_at__lt=now - LOG_EVENT_SWEEP_GRACE
        )
        .values_list("project_id", "call_id")
        .distinct()[:limit]
    )
    by_project: dict[int, set[uuid.UUID]] = {}
    for project_id, call_id in stale:
        by_project.setdefault(project_id, set()).add(call_id)
    merged = 0
    for project in Project.objects.filter(pk__in=list(by_project)):
        with transaction.atomic():
            merged += len(
                otlp_calls_merge(project=project, call_ids=sorted(by_project[project.pk], key=str))
            )
    OtlpLogEvent.objects.filter(received_at__lt=now - LOG_EVENT_RETENTION).delete()
    return merged
