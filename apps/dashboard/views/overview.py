"""The overview: KPIs against the previous period and the trends behind them."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.compare.selectors import dimension_values
from apps.dashboard import charts
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.forms import OverviewFilterForm, cleaned
from apps.dashboard.selectors.overview import (
    call_facets,
    calls_query,
    kpi_links,
    overview_kpis,
    project_has_calls,
)
from apps.dashboard.views.common import onboarding_context
from apps.traces.metrics import RANGES, OverviewFilters, time_window
from apps.traces.rollup_selectors import (
    rollup_call_series,
    rollup_feedback_series,
    rollup_overview_totals,
)


def _release_comparison(releases: list[str], chosen: str, window: str) -> dict[str, str] | None:
    """The release-gating question one click away: the chosen (else the newest) release against
    the one used before it (else the newest other). ``releases`` is most recently used first."""
    b = chosen if chosen in releases else (releases[0] if releases else "")
    others = [r for r in releases if r != b]
    if not others:
        return None
    earlier = releases[releases.index(b) + 1 :]
    a = earlier[0] if earlier else others[0]
    query = urlencode({"dimension": "release", "a": a, "b": b, "range": window})
    return {"a": a, "b": b, "query": query}


@project_view("read")
def overview(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    project = access.project
    if not project_has_calls(project=project):
        return render(request, "dashboard/overview_empty.html", onboarding_context(access))
    data = cleaned(OverviewFilterForm(request.GET))
    window = time_window(data["range"])
    filters = OverviewFilters(
        model=data["model"],
        release=data["release"],
        environment=data["environment"],
        tag=data["tag"],
    )
    # Rollups, not a scan of raw calls: a 30-day page stays fast at tens of millions of calls.
    # They lag the raw table by the follow-up plus one flush (seconds); a tag filter, which is
    # not rolled up, reads raw calls.
    series = rollup_call_series(project=project, window=window, filters=filters)
    feedback = rollup_feedback_series(project=project, window=window, filters=filters)
    current, previous = rollup_overview_totals(project=project, window=window, filters=filters)
    kpis = overview_kpis(current, previous)
    links = kpi_links(window=window, filters=filters, kpis=kpis)
    # Every bar and point opens the calls of its bucket under the page's filters.
    bucket_links = [
        calls_query(start=b.bucket, end=b.bucket + window.bucket, filters=filters) for b in series
    ]
    context = {
        "window": window,
        "ranges": list(RANGES),
        "filters": filters,
        "facets": call_facets(project=project, since=window.previous_start),
        "kpis": kpis,
        "kpi_cards": [(k, links.get(k.key, "")) for k in kpis],
        "current": current,
        "charts": {
            "volume": charts.volume_chart(series, links=bucket_links),
            "cost": charts.cost_chart(series, links=bucket_links),
            "latency": charts.latency_chart(series, links=bucket_links),
            "feedback": charts.feedback_chart(feedback),
            "safety": charts.safety_chart(series, links=bucket_links),
        },
        "feedback_count": current.feedback_count,
        "release_comparison": _release_comparison(
            dimension_values(project=project, dimension="release", limit=20),
            data["release"],
            window.key,
        ),
    }
    return render(request, "dashboard/overview.html", context)
