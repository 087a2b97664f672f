"""Filtered k-NN: the true nearest neighbours under project, model, release, status and time
filters, in a table where other tenants' vectors crowd the query's neighbourhood.

Without pgvector's iterative scan, the HNSW index hands back its first ``ef_search`` candidates
(all of another tenant here) and the filters then drop every one of them: the duplicate at
similarity 1.00 is never seen. Real pgvector, real model.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.test import override_settings
from pgvector import HalfVector

from apps.accounts.models import Organization, Project
from apps.embeddings.models import CallEmbedding
from apps.embeddings.providers import EmbeddingProvider
from apps.embeddings.selectors import _filtered, _knn, _knn_index, call_similar, calls_search
from apps.embeddings.services import call_embeddings_create
from apps.traces.selectors import CallFilters
from tests.embeddings.conftest import MUSIC, RESTAURANT, T0, WEATHER, make_calls

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

DUPLICATE = "play some jazz in the kitchen"
CROWD_PER_PROJECT = 1500


def _crowd(provider: EmbeddingProvider, projects: int = 4) -> None:
    """Other tenants' vectors packed around the duplicate's vector (cosine ~0.97 to it)."""
    centre = np.asarray(provider.embed([DUPLICATE])[0], dtype=np.float32)
    rng = np.random.default_rng(3)
    for p in range(projects):
        org = Organization.objects.create(name=f"Crowd {p}", slug=f"crowd-{p}")
        other = Project.objects.create(organization=org, name=f"Crowd {p}", slug=f"crowd-{p}")
        noisy = centre + rng.normal(0, 0.012, size=(CROWD_PER_PROJECT, len(centre)))
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        CallEmbedding.objects.bulk_create(
            (
                CallEmbedding(
                    project=other,
                    call_id=uuid.uuid4(),
                    start_time=T0,
                    kind="prompt",
                    text_hash=f"{p}-{i}",
                    vector=vector.astype(np.float32).tolist(),
                    provider_key=provider.key,
                )
                for i, vector in enumerate(noisy)
            ),
            batch_size=1000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE embeddings_callembedding")


@pytest.fixture
def setup(project: Project, provider: EmbeddingProvider) -> dict[str, object]:
    _crowd(provider)
    # The duplicate under the wanted model/release, and the same prompt under another model and
    # as an error: the filters must exclude those, not merely rank them.
    [target] = make_calls(project, [DUPLICATE], model="gpt-4o", release="v2", status="ok")
    [other_model] = make_calls(project, [DUPLICATE], model="claude-3", release="v2", status="ok")
    [errored] = make_calls(project, [DUPLICATE], model="gpt-4o", release="v2", status="error")
    [old] = make_calls(
        project,
        [DUPLICATE],
        model="gpt-4o",
        release="v2",
        status="ok",
        start_time=T0 - timedelta(days=30),
    )
    rest = make_calls(project, WEATHER + RESTAURANT + MUSIC, model="gpt-4o", release="v2")
    calls = [target, other_model, errored, old, *rest]
    call_embeddings_create(
        project_id=project.id,
        call_ids=[str(c.id) for c in calls],
        provider=provider,
        score_injection=False,
    )
    return {"target": target, "other_model": other_model, "errored": errored, "old": old}


FILTERS = CallFilters(
    model="gpt-4o",
    release="v2",
    status="ok",
    start=T0 - timedelta(days=1),
    end=T0 + timedelta(days=1),
)


def _plan(project: Project, provider: EmbeddingProvider) -> str:
    qs = _filtered(
        project_id=project.id,
        kind="prompt",
        provider_key=provider.key,
        exclude_call=None,
        start=None,
        end=None,
        filters=FILTERS,
    )
    from pgvector.django import CosineDistance

    query = HalfVector(np.asarray(provider.embed([DUPLICATE])[0], dtype=np.float32))
    ordered = qs.annotate(d=CosineDistance("vector", query)).order_by("d")[:10]
    with transaction.atomic():
        return ordered.explain()


@pytest.mark.parametrize("exact_max", [0, 100_000], ids=["hnsw-iterative", "exact"])
def test_semantic_search_finds_the_exact_duplicate_under_filters(
    project: Project, provider: EmbeddingProvider, setup: dict[str, object], exact_max: int
) -> None:
    with override_settings(DRIFTLINE_SEARCH_EXACT_MAX_ROWS=exact_max):
        hits = calls_search(project=project, query=DUPLICATE, k=10, filters=FILTERS)
    assert hits, "no result under the filters"
    assert hits[0].call_id == setup["target"].id  # type: ignore[attr-defined]
    assert round(hits[0].similarity, 2) == 1.00
    found = {h.call_id for h in hits}
    for excluded in ("other_model", "errored", "old"):
        assert setup[excluded].id not in found  # type: ignore[attr-defined]
    # Every hit is of the project and passes the filters; nothing of the crowd leaks in.
    assert len(hits) == 10
    assert all(h.model == "gpt-4o" and h.status == "ok" for h in hits)
    distances = [h.distance for h in hits]
    assert distances == sorted(distances)


def test_the_iterative_hnsw_scan_finds_it_when_the_index_is_forced(
    project: Project, provider: EmbeddingProvider, setup: dict[str, object]
) -> None:
    """The planner rightly sorts a small filtered set itself; with sorting disabled it must
    walk the HNSW graph, past every crowding vector of the other tenants."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # the test's transaction
    assert "callembedding_vector_hnsw" in _plan(project, provider)
    qs = _filtered(
        project_id=project.id,
        kind="prompt",
        provider_key=provider.key,
        exclude_call=None,
        start=None,
        end=None,
        filters=FILTERS,
    )
    query = HalfVector(np.asarray(provider.embed([DUPLICATE])[0], dtype=np.float32))
    # The index path alone: _knn would fall back to exact search if it came back short.
    hits = _knn_index(qs, query, 3)
    assert len(hits) == 3
    assert hits[0][0] == setup["target"].id  # type: ignore[attr-defined]
    assert hits[0][1] < 0.005


def test_index_and_exact_paths_agree(
    project: Project, provider: EmbeddingProvider, setup: dict[str, object]
) -> None:
    vector = provider.embed([WEATHER[0]])[0]
    common = {
        "project_id": project.id,
        "vector": vector,
        "kind": "prompt",
        "provider_key": provider.key,
        "k": 8,
        "filters": FILTERS,
    }
    index = _knn(**common, exact=False)  # type: ignore[arg-type]
    exact = _knn(**common, exact=True)  # type: ignore[arg-type]
    assert [c for c, _ in index] == [c for c, _ in exact]


def test_similar_calls_find_the_duplicates_under_filters(
    project: Project, provider: EmbeddingProvider, setup: dict[str, object]
) -> None:
    target = setup["target"]
    with override_settings(DRIFTLINE_SEARCH_EXACT_MAX_ROWS=0):
        unfiltered = call_similar(project=project, call_id=target.id, k=5)  # type: ignore[attr-defined]
        only_claude = call_similar(
            project=project,
            call_id=target.id,  # type: ignore[attr-defined]
            k=5,
            filters=CallFilters(model="claude-3"),
        )
    # The three other copies of the prompt, all at 1.00, come first without filters.
    assert {h.call_id for h in unfiltered[:3]} == {
        setup[name].id  # type: ignore[attr-defined]
        for name in ("other_model", "errored", "old")
    }
    assert all(round(h.similarity, 2) == 1.00 for h in unfiltered[:3])
    assert [h.call_id for h in only_claude] == [setup["other_model"].id]  # type: ignore[attr-defined]
