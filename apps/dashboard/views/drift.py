"""Drift: detector scores against thresholds, intent shares, the intent map, new intents."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.dashboard.access import ProjectAccess, project_view


@project_view("read")
def drift(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    return render(request, "dashboard/drift.html", {"available": False})
