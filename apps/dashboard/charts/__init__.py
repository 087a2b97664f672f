"""Selector rows in, plotly figures out (as plain JSON-ready dicts for a ``json_script`` island).

Plotly renders a subset of HTML in names, hover text and annotations, so every piece of text
that came from users or clients (intent names, model names, examples) goes through :func:`esc`
before it enters a figure. ``base`` holds the shared frame; the overview's charts are in
``traffic``, the drift page's in ``drift``, the trace graph in ``agents``.
"""

from .agents import agent_graph_chart
from .base import PALETTE, esc, figure_json
from .drift import (
    DETECTOR_LABELS,
    detector_chart,
    drift_detector_charts,
    drift_intent_share_chart,
    drift_map_chart,
    intent_map_chart,
    intent_share_chart,
)
from .traffic import (
    cost_chart,
    cost_outliers,
    feedback_chart,
    latency_chart,
    safety_chart,
    volume_chart,
)

__all__ = [
    "DETECTOR_LABELS",
    "PALETTE",
    "agent_graph_chart",
    "cost_chart",
    "cost_outliers",
    "detector_chart",
    "drift_detector_charts",
    "drift_intent_share_chart",
    "drift_map_chart",
    "esc",
    "feedback_chart",
    "figure_json",
    "intent_map_chart",
    "intent_share_chart",
    "latency_chart",
    "safety_chart",
    "volume_chart",
]
