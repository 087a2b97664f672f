"""Selector rows in, plotly figures out (as plain JSON-ready dicts for a ``json_script`` island).

Plotly renders a subset of HTML in names, hover text and annotations, so every piece of text
that came from users or clients (intent names, model names, examples) goes through :func:`esc`
before it enters a figure.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from apps.traces.metrics import CallBucket, FeedbackBucket
from apps.traces.rollups import ALPHA
from apps.traces.trace_selectors import AgentGraph

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


def _figure(traces: Sequence[go.Figure | Any], **layout: Any) -> go.Figure:
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


def _x(buckets: Sequence[CallBucket | FeedbackBucket]) -> list[datetime]:
    return [b.bucket for b in buckets]


def _links(base: Sequence[str] | None, extra: str | Sequence[str] = "") -> list[str] | None:
    """Per point, the calls explorer's query string behind it (``customdata``; the page's
    chart_links.js opens ``/calls/?<it>`` on a click). ``base`` holds one query per bucket (its
    time range and the page's filters), ``extra`` the series' own filter, one for all points
    or one per point."""
    if base is None:
        return None
    extras = [extra] * len(base) if isinstance(extra, str) else list(extra)
    return [q + (f"&{e}" if e else "") for q, e in zip(base, extras, strict=True)]


def volume_chart(
    series: Sequence[CallBucket], *, links: Sequence[str] | None = None
) -> dict[str, Any]:
    x = _x(series)
    fig = _figure(
        [
            go.Bar(
                x=x,
                y=[b.calls - b.errors for b in series],
                name="ok",
                marker_color=PALETTE[0],
                customdata=_links(links, "status=ok"),
            ),
            go.Bar(
                x=x,
                y=[b.errors for b in series],
                name="errors",
                marker_color=PALETTE[4],
                customdata=_links(links, "status=error"),
            ),
            go.Scatter(
                x=x,
                y=[b.error_rate for b in series],
                name="error rate",
                yaxis="y2",
                mode="lines",
                line={"color": PALETTE[4], "width": 1.5, "dash": "dot"},
                hovertemplate="%{y:.1%}",
                customdata=_links(links, "status=error"),
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
    x = _x(series)
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
    fig = _figure(
        [
            go.Bar(
                x=x,
                y=cost,
                name="cost (USD)",
                marker_color=colors,
                hovertemplate="$%{y:.4f}",
                customdata=_links(links, "sort=-cost"),
            ),
            go.Scatter(
                x=x,
                y=[b.total_tokens for b in series],
                name="tokens",
                yaxis="y2",
                mode="lines",
                line={"color": PALETTE[5], "width": 2},
                customdata=_links(links, "sort=-tokens"),
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
    x = _x(series)

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
            customdata=_links(links, extra(attr)),
        )
        for attr, name, color in (
            ("p50_ms", "p50", PALETTE[1]),
            ("p95_ms", "p95", PALETTE[3]),
            ("p99_ms", "p99", PALETTE[4]),
        )
    ]
    # Axis in ms without a suffix: "1,500 ms" labels get clipped on narrow cards.
    return figure_json(
        _figure(
            traces,
            yaxis={
                "tickformat": ",.0f",
                "title": {"text": "ms", "font": {"size": 11, "color": MUTED}},
            },
        )
    )


def feedback_chart(series: Sequence[FeedbackBucket]) -> dict[str, Any]:
    x = _x(series)
    fig = _figure(
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
    x = _x(series)
    traces = [
        go.Scatter(
            x=x,
            y=[b.rate(attr) for b in series],
            name=name,
            mode="lines",
            line={"width": 2, "color": color},
            hovertemplate="%{y:.1%}",
            # Only "flagged" is a calls filter; the other signals open the bucket's calls.
            customdata=_links(links, "flagged=1" if attr == "flagged" else ""),
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
        _figure(traces, yaxis={"tickformat": ".0%", "range": [0, max(0.05, peak * 1.15)]})
    )


# --- Drift -------------------------------------------------------------------------------------


def detector_chart(
    *,
    times: Sequence[datetime],
    scores: Sequence[float | None],
    thresholds: Sequence[float | None],
    drifted: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """One detector's score over time against its calibrated threshold; drifted checks marked."""
    traces: list[Any] = [
        go.Scatter(
            x=list(times),
            y=list(scores),
            name="score",
            mode="lines+markers",
            line={"color": PALETTE[0], "width": 2},
            marker={"size": 5},
        ),
        go.Scatter(
            x=list(times),
            y=list(thresholds),
            name="threshold",
            mode="lines",
            line={"color": PALETTE[4], "width": 1.5, "dash": "dash"},
            line_shape="hv",
        ),
    ]
    if drifted is not None:
        hits = [(t, s) for t, s, d in zip(times, scores, drifted, strict=True) if d]
        if hits:
            traces.append(
                go.Scatter(
                    x=[t for t, _ in hits],
                    y=[s for _, s in hits],
                    name="drifted",
                    mode="markers",
                    marker={
                        "color": PALETTE[4],
                        "size": 9,
                        "symbol": "circle-open",
                        "line": {"width": 2},
                    },
                )
            )
    return figure_json(_figure(traces, height=240))


def intent_share_chart(
    *, times: Sequence[datetime], shares: Mapping[str, Sequence[float]]
) -> dict[str, Any]:
    """Stacked areas: each intent's share of the traffic per bucket (shares sum to 1)."""
    traces = [
        go.Scatter(
            x=list(times),
            y=list(values),
            name=esc(name, limit=40),
            mode="lines",
            stackgroup="one",
            line={"width": 0.5},
            hovertemplate="%{y:.1%}",
        )
        for name, values in shares.items()
    ]
    return figure_json(
        _figure(
            traces,
            height=340,
            yaxis={"tickformat": ".0%", "range": [0, 1]},
            xaxis={"nticks": 6, "tickangle": 0},
            legend={
                "orientation": "h",
                "y": -0.12,
                "x": 0,
                "yanchor": "top",
                "font": {"size": 11, "color": MUTED},
            },
            margin={"l": 48, "r": 16, "t": 8, "b": 8},
        )
    )


def intent_map_chart(*, points: Sequence[tuple[float, float, str, bool, str]]) -> dict[str, Any]:
    """The 2-D projection: (x, y, cluster name, is_baseline, example text) per point.
    Baseline points are hollow, current ones filled; colour is the cluster."""
    clusters = sorted({p[2] for p in points})
    traces = []
    for i, cluster in enumerate(clusters):
        color = PALETTE[i % len(PALETTE)]
        for baseline in (True, False):
            pts = [p for p in points if p[2] == cluster and p[3] == baseline]
            if not pts:
                continue
            traces.append(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    mode="markers",
                    name=f"{esc(cluster, limit=40)} ({'baseline' if baseline else 'current'})",
                    legendgroup=esc(cluster, limit=40),
                    text=[esc(p[4], limit=120) for p in pts],
                    hovertemplate="%{text}<extra>" + esc(cluster, limit=40) + "</extra>",
                    marker={
                        "color": "rgba(0,0,0,0)" if baseline else color,
                        "size": 6 if baseline else 7,
                        "line": {"color": color, "width": 1.2},
                        "opacity": 0.55 if baseline else 0.85,
                    },
                )
            )
    return figure_json(
        _figure(
            traces,
            height=420,
            hovermode="closest",
            xaxis={"showticklabels": False, "showgrid": False},
            yaxis={"showticklabels": False, "showgrid": False, "rangemode": "normal"},
            legend={"orientation": "v", "x": 1.02, "y": 1, "font": {"size": 11, "color": MUTED}},
            margin={"l": 8, "r": 8, "t": 8, "b": 8},
        )
    )


