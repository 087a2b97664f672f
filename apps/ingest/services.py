"""The ingest write path: validate a batch, store valid events in one statement per table,
queue the follow-up after commit.

Nothing is half-written: each event is validated on its own (invalid ones are reported, valid
ones kept), and the rows of a batch go in through one ``INSERT ... SELECT FROM unnest(...)``
per table inside one transaction. Dedupe is the unique (project_id, id) of ``traces_call_id``
(the calls table itself is partitioned by time): a re-sent or concurrently retried event is
stored once and never overwrites the first copy.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.ingest import enqueue
from apps.ingest.decode import BadEvent
from apps.ingest.sanitize import (
    EARLIEST,
    FieldError,
    check_time,
    clean_str,
    json_field,
    latest_time,
)
from apps.ingest.schemas import CallBody, CallEvent, Event, FeedbackBody, FeedbackEvent

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
ERROR = "error"


@dataclass
class EventResult:
    id: str | None
    status: str
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class IngestOutcome:
    results: list[EventResult]
    accepted_call_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(r.status == ACCEPTED for r in self.results)

    @property
    def duplicates(self) -> int:
        return sum(r.status == DUPLICATE for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.status == ERROR for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": [r.as_dict() for r in self.results],
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "errors": self.errors,
        }


@dataclass
class _ValidCall:
    index: int
    id: uuid.UUID
    body: CallBody
    truncated: list[str]
    # JSON texts for the jsonb columns, encoded (and checked) once during validation.
    messages: str | None
    tags: str
    metadata: str


@dataclass
class _ValidFeedback:
    index: int
    id: uuid.UUID
    body: FeedbackBody


def _error_message(exc: msgspec.ValidationError, prefix: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.input_tokens`"; name the field plainly.
    text = str(exc)
    if " - at `$" in text:
        message, _, path = text.partition(" - at `$")
        return f"{prefix}{path.rstrip('`').lstrip('.')}: {message}"
    if text.startswith("Object contains unknown field"):
        return f"{prefix.rstrip('.')}: {text[0].lower()}{text[1:]}"
    return f"{prefix.rstrip('.') or 'event'}: {text}"


def _clean_text(value: str | None, limit: int) -> tuple[str, bool]:
    if not value:
        return "", False
    value = clean_str(value)
    if len(value) > limit:
        return value[:limit], True
    return value, False


# Short text columns: NUL stripped and surrogates replaced (PostgreSQL refuses both in COPY).
_CALL_SHORT_TEXT = (
    "trace_id",
    "session_id",
    "user_id",
    "name",
    "provider",
    "model",
    "error_type",
    "release",
    "environment",
    "prompt_name",
    "prompt_version",
)
_INT4_MAX = 2**31 - 1
START_TIME_KEY = "driftline.start_time"
"""``metadata`` key set when a call came without ``start_time``: ``received`` or ``end_time``."""


def _validate(
    events: Sequence[Any],
) -> tuple[list[EventResult | None], list[_ValidCall], list[_ValidFeedback]]:
    results: list[EventResult | None] = [None] * len(events)
    calls: list[_ValidCall] = []
    feedbacks: list[_ValidFeedback] = []
    seen: set[tuple[str, uuid.UUID]] = set()
    limits = _Limits(
        text=settings.INGEST_MAX_TEXT_CHARS,
        json=settings.INGEST_MAX_JSON_BYTES,
        received=timezone.now(),
        latest=latest_time(),
    )
    for index, raw in enumerate(events):
        event: Event | CallEvent | FeedbackEvent
        if isinstance(raw, CallEvent | FeedbackEvent):
            event = raw  # decoded and validated already (the fast path)
        elif isinstance(raw, BadEvent):
            results[index] = EventResult(raw.id, ERROR, raw.error)
            continue
        else:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            shown_id = clean_str(raw_id) if isinstance(raw_id, str) else None
            try:
                event = msgspec.convert(raw, Event)
            except msgspec.ValidationError as exc:
                results[index] = EventResult(shown_id, ERROR, _error_message(exc, ""))
                continue
        kind = (
            "call"
            if isinstance(event, CallEvent)
            else "feedback"
            if isinstance(event, FeedbackEvent)
            else event.type
        )
        key = (kind, event.id)
        if key in seen:
            results[index] = EventResult(str(event.id), DUPLICATE)
            continue
        seen.add(key)
        error: str | None
        try:
            if kind == "call":
                body = (
                    event.body
                    if isinstance(event, CallEvent)
                    else msgspec.convert(event.body, CallBody)
                )
                calls.append(_valid_call(index, event.id, body, limits))
            else:
                feedback = (
                    event.body
                    if isinstance(event, FeedbackEvent)
                    else msgspec.convert(event.body, FeedbackBody)
                )
                feedbacks.append(_valid_feedback(index, event.id, feedback, limits))
            error = None
        except msgspec.ValidationError as exc:
            error = _error_message(exc, "body.")
        except FieldError as exc:
            error = f"body.{exc}"
        if error is not None:
            results[index] = EventResult(str(event.id), ERROR, error)
    return results, calls, feedbacks


@dataclass(frozen=True)
class _Limits:
    """Read once per batch (settings and the clock are not free at 10,000 events/s)."""

    text: int
    json: int
    received: datetime
    latest: datetime


def _valid_call(index: int, event_id: uuid.UUID, body: CallBody, limits: _Limits) -> _ValidCall:
    """The call cleaned and checked; FieldError names the first field refused."""
    received, limit = limits.received, limits.text
    body.end_time = check_time(body.end_time, "end_time", latest=limits.latest)
    start_source = ""
    start: datetime
    if body.start_time is not None:
        start = check_time(body.start_time, "start_time", latest=limits.latest) or received
    elif body.end_time is not None:
        start_source = "end_time"
        start = max(body.end_time - timedelta(milliseconds=body.latency_ms or 0.0), EARLIEST)
    else:
        start_source, start = "received", received
    body.start_time = start
    if body.end_time is not None and body.end_time < start:
        raise FieldError("end_time: is before start_time")
    if (body.input_tokens or 0) + (body.output_tokens or 0) > _INT4_MAX:
        raise FieldError("input_tokens: input_tokens + output_tokens is over 2^31 - 1")
    # One scan of all short fields together; the common clean case costs a join.
    joined = "".join(getattr(body, name) for name in _CALL_SHORT_TEXT)
    if "\x00" in joined or not joined.isascii():
        for name in _CALL_SHORT_TEXT:
            setattr(body, name, clean_str(getattr(body, name)))
    truncated = []
    for name in ("prompt", "response", "error"):
        text, cut = _clean_text(getattr(body, name), limit)
        setattr(body, name, text)
        if cut:
            truncated.append(name)
    metadata = body.metadata
    if start_source:
        metadata = {**metadata, START_TIME_KEY: start_source}
    return _ValidCall(
        index,
        event_id,
        body,
        truncated,
        messages=(
            json_field(body.messages, "messages", limit=limits.json)
            if body.messages is not None
            else None
        ),
        tags=json_field(body.tags, "tags", limit=limits.json),
        metadata=json_field(metadata, "metadata", limit=limits.json),
    )


def _valid_feedback(
    index: int, event_id: uuid.UUID, body: FeedbackBody, limits: _Limits
) -> _ValidFeedback:
    if body.score is None and not body.label and not body.comment:
        raise FieldError("score: feedback needs at least one of score, label or comment")
    body.created_at = check_time(body.created_at, "created_at", latest=limits.latest)
    body.label = clean_str(body.label)
    body.user_id = clean_str(body.user_id)
    body.comment = _clean_text(body.comment, limits.text)[0]
    return _ValidFeedback(index, event_id, body)


_CALL_COLUMNS = (
    # (column, postgres array type)
    ("id", "uuid"),
    ("trace_id", "text"),
    ("parent_id", "uuid"),
    ("session_id", "text"),
    ("end_user_id", "text"),
    ("name", "text"),
    ("kind", "text"),
    ("provider", "text"),
    ("model", "text"),
    ("prompt", "text"),
    ("messages", "jsonb"),
    ("response", "text"),
    ("input_tokens", "int"),
    ("output_tokens", "int"),
    ("total_tokens", "int"),
    ("cached_tokens", "int"),
    ("reasoning_tokens", "int"),
    ("cost_usd", "float8"),
    ("cost_source", "text"),
    ("latency_ms", "float8"),
    ("ttft_ms", "float8"),
    ("status", "text"),
    ("error", "text"),
    ("error_type", "text"),
    ("release", "text"),
    ("environment", "text"),
    ("prompt_name", "text"),
    ("prompt_version", "text"),
    ("tags", "jsonb"),
    ("metadata", "jsonb"),
    ("truncated", "jsonb"),
    ("start_time", "timestamptz"),
    ("end_time", "timestamptz"),
)
# Array-valued columns travel as jsonb (unnest flattens a 2-D array) and are rebuilt here.
_ARRAY_FROM_JSONB = {"tags", "truncated"}


_JSON = msgspec.json.Encoder()


def _call_row(project_id: int, call: _ValidCall) -> tuple[Any, ...]:
    del project_id  # the project is set by the INSERT ... SELECT
    b = call.body
    total = b.total_tokens
    if total is None and b.input_tokens is not None and b.output_tokens is not None:
        total = b.input_tokens + b.output_tokens
    latency = b.latency_ms
    if latency is None and b.end_time is not None and b.start_time is not None:
        latency = (b.end_time - b.start_time).total_seconds() * 1000.0
    return (
        call.id,
        b.trace_id,
        b.parent_id,
        b.session_id,
        b.user_id,
        b.name,
        b.kind,
        b.provider,
        b.model,
        b.prompt or "",
        call.messages,
        b.response or "",
        b.input_tokens,
        b.output_tokens,
        total,
        b.cached_tokens,
        b.reasoning_tokens,
        b.cost_usd,
        "client" if b.cost_usd is not None else "",
        latency,
        b.ttft_ms,
        b.status,
        b.error or "",
        b.error_type,
        b.release,
        b.environment,
        b.prompt_name,
        b.prompt_version,
        call.tags,
        call.metadata,
        _JSON.encode(call.truncated).decode(),
        b.start_time,
        b.end_time,
    )


_STAGE = "ingest_call_stage"
# A unique violation means another transaction stored one of these ids in the meantime; each
# retry sees more of them, so a handful of attempts is plenty.
DEDUPE_ATTEMPTS = 5


def _insert_calls(project: Project, calls: list[_ValidCall]) -> set[uuid.UUID]:
    """COPY the batch into a per-connection staging table, then one INSERT ... SELECT.

    COPY goes through psycopg's C row writer (several times cheaper than adapting one array per
    column), and one INSERT ... SELECT from it skips the ids already stored.
    ``ON COMMIT DELETE ROWS``: nothing staged outlives the transaction.
    """
    if not calls:
        return set()
    columns = [name for name, _ in _CALL_COLUMNS]
    selected = ", ".join(
        f"ARRAY(SELECT jsonb_array_elements_text(s.{name}))"
        if name in _ARRAY_FROM_JSONB
        else f"s.{name}"
        for name in columns
    )
    stage_columns = ", ".join(f"{name} {pgtype}" for name, pgtype in _CALL_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ({stage_columns}) ON COMMIT DELETE ROWS"
        )
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {_STAGE} ({', '.join(columns)}) FROM STDIN") as copy:
            for call in calls:
                copy.write_row(_call_row(project.pk, call))
        # Identifiers are constants of this module; every value is a bound parameter or COPY data.
        # The calls table is partitioned by time, so the dedupe is not an ON CONFLICT on its
        # key: ids already in traces_call_id are skipped, and the insert trigger on calls makes
        # a concurrent insert of the same id fail (unique violation); that statement is then
        # run again, and finds the id stored by the other transaction.
        sql = (
            f"INSERT INTO traces_call (project_id, received_at, processed_at, embed_status, "  # noqa: S608
            f"flagged, pii, signals, {', '.join(columns)}) "
            f"SELECT %s, now(), NULL, 0, false, '{{}}', '{{}}'::jsonb, {selected} FROM {_STAGE} s "
            # The stored ids among this batch's, found by probing the key with the batch's
            # ids (a NOT EXISTS against the unanalysed stage was planned as an anti join that
            # read the project's whole id index: slower with every call stored).
            "WHERE s.id <> ALL (ARRAY(SELECT c.id FROM traces_call_id c "
            "WHERE c.project_id = %s AND c.id = ANY(%s::uuid[]))) RETURNING id"
        )
        ids = [call.id for call in calls]
        for attempt in range(DEDUPE_ATTEMPTS):
            try:
                with transaction.atomic():  # a savepoint: the stage survives a retry
                    cursor.execute(sql, [project.pk, project.pk, ids])
                break
            except IntegrityError:
                if attempt == DEDUPE_ATTEMPTS - 1:
                    raise
        inserted = {row[0] for row in cursor.fetchall()}
        # The transaction may go on (feedback insert): empty the stage now, not only at commit.
        cursor.execute(f"DELETE FROM {_STAGE}")  # noqa: S608 - a constant identifier
        return inserted


def _insert_feedback(project: Project, feedbacks: list[_ValidFeedback]) -> set[uuid.UUID]:
    if not feedbacks:
        return set()
    now = timezone.now()
    rows = [
        (
            f.id,
            f.body.call_id,
            f.body.source,
            f.body.score,
            f.body.label,
            f.body.comment,
            f.body.user_id,
            f.body.created_at or now,
        )
        for f in feedbacks
    ]
    sql = (
        "INSERT INTO traces_feedback (project_id, event_id, call_id, source, score, label, "
        "comment, user_id, created_at, labels) "
        "SELECT %s, u.event_id, u.call_id, u.source, u.score, u.label, u.comment, u.user_id, "
        "u.created_at, '{}' "
        "FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::float8[], %s::text[], %s::text[], "
        "%s::text[], %s::timestamptz[]) "
        "AS u(event_id, call_id, source, score, label, comment, user_id, created_at) "
        "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id"
    )
    params: list[Any] = [project.pk, *([list(col) for col in zip(*rows, strict=True)])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def ingest_events(*, project: Project, events: Sequence[Any]) -> IngestOutcome:
    """Validate and store a batch of native events for ``project``.

    Returns one result per event, in order. Valid events are stored even when others fail.
    """
    results, calls, feedbacks = _validate(events)
    with transaction.atomic():
        inserted_calls = _insert_calls(project, calls)
        inserted_feedback = _insert_feedback(project, feedbacks)
        accepted_calls = [c.id for c in calls if c.id in inserted_calls]
        feedback_call_ids = sorted(
            {f.body.call_id for f in feedbacks if f.id in inserted_feedback}, key=str
        )
        project_id = project.pk
        transaction.on_commit(
            lambda: enqueue_follow_up(
                project_id=project_id, call_ids=accepted_calls, feedback_call_ids=feedback_call_ids
            )
        )
    for call in calls:
        status = ACCEPTED if call.id in inserted_calls else DUPLICATE
        results[call.index] = EventResult(str(call.id), status)
    for feedback in feedbacks:
        status = ACCEPTED if feedback.id in inserted_feedback else DUPLICATE
        results[feedback.index] = EventResult(str(feedback.id), status)
    final = [
        r if r is not None else EventResult(None, ERROR, "event: not processed") for r in results
    ]
    return IngestOutcome(results=final, accepted_call_ids=accepted_calls)


def enqueue_follow_up(
    *, project_id: int, call_ids: Sequence[uuid.UUID], feedback_call_ids: Sequence[uuid.UUID] = ()
) -> None:
    # A module-level name, so tests can hold the follow-up back; the work is in enqueue.py.
    enqueue.enqueue_follow_up(
        project_id=project_id, call_ids=call_ids, feedback_call_ids=feedback_call_ids
    )


# --- Follow-up (runs in the ingest worker) ------------------------------------------------------

SWEEP_GRACE_SECONDS = 120
SWEEP_LIMIT = 5000


def calls_follow_up(*, project_id: int, call_ids: Sequence[str]) -> int:
    """Cost, quality/safety signals and the embedding decision for freshly stored calls.

    Idempotent: only calls whose ``processed_at`` is still null are touched, and the update that
    sets it is conditional, so a task delivered twice does the work once.
    """
    from apps.ingest.pipeline import run_follow_up

    return run_follow_up(project_id=project_id, call_ids=list(call_ids))


def feedback_follow_up(*, project_id: int, call_ids: Sequence[str]) -> int:
    from apps.ingest.pipeline import run_feedback_follow_up

    return run_feedback_follow_up(project_id=project_id, call_ids=list(call_ids))


def unprocessed_calls_sweep() -> int:
    """Re-queue calls stored more than a grace period ago whose follow-up never ran (a lost
    queue message, a broker outage at commit time, a worker killed mid-task)."""
    from apps.traces.models import Call

    cutoff = timezone.now() - timedelta(seconds=SWEEP_GRACE_SECONDS)
    rows = (
        Call.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("project_id", "id")[:SWEEP_LIMIT]
    )
    by_project: dict[int, list[uuid.UUID]] = {}
    for project_id, call_id in rows:
        by_project.setdefault(project_id, []).append(call_id)
    for project_id, ids in by_project.items():
        enqueue_follow_up(project_id=project_id, call_ids=ids)
    return sum(len(ids) for ids in by_project.values())
