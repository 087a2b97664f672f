"""The shared parts of every chart: palette, escaping, the figure frame, links."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from apps.traces.metrics import CallBucket, FeedbackBucket

PALETTE = [
    "#4f46e5",
    "#0ea5e9",
    "#10b981",
    "#f59e0b",
    "#ef4444",
    "#8b5cf6",
    "#14b8a6",
    "#ec4899",
    "#64748b",
    "#84cc16",
]
INK, MUTED, GRID = "#0f172a", "#64748b", "#e2e8f0"

_LAYOUT: dict[str, Any] = {
    "font": {
        "family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
        "size": 12,
        "color": INK,
    },
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "margin": {"l": 48, "r": 16, "t": 8, "b": 32},
    "height": 240,
    "hovermode": "x unified",
    "colorway": PALETTE,
    "legend": {"orientation": "h", "y": -0.18, "x": 0, "font": {"size": 11, "color": MUTED}},
    "xaxis": {
        "gridcolor": GRID,
        "linecolor": GRID,
        "tickfont": {"color": MUTED},
        "zeroline": False,
    },
    "yaxis": {
        "gridcolor": GRID,
        "linecolor": GRID,
        "tickfont": {"color": MUTED},
        "zeroline": False,
        "rangemode": "tozero",
    },
}


def esc(text: object, *, limit: int = 200) -> str:
    """Text safe to put in a plotly label: HTML-escaped, one line, bounded."""
    value = " ".join(str(text).split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return html.escape(value, quote=True)


def new_figure(traces: Sequence[go.Figure | Any], **layout: Any) -> go.Figure:
    merged = {**_LAYOUT, **layout}
    for axis in ("xaxis", "yaxis"):
        if axis in layout:
            merged[axis] = {**_LAYOUT[axis], **layout[axis]}
    return go.Figure(data=list(traces), layout=merged)


def figure_json(fig: go.Figure) -> dict[str, Any]:
    """The figure as a JSON-ready dict (plotly's encoder handles numpy and datetimes)."""
    data: dict[str, Any] = json.loads(fig.to_json())
    data.get("layout", {}).pop("template", None)  # we style via _LAYOUT: keep payloads small
    return data


def bucket_times(buckets: Sequence[CallBucket | FeedbackBucket]) -> list[datetime]:
    return [b.bucket for b in buckets]


def point_links(base: Sequence[str] | None, extra: str | Sequence[str] = "") -> list[str] | None:
    """Per point, the calls explorer's query string behind it (``customdata``; the page's
    chart_links.js opens ``/calls/?<it>`` on a click). ``base`` holds one query per bucket (its
    time range and the page's filters), ``extra`` the series' own filter, one for all points
    or one per point."""
    if base is None:
        return None
    extras = [extra] * len(base) if isinstance(extra, str) else list(extra)
    return [q + (f"&{e}" if e else "") for q, e in zip(base, extras, strict=True)]
