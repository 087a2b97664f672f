"""URL map. API under /api/v1/, OTLP at /v1/traces and /v1/logs, the UI at the root."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.compare.apis import CompareApi, PromptCompareApi
from apps.compare.insights_api import CostInsightsApi
from apps.ingest.apis import IngestApi
from apps.ingest.otlp.api import LangfuseOtlpTracesView, OtlpLogsView, OtlpTracesView
from apps.ops.apis import HealthApi
from apps.traces.apis import (
    CallDetailApi,
    CallListApi,
    PromptDetailApi,
    PromptListApi,
    SessionDetailApi,
    SessionListApi,
    TraceDetailApi,
    UserListApi,
)

api_v1: list[URLPattern | URLResolver] = [
    path("ingest", IngestApi.as_view(), name="ingest"),
    path("health", HealthApi.as_view(), name="health"),
    path("calls", CallListApi.as_view(), name="calls"),
    path("calls/<str:call_id>", CallDetailApi.as_view(), name="call-detail"),
    path("prompts", PromptListApi.as_view(), name="prompts"),
    path("prompts/<path:name>/compare", PromptCompareApi.as_view(), name="prompt-compare"),
    path("prompts/<path:name>", PromptDetailApi.as_view(), name="prompt-detail"),
    path("sessions", SessionListApi.as_view(), name="sessions"),
    path("sessions/<path:session_id>", SessionDetailApi.as_view(), name="session-detail"),
    path("users", UserListApi.as_view(), name="users"),
    path("traces/<path:trace_id>", TraceDetailApi.as_view(), name="trace-detail"),
    path("compare", CompareApi.as_view(), name="compare"),
    path("insights/cost", CostInsightsApi.as_view(), name="insights-cost"),
    path("", include("apps.embeddings.urls")),
    path("", include("apps.alerts.urls")),
    path("", include("apps.drift.urls")),
    path("", include("apps.evaluators.urls")),
    path("", include("apps.quality.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    # OTLP/HTTP's standard path, so OTEL_EXPORTER_OTLP_ENDPOINT=<driftline> works as is.
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    path("v1/logs", OtlpLogsView.as_view(), name="otlp-logs"),
    # The Langfuse SDK's OTLP path and Basic auth: moving from Langfuse is a host and a key.
    path(
        "api/public/otel/v1/traces", LangfuseOtlpTracesView.as_view(), name="otlp-traces-langfuse"
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("apps.dashboard.urls")),
]
