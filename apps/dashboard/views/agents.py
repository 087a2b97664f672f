"""The agent graph of a project: which span calls which, aggregated over a window."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.charts import agent_graph_chart
from apps.traces.metrics import time_window
from apps.traces.trace_selectors import agent_graph

RANGES = ("1h", "24h", "7d")


@project_view("read")
def agents(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    window = request.GET.get("range", "24h")
    window = window if window in RANGES else "24h"
    graph = agent_graph(project=access.project, start=time_window(window).start)
    return render(
        request,
        "dashboard/agents.html",
        {
            "graph": graph,
            "chart": agent_graph_chart(graph) if graph.edges else None,
            "range": window,
            "ranges": RANGES,
        },
    )
