"""Compare two releases, models or prompt versions: every metric side by side with its effect,
interval and significance, stratified by intent (the release-gating question)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.compare.selectors import DIMENSIONS, compare_groups, dimension_values
from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.views.common import flash_error
from apps.traces.metrics import time_window
from apps.traces.prompt_selectors import prompt_list

RANGES = ("24h", "7d", "30d")


def _text(request: HttpRequest, key: str) -> str:
    return request.GET.get(key, "").replace("\x00", "").strip()[:255]


@project_view("read")
def compare(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    dimension = request.GET.get("dimension", "release")
    dimension = dimension if dimension in DIMENSIONS else "release"
    window = request.GET.get("range", "7d")
    window = window if window in RANGES else "7d"
    prompt = _text(request, "prompt")
    values = dimension_values(
        project=access.project, dimension=dimension, prompt_name=prompt or None
    )
    a = _text(request, "a") or (values[1] if len(values) > 1 else "")
    b = _text(request, "b") or (values[0] if values else "")
    context: dict[str, Any] = {
        "dimension": dimension,
        "dimensions": DIMENSIONS,
        "values": values,
        "prompts": [p.name for p in prompt_list(project=access.project)][:100],
        "prompt": prompt,
        "a": a,
        "b": b,
        "range": window,
        "ranges": RANGES,
    }
    if a and b and a != b and (dimension != "prompt_version" or prompt):
        try:
            context["comparison"] = compare_groups(
                project=access.project,
                dimension=dimension,
                a=a,
                b=b,
                start=time_window(window).start,
                prompt_name=prompt or None,
            )
        except ApplicationError as exc:
            flash_error(request, exc)
    return render(request, "dashboard/compare.html", context)
