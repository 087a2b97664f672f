"""Mounted under ``api/v1/`` by ``apps/urls.py``."""

from __future__ import annotations

from django.urls import path

from apps.embeddings.apis import CallSimilarApi, EmbeddingLagApi, SemanticSearchApi

urlpatterns = [
    path("calls/<str:call_id>/similar", CallSimilarApi.as_view(), name="call-similar"),
    path("search", SemanticSearchApi.as_view(), name="search"),
    path("embeddings/lag", EmbeddingLagApi.as_view(), name="embeddings-lag"),
]