# --- Drift: from apps.drift.selectors rows -----------------------------------------------------


def _when(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


DETECTOR_LABELS = {
    "combined": "Combined drift score (-log10 p)",
    "centroid": "Centroid distance",
    "mmd": "MMD",
    "new_intent": "New-intent share",
    "intent_mix": "Intent mix (chi²)",
}


def drift_detector_charts(series: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One chart per detector (the combined score first) from ``drift_score_series`` rows:
    ``[{"key", "title", "figure", "last_drifted"}]``."""
    if not series:
        return []
    times = [_when(row["window_end"]) for row in series]
    out = [
        {
            "key": "combined",
            "title": DETECTOR_LABELS["combined"],
            "last_drifted": bool(series[-1].get("drifted")),
            "figure": detector_chart(
                times=times,
                scores=[row.get("score") for row in series],
                thresholds=[row.get("score_threshold") for row in series],
                drifted=[bool(row.get("drifted")) for row in series],
            ),
        }
    ]
    names = sorted({name for row in series for name in (row.get("detectors") or {})})
    for name in names:
        cells = [(row.get("detectors") or {}).get(name) or {} for row in series]
        out.append(
            {
                "key": esc(name, limit=40),
                "title": DETECTOR_LABELS.get(
                    name, esc(name.replace("_", " ").capitalize(), limit=40)
                ),
                "last_drifted": bool(cells[-1].get("drifted")),
                "figure": detector_chart(
                    times=times,
                    scores=[c.get("score") for c in cells],
                    thresholds=[c.get("threshold") for c in cells],
                    drifted=[bool(c.get("drifted")) for c in cells],
                ),
            }
        )
    return out


def drift_intent_share_chart(share_series: dict[str, Any]) -> dict[str, Any] | None:
    """Stacked shares per intent from ``intent_share_series``; None when there is nothing."""
    points = share_series.get("points") or []
    intents = share_series.get("intents") or []
    if not points or not intents:
        return None
    times = [_when(p["window_end"]) for p in points]
    shares: dict[str, list[float]] = {}
    for intent in intents:
        key = str(intent["id"])
        name = str(intent["name"])
        if name in shares:  # two clusters with the same name (different baselines)
            name = f"{name} #{key}"
        shares[name] = [
            float((p.get("shares") or {}).get(key, (p.get("shares") or {}).get(intent["id"], 0.0)))
            for p in points
        ]
    return intent_share_chart(times=times, shares=shares)


def drift_map_chart(projection: dict[str, Any], texts: dict[str, str]) -> dict[str, Any] | None:
    """The 2-D intent map from ``drift_projection`` (current points get their prompt text)."""
    points = projection.get("points") or []
    if not points:
        return None
    names = {c["index"]: str(c["name"]) for c in projection.get("clusters") or []}
    rows = [
        (
            float(p["x"]),
            float(p["y"]),
            names.get(p["cluster"], f"intent {p['cluster']}"),
            p["side"] == "baseline",
            texts.get(str(p.get("call_id")), "") if p.get("call_id") else "baseline sample",
        )
        for p in points
    ]
    return intent_map_chart(points=rows)


def agent_graph_chart(graph: AgentGraph) -> dict[str, Any]:
    """Parent -> child span flows as a Sankey diagram: link width is the call count, colour the
    child's error rate (red above 5%)."""
    names = [n.name for n in graph.nodes]
    index = {name: i for i, name in enumerate(names)}
    links = [e for e in graph.edges if e.source in index and e.target in index]
    link_colors = [
        "rgba(220,38,38,0.45)" if e.error_rate > 0.05 else "rgba(79,70,229,0.30)" for e in links
    ]
    hover = [
        f"{esc(e.source)} → {esc(e.target)}<br>{e.calls} calls, {e.error_rate:.1%} errors"
        + (f", p95 {e.p95_ms:.0f} ms" if e.p95_ms is not None else "")
        for e in links
    ]
    fig = _figure(
        [
            go.Sankey(
                arrangement="snap",
                node={
                    "label": [esc(n, limit=40) for n in names],
                    "pad": 14,
                    "thickness": 14,
                    "color": PALETTE[0],
                },
                link={
                    "source": [index[e.source] for e in links],
                    "target": [index[e.target] for e in links],
                    "value": [e.calls for e in links],
                    "color": link_colors,
                    "customdata": hover,
                    "hovertemplate": "%{customdata}<extra></extra>",
                },
            )
        ],
        height=max(260, min(40 * len(names), 720)),
    )
    return figure_json(fig)
