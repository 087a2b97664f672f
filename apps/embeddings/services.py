"""The embed worker's write path: calls in, vectors stored, ``Call.embed_status`` set.

Cost is the model (see REFERENCE.md: ~300 short texts/s on 2 cores), so every text is embedded
at most once per project and provider: a prompt seen before (a retry, a templated question)
reuses the stored vector, and duplicates inside one batch go through the model once. Everything
is safe to run twice: calls are picked by ``embed_status = PENDING`` and rows are inserted with
``ON CONFLICT DO NOTHING`` on (project, call, kind).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import struct
import time
import unicodedata
import uuid
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import transaction
from django.utils import timezone
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

from apps.embeddings.models import CallEmbedding, EmbeddingKind
from apps.embeddings.providers import EmbeddingProvider, get_provider
from apps.traces.models import Call, EmbedStatus
from apps.traces.text import last_user_message

logger = logging.getLogger(__name__)

# The model truncates at max_tokens itself; cutting the text first (about 4 characters a token
# in English) keeps a 100 KB prompt from costing a tokenizer pass over all of it.
CHARS_PER_TOKEN = 4
INJECTION_TASK = "apps.embeddings.tasks.score_injection"
EMBED_TASK = "apps.embeddings.tasks.embed_calls"
EMBED_CHUNK = 64


@dataclass(frozen=True)
class EmbedOutcome:
    calls_done: int  # calls marked DONE by this run
    not_applicable: int  # calls with nothing to embed
    rows: int  # vectors inserted
    embedded: int  # distinct texts that went through the model
    reused: int  # texts whose vector was already stored in the project
    model_s: float = 0.0  # seconds in provider.embed
    write_s: float = 0.0  # seconds storing the vectors (PostgreSQL's HNSW insert included)


def text_normalise(text: str, *, max_chars: int) -> str:
    """NFC, whitespace collapsed, cut to ``max_chars``: what is hashed and embedded.

    The raw text is cut first (to twice ``max_chars``: collapsing whitespace only shortens it),
    so a 100 KB prompt is normalised over a few KB, not all of it.
    """
    return " ".join(unicodedata.normalize("NFC", text[: 2 * max_chars]).split())[:max_chars]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_prepare(text: str, *, max_chars: int) -> tuple[str, str]:
    """``(normalised text, its hash)`` in one pass over the text; ``("", "")`` when empty."""
    normalised = text_normalise(text, max_chars=max_chars)
    return (normalised, text_hash(normalised)) if normalised else ("", "")


def _parse_ids(call_ids: Sequence[str | uuid.UUID]) -> list[uuid.UUID]:
    out = []
    for value in call_ids:
        try:
            out.append(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            logger.warning("embed: ignoring malformed call id %r", value)
    return out


@dataclass(frozen=True)
class PendingCall:
    """What the embed pipeline needs of a PENDING call (no model instance is built)."""

    id: uuid.UUID
    start_time: datetime
    prompt: str
    messages: Any  # only read when the prompt is empty
    response: str
    stored_kinds: frozenset[str]  # kinds a previous, interrupted run already stored


def pending_calls(*, project_id: int, ids: Sequence[uuid.UUID]) -> list[PendingCall]:
    """The PENDING calls among ``ids`` and the kinds already stored for each: one query."""
    if not ids:
        return []
    from django.db import connection

    calls = Call._meta.db_table
    vectors = CallEmbedding._meta.db_table
    # messages only for calls without a prompt: a long chat history is not parsed for nothing.
    query = (
        f"SELECT c.id, c.start_time, c.prompt, CASE WHEN c.prompt = '' THEN c.messages END,"  # noqa: S608 (constants only)
        f" c.response, ARRAY(SELECT e.kind FROM {vectors} e"
        "  WHERE e.project_id = c.project_id AND e.call_id = c.id)"
        f" FROM {calls} c WHERE c.project_id = %s AND c.id = ANY(%s) AND c.embed_status = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [project_id, list(ids), EmbedStatus.PENDING.value])
        rows = cursor.fetchall()
    return [
        PendingCall(
            id=call_id,
            start_time=start_time,
            prompt=prompt or "",
            messages=json.loads(messages) if isinstance(messages, str) else messages,
            response=response or "",
            stored_kinds=frozenset(kinds or ()),
        )
        for call_id, start_time, prompt, messages, response, kinds in rows
    ]


def call_texts(*, call: Call | PendingCall, max_chars: int) -> dict[str, tuple[str, str]]:
    """The texts of a call to embed with their hashes, by kind; empty texts are left out."""
    prompt = call.prompt or last_user_message(call.messages)
    texts = {
        EmbeddingKind.PROMPT.value: text_prepare(prompt, max_chars=max_chars),
        EmbeddingKind.RESPONSE.value: text_prepare(call.response or "", max_chars=max_chars),
    }
    return {kind: pair for kind, pair in texts.items() if pair[0]}


def stored_vectors_by_hash(
    *, project_id: int, provider_key: str, hashes: Sequence[str]
) -> dict[str, npt.NDArray[np.float32]]:
    """Vectors already stored in the project for these text hashes (same provider only).

    Read in halfvec's binary wire format (a server-side-binding cursor: Django's cursor binds
    client-side and reads text), so a reused vector is not printed as 384 decimals and parsed
    back.
    """
    if not hashes:
        return {}
    import psycopg
    from django.db import connection

    table = CallEmbedding._meta.db_table
    query = (
        f"SELECT DISTINCT ON (text_hash) text_hash, vector FROM {table}"  # noqa: S608 (constants only)
        " WHERE project_id = %s AND provider_key = %s AND text_hash = ANY(%s)"
    )
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(query, [project_id, provider_key, list(hashes)], binary=True)
        rows = cursor.fetchall()
    # halfvec binary: int16 dimension, int16 unused, then big-endian float16s.
    return {
        digest: np.frombuffer(bytes(data), dtype=">f2", offset=4).astype(np.float32)
        for digest, data in rows
    }


def call_embeddings_create(
    *,
    project_id: int,
    call_ids: Sequence[str | uuid.UUID],
    provider: EmbeddingProvider | None = None,
    score_injection: bool = True,
) -> EmbedOutcome:
    """Embed the prompts and responses of the PENDING calls among ``call_ids``.

    Calls already DONE (a re-delivered message) are skipped; calls without text are marked
    NOT_APPLICABLE. With ``score_injection`` the prompts' vectors are then scored against known
    attacks in a follow-up task (when the quality app offers it).

    Round trips per chunk: one read of the calls with their stored kinds, one read of the
    vectors already stored for the chunk's text hashes, then in one transaction the COPY, one
    statement moving the staged rows into the table, one UPDATE of the calls' status.
    """
    ids = _parse_ids(call_ids)
    calls = pending_calls(project_id=project_id, ids=ids)
    if not calls:
        return EmbedOutcome(0, 0, 0, 0, 0)
    provider = provider or get_provider()
    key = provider.key
    max_chars = provider.max_tokens * CHARS_PER_TOKEN
    pending: list[tuple[PendingCall, str, str]] = []  # (call, kind, hash)
    texts_by_hash: dict[str, str] = {}
    empty: list[uuid.UUID] = []
    with_text: list[uuid.UUID] = []
    for call in calls:
        texts = call_texts(call=call, max_chars=max_chars)
        if not texts:
            empty.append(call.id)
            continue
        with_text.append(call.id)
        for kind, (text, digest) in texts.items():
            if kind in call.stored_kinds:
                continue
            texts_by_hash.setdefault(digest, text)
            pending.append((call, kind, digest))
    vectors = stored_vectors_by_hash(
        project_id=project_id, provider_key=key, hashes=list(texts_by_hash)
    )
    reused = len(vectors)
    missing = [h for h in texts_by_hash if h not in vectors]
    started = time.perf_counter()
    if missing:
        embedded = provider.embed([texts_by_hash[h] for h in missing])
        vectors.update(zip(missing, embedded, strict=True))
    model_s = time.perf_counter() - started
    started = time.perf_counter()
    if pending:
        stage_prepare()
    with transaction.atomic():
        created = vectors_write(
            project_id=project_id, provider_key=key, rows=pending, vectors=vectors
        )
        write_s = time.perf_counter() - started
        done, not_applicable = calls_mark_embedded(
            project_id=project_id, with_text=with_text, empty=empty
        )
        prompt_calls = [str(c.id) for c, kind, _ in pending if kind == EmbeddingKind.PROMPT]
        if score_injection and prompt_calls and injection_scoring_available():
            transaction.on_commit(lambda: _enqueue_injection(project_id, prompt_calls))
    return EmbedOutcome(
        calls_done=done,
        not_applicable=not_applicable,
        rows=created,
        embedded=len(missing),
        reused=reused,
        model_s=model_s,
        write_s=write_s,
    )


def calls_mark_embedded(
    *, project_id: int, with_text: Sequence[uuid.UUID], empty: Sequence[uuid.UUID]
) -> tuple[int, int]:
    """PENDING calls to DONE (``with_text``) or NOT_APPLICABLE (``empty``) in one UPDATE;
    returns how many of each changed (a call no longer PENDING is left alone)."""
    if not with_text and not empty:
        return 0, 0
    from django.db import connection

    table = Call._meta.db_table
    done, not_applicable = EmbedStatus.DONE.value, EmbedStatus.NOT_APPLICABLE.value
    query = (
        f"WITH changed AS (UPDATE {table} SET embed_status ="  # noqa: S608 (constants only)
        " CASE WHEN id = ANY(%s) THEN %s ELSE %s END"
        " WHERE project_id = %s AND id = ANY(%s) AND embed_status = %s RETURNING embed_status)"
        " SELECT count(*) FILTER (WHERE embed_status = %s), count(*) FILTER (WHERE embed_status"
        " = %s) FROM changed"
    )
    params: list[Any] = [
        list(with_text),
        done,
        not_applicable,
        project_id,
        [*with_text, *empty],
        EmbedStatus.PENDING.value,
        done,
        not_applicable,
    ]
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        row = cursor.fetchone()
    return int(row[0]), int(row[1])


_STAGE = "embeddings_callembedding_stage"
_COLUMNS = "project_id, call_id, start_time, kind, text_hash, vector, provider_key, created_at"


def vectors_write(
    *,
    project_id: int,
    provider_key: str,
    rows: Sequence[tuple[Call | PendingCall, str, str]],
    vectors: dict[str, npt.NDArray[np.float32]],
) -> int:
    """Store ``(call, kind, hash)`` rows with their vectors; returns the rows inserted.

    Binary COPY into a session-local staging table, then one statement that empties the stage
    into the table (``DELETE ... RETURNING`` feeding ``INSERT ... ON CONFLICT DO NOTHING``: a
    concurrent duplicate delivery may have written the same rows; COPY alone cannot skip
    them). Against ``bulk_create`` this skips formatting each vector as 384 decimal numbers and
    PostgreSQL parsing them back: halfvec goes over the wire as the 772 bytes PostgreSQL
    stores. Must run inside a transaction (the stage empties on commit).
    """
    if not rows:
        return 0
    from django.db import connection

    hashes = list(dict.fromkeys(digest for _, _, digest in rows))
    matrix = np.stack([vectors[h] for h in hashes]).astype(">f2")  # big-endian float16
    header = struct.pack(">HH", matrix.shape[1], 0)
    binary = {h: _Halfvec(header + matrix[i].tobytes()) for i, h in enumerate(hashes)}
    now = timezone.now()
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # the psycopg cursor: Django has no COPY
        oid = _stage_ready(cursor)
        cursor.adapters.register_dumper(_Halfvec, _halfvec_dumper(oid))
        with cursor.copy(f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_INT8, _UUID, _TIMESTAMPTZ, _TEXT, _TEXT, oid, _TEXT, _TIMESTAMPTZ])
            for call, kind, digest in rows:
                copy.write_row(
                    (
                        project_id,
                        call.id,
                        call.start_time,
                        kind,
                        digest,
                        binary[digest],
                        provider_key,
                        now,
                    )
                )
        table = CallEmbedding._meta.db_table
        # Emptying the stage in the same statement keeps a second write in one transaction
        # from re-reading these rows, without a round trip of its own.
        move = (
            f"WITH staged AS (DELETE FROM {_STAGE} RETURNING {_COLUMNS})"  # noqa: S608 (constants only)
            f" INSERT INTO {table} ({_COLUMNS}) SELECT {_COLUMNS} FROM staged"
            " ON CONFLICT (project_id, call_id, kind) DO NOTHING"
        )
        cursor.execute(move)
        inserted = int(cursor.rowcount)
    return inserted


# Built-in type oids (pg_type.dat); halfvec's is the extension's, looked up per connection.
_INT8, _UUID, _TIMESTAMPTZ, _TEXT = 20, 2950, 1184, 25
# psycopg connection -> halfvec oid, for connections whose staging table exists.
_stage_oids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


class _Halfvec(bytes):
    """A vector already in halfvec's binary wire format (dim, unused, float16s big-endian)."""


