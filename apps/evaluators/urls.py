"""API routes of evaluators, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from apps.evaluators import apis

urlpatterns = [
    path("llm-connections", apis.ConnectionListCreateApi.as_view(), name="llm-connections"),
    path(
        "llm-connections/<int:connection_id>",
        apis.ConnectionDetailApi.as_view(),
        name="llm-connection-detail",
    ),
    path("evaluators", apis.EvaluatorListCreateApi.as_view(), name="evaluators"),
    path("evaluators/templates", apis.TemplateListApi.as_view(), name="evaluator-templates"),
    path(
        "evaluators/<int:evaluator_id>", apis.EvaluatorDetailApi.as_view(), name="evaluator-detail"
    ),
    path(
        "evaluators/<int:evaluator_id>/preview",
        apis.EvaluatorPreviewApi.as_view(),
        name="evaluator-preview",
    ),
    path(
        "evaluators/<int:evaluator_id>/backfill",
        apis.EvaluatorBackfillApi.as_view(),
        name="evaluator-backfill",
    ),
]
