"""The drift page's charts: detector scores, intent shares and the intent map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from .base import MUTED, PALETTE, esc, figure_json, new_figure


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
    return figure_json(new_figure(traces, height=240))


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
        new_figure(
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
        new_figure(
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
