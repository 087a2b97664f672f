"""Reads of call vectors: similar calls, semantic search, embedding lag, vectors for drift.

k-NN runs on the HNSW cosine index. Every search is filtered (one project, one kind, one
provider key), and a filtered HNSW scan can return fewer than k rows when the filter is
selective; pgvector 0.8's iterative scan keeps walking the graph until k rows pass the filter
(https://github.com/pgvector/pgvector#iterative-index-scans). ``relaxed_order`` may return rows
slightly out of order, so results are re-sorted here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, QuerySet, Value
from django.utils import timezone
from pgvector import HalfVector
from pgvector.django import CosineDistance

from apps.accounts.models import Project
from apps.core.errors import ApplicationError, NotFound
from apps.embeddings.models import CallEmbedding, EmbeddingKind
from apps.embeddings.providers import EmbeddingProvider, get_provider
from apps.embeddings.services import CHARS_PER_TOKEN, text_normalise
from apps.traces.models import Call, EmbedStatus
from apps.traces.selectors import CallFilters, call_queryset
from apps.traces.text import last_user_message

MAX_K = 100
SNIPPET_CHARS = 300


@dataclass(frozen=True)
class SimilarCall:
    call_id: uuid.UUID
    distance: float  # cosine distance, 0 = same direction
    start_time: datetime
    prompt: str
    response: str
    model: str
    status: str
    flagged: bool

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.call_id),
            "similarity": round(self.similarity, 4),
            "distance": round(self.distance, 4),
            "start_time": self.start_time.isoformat(),
            "prompt": self.prompt,
            "response": self.response,
            "model": self.model,
            "status": self.status,
            "flagged": self.flagged,
        }


# At most this many vectors pass the filters: exact search (a sequential distance over the
# filtered rows, recall 1.0) instead of the HNSW graph. Counted with a LIMIT, so the check stays
# cheap on a large project. ``python -m bench.search --filtered`` at 100k vectors, 8 projects:
# 5,000 gives recall@10 0.970 at p95 48 ms; 20,000 gives 0.993 at p95 67 ms (2-core machine).
EXACT_MAX_ROWS = 5_000
# pgvector's iterative scan stops after this many tuples (its default 20,000); a filter that
# passes 1 in 50 rows still fills k=100 well inside it. When it does stop short, exact search
# answers instead.
MAX_SCAN_TUPLES = 100_000


def _filtered(
    *,
    project_id: int,
    kind: str,
    provider_key: str,
    exclude_call: uuid.UUID | None,
    start: datetime | None,
    end: datetime | None,
    filters: CallFilters | None,
    within: QuerySet[Call] | None = None,
) -> QuerySet[CallEmbedding]:
    qs = CallEmbedding.objects.filter(project_id=project_id, kind=kind, provider_key=provider_key)
    if exclude_call is not None:
        qs = qs.exclude(call_id=exclude_call)
    start = start or (filters.start if filters else None)
    end = end or (filters.end if filters else None)
    if start is not None:
        qs = qs.filter(start_time__gte=start)
    if end is not None:
        qs = qs.filter(start_time__lt=end)
    if filters is not None and _has_call_filters(filters):
        # Call-level filters (model, release, status, ...) as a semi-join in the WHERE, so the
        # iterative index scan keeps walking until k rows pass them; start_time repeated on the
        # calls side lets the (project, start_time) index bound that subquery too.
        calls = call_queryset(
            project=Project(pk=project_id),
            filters=replace(filters, start=start, end=end),
        )
        qs = qs.filter(call_id__in=calls.values("id"))
    if within is not None:
        # The caller's own call set (the explorer's value ranges and kinds), as a semi-join too.
        qs = qs.filter(call_id__in=within.filter(project_id=project_id).values("id"))
    return qs


def _has_call_filters(filters: CallFilters) -> bool:
    return any(
        getattr(filters, name) not in (None, "")
        for name in (
            "model",
            "release",
            "environment",
            "status",
            "end_user_id",
            "session_id",
            "tag",
            "trace_id",
            "search",
            "flagged",
            "prompt_name",
            "prompt_version",
        )
    ) or (filters.call_ids is not None)


def _knn(
    *,
    project_id: int,
    vector: Sequence[float] | npt.NDArray[np.float32],
    kind: str,
    provider_key: str,
    k: int,
    exclude_call: uuid.UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    filters: CallFilters | None = None,
    within: QuerySet[Call] | None = None,
    exact: bool | None = None,
) -> list[tuple[uuid.UUID, float]]:
    """The ``k`` nearest vectors passing every filter, by cosine distance.

    Small filtered sets are searched exactly. Larger ones go through the HNSW index with
    pgvector 0.8's iterative scan, so a selective filter (one project among many, a release, a
    status) still yields k true neighbours rather than the few of the first ``ef_search``
    candidates that happen to pass; if the scan gives up short of k, exact search answers.
    ``exact`` forces one path (tests, the benchmark).
    """
    qs = _filtered(
        project_id=project_id,
        kind=kind,
        provider_key=provider_key,
        exclude_call=exclude_call,
        start=start,
        end=end,
        filters=filters,
        within=within,
    )
    # Compared as halfvec, the column's type, so the HNSW index on it applies.
    query = HalfVector(np.asarray(vector, dtype=np.float32))
    if exact is None:
        limit = int(getattr(settings, "DRIFTLINE_SEARCH_EXACT_MAX_ROWS", EXACT_MAX_ROWS))
        exact = qs.values("pk")[: limit + 1].count() <= limit
    if not exact:
        rows = _knn_index(qs, query, k)
        if len(rows) == k or len(rows) == qs.count():
            return rows
    return _knn_exact(qs, query, k)


def _knn_index(
    qs: QuerySet[CallEmbedding], query: HalfVector, k: int
) -> list[tuple[uuid.UUID, float]]:
    ordered = qs.annotate(distance=CosineDistance("vector", query)).order_by("distance")
    with transaction.atomic(), connection.cursor() as cursor:
        # SET LOCAL: scoped to this transaction, so a pooled connection is left as it was.
        ef_search = min(1000, max(int(settings.DRIFTLINE_SEARCH_EF_SEARCH), k))
        cursor.execute(f"SET LOCAL hnsw.ef_search = {ef_search}")
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(f"SET LOCAL hnsw.max_scan_tuples = {int(MAX_SCAN_TUPLES)}")
        rows = list(ordered.values_list("call_id", "distance")[:k])
    # relaxed_order: the scan may return rows slightly out of order.
    rows.sort(key=lambda row: row[1])
    return [(call_id, float(distance)) for call_id, distance in rows]


def _knn_exact(
    qs: QuerySet[CallEmbedding], query: HalfVector, k: int
) -> list[tuple[uuid.UUID, float]]:
    # "+ 0": an ORDER BY the HNSW index cannot serve, so the planner filters with the btree
    # indexes and sorts the true distances (a top-k heap sort over the filtered rows).
    distance = CosineDistance("vector", query)
    ordered = qs.annotate(distance=distance, exact_order=distance + Value(0.0)).order_by(
        "exact_order", "call_id"
    )
    rows = list(ordered.values_list("call_id", "distance")[:k])
    return [(call_id, float(d)) for call_id, d in rows]


def _hydrate(*, project_id: int, hits: list[tuple[uuid.UUID, float]]) -> list[SimilarCall]:
    calls = {
        c.id: c
        for c in Call.objects.filter(project_id=project_id, id__in=[h[0] for h in hits]).only(
            "project_id",
            "id",
            "start_time",
            "prompt",
            "messages",
            "response",
            "model",
            "status",
            "flagged",
        )
    }
    out = []
    for call_id, distance in hits:
        call = calls.get(call_id)
        if call is None:  # deleted by retention since it was embedded
            continue
        out.append(
            SimilarCall(
                call_id=call_id,
                distance=distance,
                start_time=call.start_time,
                prompt=(call.prompt or last_user_message(call.messages))[:SNIPPET_CHARS],
                response=call.response[:SNIPPET_CHARS],
                model=call.model,
                status=call.status,
                flagged=call.flagged,
            )
        )
    return out


def call_similar(
    *,
    project: Project,
    call_id: str | uuid.UUID,
    k: int = 10,
    kind: str = EmbeddingKind.PROMPT,
    start: datetime | None = None,
    end: datetime | None = None,
    filters: CallFilters | None = None,
) -> list[SimilarCall]:
    """The ``k`` calls of ``project`` whose ``kind`` text is closest to that of ``call_id``
    (among the calls passing ``filters``, when given).

    404 when the call is not in the project; 409 when it has no vector (yet, or never: sampled
    out by the embedding budget).
    """
    try:
        parsed = uuid.UUID(str(call_id))
    except ValueError as exc:
        raise NotFound("call: not found") from exc
    own = (
        CallEmbedding.objects.filter(project=project, call_id=parsed, kind=kind)
        .values_list("vector", "provider_key")
        .first()
    )
    if own is None:
        if not Call.objects.filter(project=project, id=parsed).exists():
            raise NotFound("call: not found")
        raise ApplicationError("call: not embedded (yet)", field="call_id", status_code=409)
    vector, provider_key = own
    hits = _knn(
        project_id=project.id,
        vector=vector,
        kind=kind,
        provider_key=provider_key,
        k=min(k, MAX_K),
        exclude_call=parsed,
        start=start,
        end=end,
        filters=filters,
    )
    return _hydrate(project_id=project.id, hits=hits)


def calls_search(
    *,
    project: Project,
    query: str,
    k: int = 10,
    kind: str = EmbeddingKind.PROMPT,
    start: datetime | None = None,
    end: datetime | None = None,
    provider: EmbeddingProvider | None = None,
    filters: CallFilters | None = None,
    within: QuerySet[Call] | None = None,
) -> list[SimilarCall]:
    """Free-text semantic search: embed ``query`` with the current provider, then k-NN over
    the calls passing ``filters`` (model, release, status, text, a drift group's ids, ...) and,
    when given, inside ``within`` (a call queryset of the caller's: the explorer's ranges)."""
    provider = provider or get_provider()
    text = text_normalise(query, max_chars=provider.max_tokens * CHARS_PER_TOKEN)
    if not text:
        raise ApplicationError("q: empty query", field="q")
    vector = provider.embed([text])[0]
    hits = _knn(
        project_id=project.id,
        vector=vector,
        kind=kind,
        provider_key=provider.key,
        k=min(k, MAX_K),
        start=start,
        end=end,
        filters=filters,
        within=within,
    )
    return _hydrate(project_id=project.id, hits=hits)


def embedding_lag(*, project: Project, horizon: timedelta = timedelta(days=7)) -> dict[str, Any]:
    """Backlog of the embed worker for a project: what waits and how long, what got done.

    Pending is counted over calls that started within ``horizon`` (the (project, start_time)
    index bounds the scan); older stragglers are the sweeper's business.
    """
    now = timezone.now()
    pending = Call.objects.filter(
        project=project, start_time__gte=now - horizon, embed_status=EmbedStatus.PENDING
    )
    stats = pending.aggregate(oldest=Min("received_at"))
    count = pending.count()
    oldest = stats["oldest"]
    embedded_last_hour = CallEmbedding.objects.filter(
        project=project, kind=EmbeddingKind.PROMPT, created_at__gte=now - timedelta(hours=1)
    ).count()
    return {
        "pending": count,
        "oldest_pending_age_s": (now - oldest).total_seconds() if oldest else None,
        "embedded_last_hour": embedded_last_hour,
    }


@dataclass
class VectorSample:
    """Vectors of one project and provider key, with the calls they belong to (row-aligned)."""

    call_ids: list[uuid.UUID]
    start_times: list[datetime]
    vectors: npt.NDArray[np.float32]
    texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.call_ids)


def embedding_sample(
    *,
    project_id: int,
    provider_key: str,
    start: datetime | None = None,
    end: datetime | None = None,
    release: str | None = None,
    kind: str = EmbeddingKind.PROMPT,
    limit: int | None = None,
    with_texts: bool = False,
    seed: int = 0,
) -> VectorSample:
    """Vectors in [start, end) (optionally of one release), a uniform sample of ``limit``.

    Sampling happens in Python over the id list (one narrow query), then vectors are read for
    the chosen rows only: a week of a busy project is far more than a baseline needs.
    """
    qs = CallEmbedding.objects.filter(project_id=project_id, provider_key=provider_key, kind=kind)
    if start is not None:
        qs = qs.filter(start_time__gte=start)
    if end is not None:
        qs = qs.filter(start_time__lt=end)
    if release:
        released = Call.objects.filter(project_id=project_id, release=release)
        if start is not None:
            released = released.filter(start_time__gte=start)
        if end is not None:
            released = released.filter(start_time__lt=end)
        qs = qs.filter(call_id__in=released.values("id"))
    keys = list(qs.order_by("start_time", "id").values_list("id", flat=True))
    if limit is not None and len(keys) > limit:
        rng = np.random.default_rng(seed)
        keys = [keys[i] for i in np.sort(rng.choice(len(keys), limit, replace=False))]
    rows = {
        r[0]: r
        for r in CallEmbedding.objects.filter(id__in=keys).values_list(
            "id", "call_id", "start_time", "vector"
        )
    }
    ordered = [rows[key] for key in keys if key in rows]
    dimension = len(ordered[0][3]) if ordered else 0
    vectors = (
        np.stack([np.asarray(r[3], dtype=np.float32) for r in ordered])
        if ordered
        else np.zeros((0, dimension), dtype=np.float32)
    )
    sample = VectorSample(
        call_ids=[r[1] for r in ordered], start_times=[r[2] for r in ordered], vectors=vectors
    )
    if with_texts:
        sample.texts = call_prompt_texts(project_id=project_id, call_ids=sample.call_ids)
    return sample


def call_prompt_texts(*, project_id: int, call_ids: Sequence[uuid.UUID | str]) -> list[str]:
    """Prompt text of each call, aligned with ``call_ids`` ("" for a call since deleted)."""
    texts: dict[uuid.UUID, str] = {}
    ids = [i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in call_ids]
    for start in range(0, len(ids), 5000):
        for call_id, prompt, messages in Call.objects.filter(
            project_id=project_id, id__in=ids[start : start + 5000]
        ).values_list("id", "prompt", "messages"):
            texts[call_id] = (prompt or last_user_message(messages))[:1000]
    return [texts.get(i, "") for i in ids]
