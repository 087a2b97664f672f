"""Cost insight: cost and quality per intent and model, what a response cache would save, and
intents where a cheaper model is not significantly worse."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.compare.insights import cost_insights
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.selectors.overview import calls_query
from apps.traces.metrics import OverviewFilters, time_window

RANGES = ("24h", "7d", "30d")


@project_view("read")
def insights(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    key = request.GET.get("range", "7d")
    key = key if key in RANGES else "7d"
    window = time_window(key)
    result = cost_insights(project=access.project, start=window.start, end=window.end)
    segments = [
        (
            s,
            calls_query(
                start=window.start,
                end=window.end,
                filters=OverviewFilters(model=s.model),
                sort="-cost",
            ),
        )
        for s in result.segments
    ]
    context = {
        "insights": result,
        "segments": segments,
        "range": key,
        "ranges": RANGES,
        "window": window,
        "margin_pp": f"{result.margin * 100:.1f}",
    }
    return render(request, "dashboard/insights.html", context)
