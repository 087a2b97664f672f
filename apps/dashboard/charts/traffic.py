"""The overview's charts: volume, cost, latency, feedback and safety per bucket."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from apps.traces.metrics import CallBucket, FeedbackBucket
from apps.traces.rollups import ALPHA

from .base import GRID, INK, MUTED, PALETTE, bucket_times, figure_json, new_figure, point_links


def volume_chart(
    series: Sequence[CallBucket], *, links: Sequence[str] | None = None
) -> dict[str, Any]:
    x = bucket_times(series)
    fig = new_figure(
        [
            go.Bar(
                x=x,
                y=[b.calls - b.errors for b in series],
                name="ok",
                marker_color=PALETTE[0],
                customdata=point_links(links, "status=ok"),
            ),
            go.Bar(
                x=x,
                y=[b.errors for b in series],
                name="errors",
                marker_color=PALETTE[4],
                customdata=point_links(links, "status=error"),
            ),
            go.Scatter(
                x=x,
                y=[b.error_rate for b in series],
                name="error rate",
                yaxis="y2",
                mode="lines",
                line={"color": PALETTE[4], "width": 1.5, "dash": "dot"},
                hovertemplate="%{y:.1%}",
                customdata=point_links(links, "status=error"),
            ),
        ],
        barmode="stack",
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "showgrid": False,
            "rangemode": "tozero",
            "tickfont": {"color": MUTED},
        },
        margin={"l": 48, "r": 44, "t": 8, "b": 32},
    )
    return figure_json(fig)


def cost_outliers(values: Sequence[float], *, factor: float = 4.0) -> tuple[set[int], float]:
    """Buckets whose cost would flatten the others, and the axis top that shows the rest.

    A bucket is an outlier when it is above ``factor`` times the largest of the others that
    remain (checked from the top down, at most 3) and above 10x the median of the non-zero
    buckets: one runaway batch job, not a busy afternoon. Returns (indexes, axis top); no
    outliers -> (set(), 0.0)."""
    order = sorted((v, i) for i, v in enumerate(values) if v > 0)
    if len(order) < 4:
        return set(), 0.0
    median = order[len(order) // 2][0]
    out: set[int] = set()
    while len(out) < 3 and len(order) - len(out) >= 4:
        top_value, top_index = order[-1 - len(out)]
        rest = order[-2 - len(out)][0]
        if top_value > factor * rest and top_value > 10 * median:
            out.add(top_index)
        else:
            break
    if not out:
        return set(), 0.0
    return out, order[-1 - len(out)][0] * 1.3


def cost_chart(
    series: Sequence[CallBucket], *, links: Sequence[str] | None = None
) -> dict[str, Any]:
    """Cost bars and a token line. One spike does not flatten the rest: the axis is clipped at
    the other buckets, the clipped bars are coloured and labelled with their value, and a
    button switches to a log axis."""
    x = bucket_times(series)
    cost = [round(b.cost_usd, 6) for b in series]
    outliers, top = cost_outliers(cost)
    colors = [PALETTE[3] if i in outliers else PALETTE[2] for i in range(len(cost))]
    layout: dict[str, Any] = {}
    yaxis: dict[str, Any] = {"tickprefix": "$"}
    if outliers:
        yaxis["range"] = [0, top]
        yaxis["autorange"] = False
        layout["annotations"] = [
            {
                "x": x[i].isoformat(),
                "y": top,
                "yref": "y",
                "text": f"${cost[i]:,.2f} ↑",
                "showarrow": False,
                "yanchor": "bottom",
                "font": {"size": 11, "color": INK},
            }
            for i in sorted(outliers)
        ]
    linear: dict[str, Any] = {"yaxis.type": "linear"}
    if outliers:
        linear.update({"yaxis.range": [0, top], "yaxis.autorange": False})
    else:
        linear["yaxis.autorange"] = True
    layout["updatemenus"] = [
        {
            "type": "buttons",
            "direction": "right",
            "showactive": True,
            "x": 0,
            "y": 1.02,
            "xanchor": "left",
            "yanchor": "bottom",
            "pad": {"r": 4, "t": 0},
            "font": {"size": 11, "color": INK},
            "bgcolor": "#ffffff",
            "bordercolor": GRID,
            "buttons": [
                {
                    "label": "clipped" if outliers else "linear",
                    "method": "relayout",
                    "args": [linear],
                },
                {
                    "label": "log",
                    "method": "relayout",
                    "args": [{"yaxis.type": "log", "yaxis.autorange": True}],
                },
            ],
        }
    ]
    fig = new_figure(
        [
            go.Bar(
                x=x,
                y=cost,
                name="cost (USD)",
                marker_color=colors,
                hovertemplate="$%{y:.4f}",
                customdata=point_links(links, "sort=-cost"),
            ),
            go.Scatter(
                x=x,
                y=[b.total_tokens for b in series],
                name="tokens",
                yaxis="y2",
                mode="lines",
                line={"color": PALETTE[5], "width": 2},
                customdata=point_links(links, "sort=-tokens"),
            ),
        ],
        yaxis=yaxis,
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickfont": {"color": MUTED},
        },
        margin={"l": 56, "r": 52, "t": 28, "b": 32},
        **layout,
    )
    return figure_json(fig)


def latency_chart(
    series: Sequence[CallBucket], *, links: Sequence[str] | None = None
) -> dict[str, Any]:
    """Each bucket's own p50/p95/p99. A point opens that bucket's calls at or above the value,
    slowest first."""
    x = bucket_times(series)

    def extra(attr: str) -> list[str]:
        out = []
        for b in series:
            value = getattr(b, attr)
            floor = "" if value is None else f"&latency_min={math.floor(value / (1 + ALPHA))}"
            out.append("sort=-latency" + floor)
        return out

    traces = [
        go.Scatter(
            x=x,
            y=[getattr(b, attr) for b in series],
            name=name,
            mode="lines+markers",
            marker={"size": 4},
            connectgaps=False,
            line={"color": color, "width": 2},
            hovertemplate="%{y:,.0f} ms",
            customdata=point_links(links, extra(attr)),
        )
        for attr, name, color in (
            ("p50_ms", "p50", PALETTE[1]),
            ("p95_ms", "p95", PALETTE[3]),
            ("p99_ms", "p99", PALETTE[4]),
        )
    ]
    # Axis in ms without a suffix: "1,500 ms" labels get clipped on narrow cards.
    return figure_json(
        new_figure(
            traces,
            yaxis={
                "tickformat": ",.0f",
                "title": {"text": "ms", "font": {"size": 11, "color": MUTED}},
            },
        )
    )


def feedback_chart(series: Sequence[FeedbackBucket]) -> dict[str, Any]:
    x = bucket_times(series)
    fig = new_figure(
        [
            go.Scatter(
                x=x,
                y=[b.end_user_score for b in series],
                name="end-user score",
                mode="lines+markers",
                line={"color": PALETTE[0], "width": 2},
                marker={"size": 4},
                hovertemplate="%{y:.2f}",
            ),
            go.Scatter(
                x=x,
                y=[b.reviewer_score for b in series],
                name="reviewer score",
                mode="lines+markers",
                line={"color": PALETTE[2], "width": 2},
                marker={"size": 4},
                hovertemplate="%{y:.2f}",
            ),
            go.Bar(
                x=x,
                y=[b.negative_rate for b in series],
                name="negative share",
                marker_color="rgba(239,68,68,0.25)",
                hovertemplate="%{y:.0%}",
            ),
        ],
        yaxis={"range": [0, 1.05], "rangemode": "normal"},
    )
    return figure_json(fig)


def safety_chart(
    series: Sequence[CallBucket], *, links: Sequence[str] | None = None
) -> dict[str, Any]:
    x = bucket_times(series)
    traces = [
        go.Scatter(
            x=x,
            y=[b.rate(attr) for b in series],
            name=name,
            mode="lines",
            line={"width": 2, "color": color},
            hovertemplate="%{y:.1%}",
            # Only "flagged" is a calls filter; the other signals open the bucket's calls.
            customdata=point_links(links, "flagged=1" if attr == "flagged" else ""),
        )
        for attr, name, color in (
            ("flagged", "flagged", PALETTE[4]),
            ("injection", "prompt injection", PALETTE[5]),
            ("pii", "PII", PALETTE[3]),
            ("refusal", "refusal", PALETTE[8]),
            ("toxicity", "toxicity", PALETTE[7]),
        )
    ]
    peak = max((v for t in traces for v in t.y if v is not None), default=0.0)
    return figure_json(
        new_figure(traces, yaxis={"tickformat": ".0%", "range": [0, max(0.05, peak * 1.15)]})
    )


# --- Drift -------------------------------------------------------------------------------------