def _stage_ready(cursor: Any) -> int:
    """Make sure the staging table exists; returns the connection's halfvec oid.

    Created with one round trip, and remembered per psycopg connection (held weakly, so a new
    connection at a reused address creates its own) only when created outside a transaction:
    a temporary table created inside one disappears if it rolls back.
    :func:`call_embeddings_create` calls this before opening its transaction, so the embed
    worker creates the table once per connection.
    """
    from django.db import connection

    conn = cursor.connection
    oid = _stage_oids.get(conn)
    if oid is None:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (project_id bigint, call_id uuid,"
            " start_time timestamptz, kind text, text_hash text, vector halfvec,"
            " provider_key text, created_at timestamptz) ON COMMIT DELETE ROWS;"
            " SELECT 'halfvec'::regtype::oid"
        )
        cursor.nextset()
        oid = int(cursor.fetchone()[0])
        if not connection.in_atomic_block:
            _stage_oids[conn] = oid
    return oid


def stage_prepare() -> None:
    """Create the vector write's staging table for this connection, outside any transaction."""
    from django.db import connection

    with connection.cursor() as wrapper:
        _stage_ready(wrapper.cursor)


@cache
def _halfvec_dumper(oid: int) -> type[Dumper]:
    class HalfvecDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: Any) -> Buffer:
            return bytes(obj)

    HalfvecDumper.oid = oid
    return HalfvecDumper


