"""Vectors of calls, beside the traces (pgvector).

One row per (project, call, kind): the prompt and the response of a call are embedded apart, so
"calls like this question" and "answers like this one" are different searches. ``Call`` has a
composite key and no foreign key can point at it: rows join on (project_id, call_id), as
feedback does. ``start_time`` is copied from the call so time-filtered vector reads (drift
windows, baselines) never join the large calls table.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from pgvector.django import HalfVectorField, HnswIndex

from apps.accounts.models import Project

DIMENSION = 384
# The similar-call index's graph. Every vector the embed worker writes pays for the graph's
# density, on the cores the model needs: m 12 / ef_construction 48 costs 30% less per insert
# than m 16 / 64 and, searched with ef_search 200 (DRIFTLINE_SEARCH_EF_SEARCH), finds more of
# the true neighbours than m 16 / 64 did at ef_search 100 (100k halfvec vectors: HNSW insert
# 1.20 against 1.71 ms a row, recall@10 0.968 against 0.941; `python -m bench.search --insert
# --n 100000 --configs 16:64,12:48 --ef 100,200`). At millions a project, rebuild denser
# (`manage.py vector_index`, docs/sizing.md).
HNSW_M = 12
HNSW_EF_CONSTRUCTION = 48


class EmbeddingKind(models.TextChoices):
    PROMPT = "prompt"
    RESPONSE = "response"


class CallEmbedding(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    call_id = models.UUIDField()
    start_time = models.DateTimeField()
    kind = models.CharField(max_length=8, choices=EmbeddingKind.choices)
    # sha256 of the normalised, truncated text: identical texts are embedded once per project.
    text_hash = models.CharField(max_length=64)
    # halfvec: half the storage and index size at the same recall (measured on 14k SNIPS
    # vectors, HNSW m=16 ef_construction=64: recall@10 0.982 vs 0.983 at ef_search=100, index
    # 16.5 vs 28.9 MB, p50 0.54 vs 0.89 ms); the detectors keep float16 references anyway.
    vector = HalfVectorField(dimensions=DIMENSION)
    # provider:model:dimension; vectors of different keys are never compared.
    provider_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "call_id", "kind"], name="callembedding_project_call_kind"
            )
        ]
        indexes = [
            models.Index(fields=["project", "start_time"], name="callembedding_project_time"),
            models.Index(
                fields=["project", "provider_key", "text_hash"], name="callembedding_text_hash"
            ),
            # Arrival order, for the streaming detector's cursor.
            models.Index(fields=["project", "created_at"], name="callembedding_project_created"),
            HnswIndex(
                name="callembedding_vector_hnsw",
                fields=["vector"],
                m=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
                opclasses=["halfvec_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.call_id}:{self.kind}"
