"""A trace as a tree and a timeline (waterfall), and the agent graph: which span calls which,
per trace and aggregated over a window."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from apps.accounts.models import Project
from apps.traces.models import Call

MAX_TRACE_SPANS = 2000
# Calls fetched for a trace's page: enough for a 1,000-span agent run, few columns.
_TRACE_FIELDS = (
    "project_id", "id", "parent_id", "trace_id", "name", "kind", "model", "status",
    "latency_ms", "start_time", "end_time", "input_tokens", "output_tokens", "cost_usd",
)  # fmt: skip


def trace_spans(*, project: Project, trace_id: str) -> list[Call]:
    if not trace_id:
        return []
    return list(
        Call.objects.filter(project=project, trace_id=trace_id)
        .order_by("start_time", "id")
        .only(*_TRACE_FIELDS)[:MAX_TRACE_SPANS]
    )


@dataclass(frozen=True)
class TimelineRow:
    call: Call
    depth: int
    offset_ms: float
    duration_ms: float
    left_pct: float
    width_pct: float
    children: int  # direct children, for collapsing
    path: str  # "0.3.1": the row's place in the tree, so a subtree can be folded by prefix


@dataclass(frozen=True)
class Timeline:
    rows: list[TimelineRow]
    total_ms: float
    truncated: bool


def trace_timeline(calls: list[Call]) -> Timeline:
    """Depth-first rows with start offsets and durations relative to the trace's span.

    Orphans (their parent not stored, or another trace's) are roots, so a partly ingested trace
    still renders; a parent cycle cannot loop (every call is placed once).
    """
    if not calls:
        return Timeline([], 0.0, False)
    t0 = min(c.start_time for c in calls)

    def duration(c: Call) -> float:
        if c.latency_ms is not None:
            return max(float(c.latency_ms), 0.0)
        if c.end_time is not None:
            return max((c.end_time - c.start_time).total_seconds() * 1000.0, 0.0)
        return 0.0

    ends = [(c.start_time - t0).total_seconds() * 1000.0 + duration(c) for c in calls]
    total = max(max(ends), 1e-3)
    ids = {c.id for c in calls}
    kids: dict[uuid.UUID | None, list[Call]] = {}
    for c in calls:
        parent = c.parent_id if c.parent_id in ids and c.parent_id != c.id else None
        kids.setdefault(parent, []).append(c)
    rows: list[TimelineRow] = []
    placed: set[uuid.UUID] = set()
    stack: list[tuple[Call, int, str]] = [
        (c, 0, str(i)) for i, c in reversed(list(enumerate(kids.get(None, []))))
    ]
    while stack:
        call, depth, path = stack.pop()
        if call.id in placed:
            continue
        placed.add(call.id)
        offset = (call.start_time - t0).total_seconds() * 1000.0
        dur = duration(call)
        children = kids.get(call.id, [])
        rows.append(
            TimelineRow(
                call=call,
                depth=depth,
                offset_ms=offset,
                duration_ms=dur,
                left_pct=round(100.0 * offset / total, 3),
                width_pct=round(max(100.0 * dur / total, 0.3), 3),
                children=len(children),
                path=path,
            )
        )
        stack.extend(
            (child, depth + 1, f"{path}.{i}") for i, child in reversed(list(enumerate(children)))
        )
    # Calls in a parent cycle are reachable from no root: list them at the end, flat.
    for call in calls:
        if call.id not in placed:
            offset = (call.start_time - t0).total_seconds() * 1000.0
            rows.append(
                TimelineRow(call, 0, offset, duration(call), round(100 * offset / total, 3),
                            round(max(100 * duration(call) / total, 0.3), 3), 0, str(len(rows)))
            )  # fmt: skip
    return Timeline(rows, total, len(calls) >= MAX_TRACE_SPANS)


@dataclass(frozen=True)
class GraphNode:
    name: str
    kind: str
    calls: int
    errors: int
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    calls: int
    errors: int
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class AgentGraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {"name": n.name, "kind": n.kind, "calls": n.calls,
                 "error_rate": round(n.error_rate, 4), "p95_ms": n.p95_ms}
                for n in self.nodes
            ],
            "edges": [
                {"source": e.source, "target": e.target, "calls": e.calls,
                 "error_rate": round(e.error_rate, 4), "p95_ms": e.p95_ms}
                for e in self.edges
            ],
        }  # fmt: skip


def _node_name(name: str, kind: str) -> str:
    return name or kind


def agent_graph(
    *,
    project: Project,
    trace_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    max_nodes: int = 60,
) -> AgentGraph:
    """Nodes are span names (the kind when unnamed), edges parent -> child with their count,
    the child's error rate and p95 latency. One trace, or every trace in [start, end)."""
    clauses = ["c.project_id = %s"]
    params: list[Any] = [project.pk]
    if trace_id:
        clauses.append("c.trace_id = %s")
        params.append(trace_id)
    if start is not None:
        clauses.append("c.start_time >= %s")
        params.append(start)
    if end is not None:
        clauses.append("c.start_time < %s")
        params.append(end)
    where = " AND ".join(clauses)
    # Parents are looked up in the same window, a few minutes wider, so a child that starts
    # just inside the window still finds a parent that started just before it.
    node_sql = f"""
        SELECT coalesce(nullif(c.name, ''), c.kind) AS node, min(c.kind), count(*),
               count(*) FILTER (WHERE c.status = 'error'),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms)
        FROM traces_call c WHERE {where} AND c.trace_id <> ''
        GROUP BY 1 ORDER BY 3 DESC LIMIT %s
    """  # noqa: S608 - constant clauses, bound values
    edge_sql = f"""
        SELECT coalesce(nullif(p.name, ''), p.kind), coalesce(nullif(c.name, ''), c.kind),
               count(*), count(*) FILTER (WHERE c.status = 'error'),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms)
        FROM traces_call c
        JOIN traces_call p ON p.project_id = c.project_id AND p.id = c.parent_id
             AND p.trace_id = c.trace_id
             AND p.start_time BETWEEN c.start_time - interval '1 day'
                                  AND c.start_time + interval '1 minute'
        WHERE {where} AND c.parent_id IS NOT NULL AND c.trace_id <> ''
        GROUP BY 1, 2 ORDER BY 3 DESC LIMIT %s
    """  # noqa: S608 - constant clauses, bound values
    with connection.cursor() as cursor:
        cursor.execute(node_sql, [*params, max_nodes])
        nodes = [GraphNode(r[0], r[1], r[2], r[3], r[4]) for r in cursor.fetchall()]
        cursor.execute(edge_sql, [*params, max_nodes * 4])
        names = {n.name for n in nodes}
        edges = [
            GraphEdge(r[0], r[1], r[2], r[3], r[4])
            for r in cursor.fetchall()
            if r[0] in names and r[1] in names
        ]
    return AgentGraph(nodes, edges)
