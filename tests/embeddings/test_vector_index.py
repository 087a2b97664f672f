"""``manage.py vector_index``: the HNSW index rebuilt online with other parameters, and search
still answers through it."""

from __future__ import annotations

import importlib
import uuid
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from apps.embeddings.management.commands.vector_index import INDEX, index_options
from apps.embeddings.models import HNSW_EF_CONSTRUCTION, HNSW_M, CallEmbedding
from apps.embeddings.selectors import _knn

pytestmark = pytest.mark.django_db(transaction=True)  # CREATE INDEX CONCURRENTLY needs autocommit


def _vectors(project, n: int = 50) -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    CallEmbedding.objects.bulk_create(
        CallEmbedding(
            project=project,
            call_id=uuid.uuid4(),
            start_time=timezone.now(),
            kind="prompt",
            text_hash=f"{i:064d}",
            vector=vector.tolist(),
            provider_key="test",
        )
        for i, vector in enumerate(vectors)
    )
    return vectors


SHIPPED = {"m": str(HNSW_M), "ef_construction": str(HNSW_EF_CONSTRUCTION)}


def test_migrations_build_the_shipped_index() -> None:
    assert SHIPPED == {"m": "12", "ef_construction": "48"}
    assert index_options() == SHIPPED


def test_rebuild_with_other_parameters_keeps_search_working(project) -> None:
    vectors = _vectors(project)
    assert index_options() == SHIPPED
    out = StringIO()
    call_command("vector_index", "--m", "24", "--ef-construction", "128", stdout=out)
    assert index_options() == {"m": "24", "ef_construction": "128"}
    assert index_options(f"{INDEX}_new") is None
    assert "built in" in out.getvalue()
    hits = _knn(project_id=project.pk, vector=vectors[7], kind="prompt", provider_key="test", k=3)
    stored = CallEmbedding.objects.get(project=project, text_hash=f"{7:064d}")
    assert hits[0][0] == stored.call_id
    call_command("vector_index", "--m", str(HNSW_M), stdout=StringIO())  # ef_construction kept
    assert index_options() == {"m": str(HNSW_M), "ef_construction": "128"}
    call_command("vector_index", "--ef-construction", str(HNSW_EF_CONSTRUCTION), stdout=StringIO())
    assert index_options() == SHIPPED


def test_bad_parameters_are_refused(project) -> None:
    with pytest.raises(CommandError, match="ef-construction"):
        call_command("vector_index", "--m", "32", "--ef-construction", "40", stdout=StringIO())
    assert index_options() == SHIPPED


def test_the_upgrade_rebuilds_only_an_index_still_at_the_old_defaults() -> None:
    """0003 moves an index at m 16 / 64 to the shipped graph, and leaves one an operator tuned."""
    try:
        call_command("migrate", "embeddings", "0002", verbosity=0)
        assert index_options() == {"m": "16", "ef_construction": "64"}
        call_command("migrate", "embeddings", verbosity=0)
        assert index_options() == SHIPPED
        call_command("migrate", "embeddings", "0002", verbosity=0)
        call_command("vector_index", "--m", "24", "--ef-construction", "128", stdout=StringIO())
        call_command("migrate", "embeddings", verbosity=0)
        assert index_options() == {"m": "24", "ef_construction": "128"}
    finally:
        call_command("migrate", "embeddings", verbosity=0)
        call_command(
            "vector_index",
            "--m",
            str(HNSW_M),
            "--ef-construction",
            str(HNSW_EF_CONSTRUCTION),
            stdout=StringIO(),
        )
    assert index_options() == SHIPPED


def test_the_upgrade_leaves_a_large_index_and_says_how_to_rebuild_it(
    project, monkeypatch, capsys
) -> None:
    """Over MAX_ROWS_REBUILT vectors migrate does not hold the deploy for a long build."""
    upgrade = importlib.import_module("apps.embeddings.migrations.0003_hnsw_m12")
    _vectors(project, n=20)
    try:
        call_command("migrate", "embeddings", "0002", verbosity=0)
        assert index_options() == {"m": "16", "ef_construction": "64"}
        monkeypatch.setattr(upgrade, "MAX_ROWS_REBUILT", 10)
        call_command("migrate", "embeddings", verbosity=0)
        assert index_options() == {"m": "16", "ef_construction": "64"}
        assert "vector_index --m 12 --ef-construction 48" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        call_command("migrate", "embeddings", "0002", verbosity=0)
        call_command("migrate", "embeddings", verbosity=0)
    assert index_options() == SHIPPED
