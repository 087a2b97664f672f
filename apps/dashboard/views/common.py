"""Helpers shared by the UI views."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.models import Scope
from apps.core.errors import ApplicationError, NotFound
from apps.dashboard.access import ProjectAccess
from apps.dashboard.forms import ApiKeyCreateForm


def flash_error(request: HttpRequest, error: ApplicationError) -> None:
    """A service error: 404/403 become HTTP errors, anything else a message on the page."""
    if isinstance(error, NotFound) or error.status_code == 404:
        raise Http404(error.message)
    if error.status_code == 403:
        raise PermissionDenied(error.message)
    messages.error(request, error.message)


def onboarding_context(access: ProjectAccess) -> dict[str, Any]:
    """What the "send your first call" empty state needs."""
    return {
        "host": settings.DRIFTLINE_BASE_URL,
        "can_create_key": access.can_admin,
        "key_form": ApiKeyCreateForm(initial={"name": "sdk", "scopes": [Scope.INGEST]}),
    }


ONCE_PREFIX = "dashboard:once:"
# A secret waiting in the session for its one showing is dropped after this long.
ONCE_MAX_AGE_S = 600


def once_put(request: HttpRequest, name: str, data: dict[str, Any]) -> None:
    """Keep a just-created secret for the page that shows it, after a redirect (post/redirect/
    get: reloading that page must not create another). Sessions are server-side rows, so the
    secret never reaches a cookie; the page pops it, so it is shown once."""
    request.session[ONCE_PREFIX + name] = {**data, "_at": time.time()}


def once_pop(request: HttpRequest, name: str) -> dict[str, Any] | None:
    data: dict[str, Any] | None = request.session.pop(ONCE_PREFIX + name, None)
    if not data or time.time() - float(data.pop("_at", 0)) > ONCE_MAX_AGE_S:
        return None
    return data


def once_discard(request: HttpRequest) -> None:
    """Drop secrets nobody came to see (the redirect was not followed)."""
    for key in [k for k in request.session.keys() if k.startswith(ONCE_PREFIX)]:  # noqa: SIM118 - a session is not iterable
        request.session.pop(key, None)


def render_key_created(
    request: HttpRequest, access: ProjectAccess, *, raw: str, name: str, scopes: list[str]
) -> HttpResponse:
    """The page that shows a new key once (reached by a redirect after the POST, the key taken
    out of the session), with caching disabled."""
    response = render(
        request,
        "dashboard/key_created.html",
        {
            "raw_key": raw,
            "key_name": name,
            "scopes": scopes,
            "host": settings.DRIFTLINE_BASE_URL,
            "project": access.project,
            "is_ingest": Scope.INGEST in scopes,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string minus ``names`` (for pagination and filter links)."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()
