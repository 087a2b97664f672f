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
import logging
import struct
import time
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
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


def call_texts(*, call: Call, max_chars: int) -> dict[str, tuple[str, str]]:
    """The texts of a call to embed with their hashes, by kind; empty texts are left out."""
    prompt = call.prompt or last_user_message(call.messages)
    texts = {
        EmbeddingKind.PROMPT.value: text_prepare(prompt, max_chars=max_chars),
        EmbeddingKind.RESPONSE.value: text_prepare(call.response or "", max_chars=max_chars),
    }
    return {kind: pair for kind, pair in texts.items() if pair[0]}


def _parse_ids(call_ids: Sequence[str | uuid.UUID]) -> list[uuid.UUID]:
    out = []
    for value in call_ids:
        try:
            out.append(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            logger.warning("embed: ignoring malformed call id %r", value)
    return out


def stored_vectors_by_hash(
    *, project_id: int, provider_key: str, hashes: Sequence[str]
) -> dict[str, npt.NDArray[np.float32]]:
    """Vectors already stored in the project for these text hashes (same provider only)."""
    if not hashes:
        return {}
    rows = (
        CallEmbedding.objects.filter(
            project_id=project_id, provider_key=provider_key, text_hash__in=list(hashes)
        )
        .order_by("text_hash")
        .distinct("text_hash")
        .values_list("text_hash", "vector")
    )
    return {h: np.asarray(v, dtype=np.float32) for h, v in rows}


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
    """
    ids = _parse_ids(call_ids)
    calls = list(
        Call.objects.filter(
            project_id=project_id, id__in=ids, embed_status=EmbedStatus.PENDING
        ).only("project_id", "id", "prompt", "messages", "response", "start_time")
    )
    if not calls:
        return EmbedOutcome(0, 0, 0, 0, 0)
    provider = provider or get_provider()
    key = provider.key
    max_chars = provider.max_tokens * CHARS_PER_TOKEN
    # Rows a previous, interrupted run already wrote are not embedded again.
    present = set(
        CallEmbedding.objects.filter(
            project_id=project_id, call_id__in=[c.id for c in calls]
        ).values_list("call_id", "kind")
    )
    pending: list[tuple[Call, str, str]] = []  # (call, kind, hash)
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
            if (call.id, kind) in present:
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
    with transaction.atomic():
        started = time.perf_counter()
        created = vectors_write(
            project_id=project_id, provider_key=key, rows=pending, vectors=vectors
        )
        write_s = time.perf_counter() - started
        done = Call.objects.filter(
            project_id=project_id, id__in=with_text, embed_status=EmbedStatus.PENDING
        ).update(embed_status=EmbedStatus.DONE)
        not_applicable = Call.objects.filter(
            project_id=project_id, id__in=empty, embed_status=EmbedStatus.PENDING
        ).update(embed_status=EmbedStatus.NOT_APPLICABLE)
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


_STAGE = "embeddings_callembedding_stage"
_COLUMNS = "project_id, call_id, start_time, kind, text_hash, vector, provider_key, created_at"


def vectors_write(
    *,
    project_id: int,
    provider_key: str,
    rows: Sequence[tuple[Call, str, str]],
    vectors: dict[str, npt.NDArray[np.float32]],
) -> int:
    """Store ``(call, kind, hash)`` rows with their vectors; returns the rows inserted.

    Binary COPY into a session-local staging table, then one ``INSERT ... SELECT ... ON
    CONFLICT DO NOTHING`` (a concurrent duplicate delivery may have written the same rows; COPY
    alone cannot skip them). Against ``bulk_create`` this skips formatting each vector as 384
    decimal numbers and PostgreSQL parsing them back: halfvec goes over the wire as the 772
    bytes PostgreSQL stores. Must run inside a transaction (the stage empties on commit).
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
        oid = _halfvec_oid(cursor)
        cursor.adapters.register_dumper(_Halfvec, _halfvec_dumper(oid))
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (project_id bigint, call_id uuid,"
            " start_time timestamptz, kind text, text_hash text, vector halfvec,"
            " provider_key text, created_at timestamptz) ON COMMIT DELETE ROWS"
        )
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
        insert = (
            f"INSERT INTO {table} ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGE}"  # noqa: S608 (constants only)
            " ON CONFLICT (project_id, call_id, kind) DO NOTHING"
        )
        cursor.execute(insert)
        inserted = int(cursor.rowcount)
        cursor.execute(f"DELETE FROM {_STAGE}")  # noqa: S608 (for a second write before commit)
    return inserted


# Built-in type oids (pg_type.dat); halfvec's is the extension's, looked up per connection.
_INT8, _UUID, _TIMESTAMPTZ, _TEXT = 20, 2950, 1184, 25
_halfvec_oids: dict[int, int] = {}


class _Halfvec(bytes):
    """A vector already in halfvec's binary wire format (dim, unused, float16s big-endian)."""


def _halfvec_oid(cursor: Any) -> int:
    key = id(cursor.connection)
    if key not in _halfvec_oids:
        cursor.execute("SELECT 'halfvec'::regtype::oid")
        _halfvec_oids[key] = int(cursor.fetchone()[0])
    return _halfvec_oids[key]


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
    ``older_than`` has no message waiting. The start_time ``horizon`` keeps the scan on the
    recent end of the calls table (BRIN). Re-sending is harmless: the task skips DONE calls.
    """
    from apps.embeddings.budget import embed_backlog

    if embed_backlog() > 0:
        return 0
    now = timezone.now()
    rows = Call.objects.filter(
        embed_status=EmbedStatus.PENDING,
        processed_at__lt=now - older_than,
        start_time__gte=now - horizon,
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