def _enqueue_injection(project_id: int, call_ids: list[str]) -> None:
    _send(INJECTION_TASK, [project_id, call_ids])


def injection_scoring_available() -> bool:
    """Whether the quality app scores calls with their vectors (the learned safety probes)."""
    try:
        from apps.quality.services import call_signals
    except ImportError:
        return False
    return "prompt_embedding" in inspect.signature(call_signals).parameters


def call_injection_update(*, project_id: int, call_ids: Sequence[str | uuid.UUID]) -> int:
    """Re-score the signals of calls with their prompt and response vectors (learned probes).

    Recomputes the whole signal set with the same function the ingest follow-up uses, so the
    stored ``signals``/``flagged``/``injection`` stay consistent. Returns calls updated.
    """
    if not injection_scoring_available():
        return 0
    from apps.quality.selectors import safety_fpr_for_project
    from apps.quality.services import SIGNAL_FIELDS, call_signals

    ids = _parse_ids(call_ids)
    safety_fpr = safety_fpr_for_project(project_id=project_id)  # once per batch
    vectors: dict[tuple[uuid.UUID, str], tuple[Any, str]] = {
        (call_id, kind): (vector, key)
        for call_id, kind, vector, key in CallEmbedding.objects.filter(
            project_id=project_id, call_id__in=ids
        ).values_list("call_id", "kind", "vector", "provider_key")
    }
    prompt_ids = [call_id for call_id, kind in vectors if kind == EmbeddingKind.PROMPT]
    calls = Call.objects.filter(project_id=project_id, id__in=prompt_ids).only(*SIGNAL_FIELDS)
    updated: list[uuid.UUID] = []
    for call in calls:
        prompt_vector, key = vectors[(call.id, EmbeddingKind.PROMPT)]
        response = vectors.get((call.id, EmbeddingKind.RESPONSE))
        signals = call_signals(
            call=call,
            prompt_embedding=np.asarray(prompt_vector, dtype=np.float32),
            response_embedding=None
            if response is None or response[1] != key
            else np.asarray(response[0], dtype=np.float32),
            provider_key=key,
            safety_fpr=safety_fpr,
        )
        if Call.objects.filter(project_id=project_id, id=call.id).update(
            injection=signals.get("injection"),
            toxicity=signals.get("toxicity"),
            refusal=bool(signals.get("refusal")),
            flagged=bool(signals.get("flagged")),
            signals=signals,
        ):
            updated.append(call.id)
    if updated:  # the overview's safety counts come from the rollups: recompute those minutes
        from apps.traces.rollups import rollup_add_calls

        rollup_add_calls(project_id=project_id, call_ids=updated)
    return len(updated)


