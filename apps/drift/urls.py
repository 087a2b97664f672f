"""Mounted under ``api/v1/`` by ``apps/urls.py``."""

from __future__ import annotations

from django.urls import path

from apps.drift.apis import BaselineApi, DriftCheckListApi, IntentRenameApi

urlpatterns = [
    path("drift/checks", DriftCheckListApi.as_view(), name="drift-checks"),
    path("drift/baselines", BaselineApi.as_view(), name="drift-baselines"),
    path("drift/intents/<int:intent_id>", IntentRenameApi.as_view(), name="drift-intent"),
]
