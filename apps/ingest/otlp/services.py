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
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.ingest.models import OtlpLogEvent
from apps.ingest.otlp.logs import LogContentEvent, content_from_events
from apps.traces.models import Call, CallId

# Events are kept this long (a call's later events rebuild its content from all of them;
# exporters send a call's spans and events within seconds), then dropped by the sweep.
LOG_EVENT_RETENTION = timedelta(days=1)
# Pending events older than this whose call is stored are merged by the sweep: it closes the
# window where a span and its events are stored concurrently and neither sees the other.
LOG_EVENT_SWEEP_GRACE = timedelta(minutes=1)

# pg_advisory_xact_lock(class, key): one content merge per call at a time.
_LOCK_CLASS = 0x4F544C47  # "OTLG"
_MERGED_FIELDS = ("messages", "prompt", "response")


def _content_of(rows: Iterable[OtlpLogEvent]) -> dict[str, Any]:
    ordered = sorted(rows, key=lambda r: (r.time_unix_nano, r.received_at, r.seq))
    return content_from_events([(r.name, r.payload) for r in ordered])


def _events_by_call(project: Project, call_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    out: dict[uuid.UUID, list[OtlpLogEvent]] = {}
    for row in OtlpLogEvent.objects.filter(project=project, call_id__in=list(call_ids)):
        out.setdefault(row.call_id, []).append(row)
    return out


def otlp_pending_merge_into_events(
    *, project: Project, events: Sequence[dict[str, Any]]
) -> list[uuid.UUID]:
    """Fold the content of pending log events into the span events about to be stored.

    Returns the ids of the log events used (``otlp_spans_stored`` marks them applied). One
    indexed query when there are none, which is the common case.
    """
    by_id = {uuid.UUID(e["id"]): e for e in events}
    pending = set(
        OtlpLogEvent.objects.filter(
            project=project, call_id__in=list(by_id), applied_at__isnull=True
        ).values_list("call_id", flat=True)
    )
    if not pending:
        return []
    used: list[uuid.UUID] = []
    for call_id, rows in _events_by_call(project, pending).items():
        content = _content_of(rows)
        body = by_id[call_id]["body"]
        for name in _MERGED_FIELDS:
            if name in content:
                body[name] = content[name]
        if content.get("tool_calls"):
            body.setdefault("metadata", {})["gen_ai.output.tool_calls"] = content["tool_calls"]
        used += [r.id for r in rows]
    return used


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
    follow-up runs again after commit. Calls not stored yet are left pending."""
    from apps.ingest.services import enqueue_follow_up

    starts = dict(
        CallId.objects.filter(project=project, id__in=list(call_ids)).values_list(
            "id", "start_time"
        )
    )
    if not starts:
        return []
    stored = sorted(starts, key=str)
    with connection.cursor() as cursor:
        for call_id in stored:  # in a fixed order: no deadlock between two merges
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_CLASS, str(call_id)]
            )
    now = timezone.now()
    updated: list[uuid.UUID] = []
    for call_id, rows in _events_by_call(project, stored).items():
        content = _content_of(rows)
        fields: dict[str, Any] = {k: content[k] for k in _MERGED_FIELDS if k in content}
        if not fields:
            continue
        # start_time prunes the partitions; processed_at null makes the follow-up run again.
        Call.objects.filter(project=project, id=call_id, start_time=starts[call_id]).update(
            **fields, processed_at=None
        )
        updated.append(call_id)
    OtlpLogEvent.objects.filter(
        project=project, call_id__in=stored, applied_at__isnull=True
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