def embeddings_sweep_pending(
    *,
    older_than: timedelta = timedelta(minutes=10),
    horizon: timedelta = timedelta(days=1),
    limit: int = 5000,
) -> int:
    """Re-send calls whose embed message was lost (a broker restart, a purged queue).

    Runs only while the embed queue is empty: then a processed call still PENDING after
    ``older_than`` has no message waiting. The ``horizon`` is on ``received_at`` (the partial
    index of PENDING calls), not ``start_time``: a backfill of old calls (the demo's history)
    arrives now, and a lost message of one of them must be re-sent too, else the health
    endpoint's embedding lag grows for ever. Re-sending is harmless: the task skips DONE calls.
    """
    from apps.embeddings.budget import embed_backlog

    if embed_backlog() > 0:
        return 0
    now = timezone.now()
    rows = Call.objects.filter(
        embed_status=EmbedStatus.PENDING,
        processed_at__lt=now - older_than,
        received_at__gte=now - horizon,
    ).values_list("project_id", "id")[:limit]
    by_project: dict[int, list[str]] = defaultdict(list)
    for project_id, call_id in rows:
        by_project[project_id].append(str(call_id))
    sent = 0
    for project_id, ids in by_project.items():
        for start in range(0, len(ids), EMBED_CHUNK):
            chunk = ids[start : start + EMBED_CHUNK]
            _send(EMBED_TASK, [project_id, chunk])
            sent += len(chunk)
    if sent:
        logger.warning("embed sweep: re-sent %d calls whose messages were lost", sent)
    return sent


def _send(task: str, args: list[Any]) -> None:
    from celery import current_app

    from apps.queues import EMBED

    current_app.send_task(task, args=args, queue=EMBED, expires=6 * 3600)
