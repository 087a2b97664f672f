"""Conversations (sessions) and end users."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.selectors.calls import call_signal_badges
from apps.traces.metrics import time_window
from apps.traces.session_selectors import session_detail, session_list, user_list

RANGES = ("24h", "7d", "30d")
PAGE = 50


def _page(request: HttpRequest) -> int:
    try:
        return max(0, min(int(request.GET.get("page", "0")), 1000))
    except ValueError:
        return 0


def _text(request: HttpRequest, key: str) -> str:
    return request.GET.get(key, "").replace("\x00", "").strip()[:255]


def _range(request: HttpRequest) -> str:
    value = request.GET.get("range", "7d")
    return value if value in RANGES else "7d"


@project_view("read")
def sessions(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    window, page = _range(request), _page(request)
    rows = session_list(
        project=access.project,
        start=time_window(window).start,
        user_id=_text(request, "user") or None,
        search=_text(request, "q") or None,
        limit=PAGE + 1,
        offset=page * PAGE,
    )
    return render(
        request,
        "dashboard/sessions.html",
        {
            "rows": rows[:PAGE],
            "has_next": len(rows) > PAGE,
            "page": page,
            "range": window,
            "ranges": RANGES,
            "q": _text(request, "q"),
            "user": _text(request, "user"),
        },
    )


@project_view("read")
def session(request: HttpRequest, access: ProjectAccess, session_id: str) -> HttpResponse:
    try:
        view = session_detail(project=access.project, session_id=session_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    turns = [
        {"turn": t, "badges": call_signal_badges(t.call), "negative": any(
            f.is_negative for f in t.feedback)}
        for t in view.turns
    ]  # fmt: skip
    return render(request, "dashboard/session_detail.html", {"view": view, "turns": turns})


@project_view("read")
def users(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    window, page = _range(request), _page(request)
    order = request.GET.get("order", "cost")
    order = order if order in ("cost", "calls", "last_seen") else "cost"
    rows = user_list(
        project=access.project,
        start=time_window(window).start,
        search=_text(request, "q") or None,
        order=order,
        limit=PAGE + 1,
        offset=page * PAGE,
    )
    return render(
        request,
        "dashboard/users.html",
        {
            "rows": rows[:PAGE],
            "has_next": len(rows) > PAGE,
            "page": page,
            "range": window,
            "ranges": RANGES,
            "order": order,
            "q": _text(request, "q"),
        },
    )
