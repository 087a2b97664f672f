"""The project URLs plus this area's APIs, until ``apps/urls.py`` mounts them under api/v1/."""

from __future__ import annotations

from django.urls import include, path

from apps.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/v1/", include("apps.embeddings.urls")),
    path("api/v1/", include("apps.drift.urls")),
    *project_urlpatterns,
]
