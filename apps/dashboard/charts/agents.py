"""The agent graph of a trace."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from apps.traces.trace_selectors import AgentGraph

from .base import PALETTE, esc, figure_json, new_figure


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
    fig = new_figure(
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
