"""Helpers shared by the UI views."""

from __future__ import annotations

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


def render_key_created(
    request: HttpRequest, access: ProjectAccess, *, raw: str, name: str, scopes: list[str]
) -> HttpResponse:
    """The page that shows a new key once. Rendered straight from the POST (the raw key is
    never stored, not even in the session), with caching disabled."""
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
