"""Prompts: every prompt with its versions and metrics, a side-by-side diff of two versions,
and their comparison with the intent-stratified regression statistics."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.compare.selectors import compare_groups
from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.views.common import flash_error
from apps.traces.metrics import time_window
from apps.traces.prompt_selectors import prompt_diff, prompt_list, prompt_versions

RANGES = ("24h", "7d", "30d")


def _range(request: HttpRequest) -> str:
    value = request.GET.get("range", "30d")
    return value if value in RANGES else "30d"


@project_view("read")
def prompts(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    window = _range(request)
    search = request.GET.get("q", "").replace("\x00", "")[:255]
    rows = prompt_list(
        project=access.project, start=time_window(window).start, search=search or None
    )
    return render(
        request,
        "dashboard/prompts.html",
        {"rows": rows, "range": window, "ranges": RANGES, "q": search},
    )


@project_view("read")
def prompt_detail(request: HttpRequest, access: ProjectAccess, name: str) -> HttpResponse:
    window = _range(request)
    try:
        versions = prompt_versions(
            project=access.project, name=name, start=time_window(window).start
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        raise Http404(exc.message) from exc  # pragma: no cover - flash_error raises
    names = [v.version for v in versions]
    # Default pair: the newest version against the one before it.
    b = request.GET.get("b") or (names[0] if names else "")
    a = request.GET.get("a") or (names[1] if len(names) > 1 else "")
    context: dict[str, Any] = {
        "name": name,
        "versions": versions,
        "range": window,
        "ranges": RANGES,
        "a": a,
        "b": b,
    }
    by_name = {v.version: v for v in versions}
    if a in by_name and b in by_name and a != b:
        ta, tb = by_name[a].template, by_name[b].template
        context.update(template_a=ta, template_b=tb)
        if ta is not None and tb is not None:
            context["diff"] = prompt_diff(ta, tb)
        try:
            context["comparison"] = compare_groups(
                project=access.project,
                dimension="prompt_version",
                a=a,
                b=b,
                start=time_window(window).start,
                prompt_name=name,
            )
        except ApplicationError as exc:
            flash_error(request, exc)
    return render(request, "dashboard/prompt_detail.html", context)
