"""Reads of conversations (sessions) and end users: lists with their metrics, and one session
as its turns in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count

from apps.accounts.models import Project
from apps.core.errors import NotFound
from apps.traces.group_metrics import GroupMetrics, group_metrics
from apps.traces.models import Call, Feedback

MAX_SESSION_CALLS = 2000


def session_list(
    *,
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    user_id: str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[tuple[GroupMetrics, str]]:
    """Sessions, most recent first, each with its end user (the first one seen)."""
    where = {"end_user_id": user_id} if user_id else None
    rows = group_metrics(
        project_id=project.pk,
        group_by=["session_id"],
        start=start,
        end=end,
        where=where,
        search=search,
        limit=limit,
        offset=offset,
    )
    users: dict[str, str] = {}
    if rows:
        for session_id, user in (
            Call.objects.filter(project=project, session_id__in=[r.key[0] for r in rows])
            .exclude(end_user_id="")
            .order_by("session_id", "start_time")
            .distinct("session_id")
            .values_list("session_id", "end_user_id")
        ):
            users[session_id] = user
    return [(row, users.get(row.key[0], "")) for row in rows]


@dataclass
class Turn:
    """One turn of a conversation: the root call of a trace and the calls below it."""

    call: Call
    children: list[tuple[Call, int]] = field(default_factory=list)  # (call, depth) depth-first
    feedback: list[Feedback] = field(default_factory=list)


@dataclass(frozen=True)
class SessionView:
    session_id: str
    user_id: str
    turns: list[Turn]
    metrics: GroupMetrics
    truncated: bool


def session_detail(*, project: Project, session_id: str) -> SessionView:
    calls = list(
        Call.objects.filter(project=project, session_id=session_id).order_by("start_time", "id")[
            : MAX_SESSION_CALLS + 1
        ]
    )
    if not calls:
        raise NotFound("session: not found")
    truncated = len(calls) > MAX_SESSION_CALLS
    calls = calls[:MAX_SESSION_CALLS]
    metrics = group_metrics(
        project_id=project.pk, group_by=["session_id"], where={"session_id": session_id}
    )[0]
    ids = {c.id for c in calls}
    by_parent: dict[object, list[Call]] = {}
    roots: list[Call] = []
    for call in calls:
        if call.parent_id is not None and call.parent_id in ids:
            by_parent.setdefault(call.parent_id, []).append(call)
        else:
            roots.append(call)
    feedback: dict[object, list[Feedback]] = {}
    for fb in Feedback.objects.filter(project=project, call_id__in=list(ids)).order_by(
        "created_at"
    ):
        feedback.setdefault(fb.call_id, []).append(fb)
    turns = []
    for root in roots:
        turn = Turn(call=root, feedback=feedback.get(root.id, []))
        stack = [(child, 1) for child in reversed(by_parent.get(root.id, []))]
        while stack:
            child, depth = stack.pop()
            turn.children.append((child, depth))
            turn.feedback.extend(feedback.get(child.id, []))
            stack.extend((c, depth + 1) for c in reversed(by_parent.get(child.id, [])))
        turns.append(turn)
    user = next((c.end_user_id for c in calls if c.end_user_id), "")
    return SessionView(session_id, user, turns, metrics, truncated)


def user_list(
    *,
    project: Project,
    start: datetime | None = None,
    search: str | None = None,
    order: str = "cost",
    limit: int = 50,
    offset: int = 0,
) -> list[tuple[GroupMetrics, int]]:
    """End users with their metrics (costliest first by default) and their session count."""
    rows = group_metrics(
        project_id=project.pk,
        group_by=["end_user_id"],
        start=start,
        search=search,
        order=order,
        limit=limit,
        offset=offset,
    )
    sessions: dict[str, int] = {}
    if rows:
        qs = Call.objects.filter(project=project, end_user_id__in=[r.key[0] for r in rows])
        if start is not None:
            qs = qs.filter(start_time__gte=start)
        for user, n in (
            qs.exclude(session_id="")
            .values_list("end_user_id")
            .annotate(n=Count("session_id", distinct=True))
            .values_list("end_user_id", "n")
        ):
            sessions[user] = n
    return [(row, sessions.get(row.key[0], 0)) for row in rows]
