"""URL map. API under /api/v1/, OTLP at /v1/traces, the UI at the root."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.apis import HealthApi
from apps.ingest.apis import IngestApi
from apps.traces.apis import CallDetailApi, CallListApi

api_v1 = [
    path("ingest", IngestApi.as_view(), name="ingest"),
    path("health", HealthApi.as_view(), name="health"),
    path("calls", CallListApi.as_view(), name="calls"),
    path("calls/<str:call_id>", CallDetailApi.as_view(), name="call-detail"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
