"""API routes of the quality app, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import path

from apps.quality import apis

urlpatterns = [
    path("safety-settings", apis.SafetySettingsApi.as_view(), name="safety-settings"),
]
