"""Which project a UI request acts on, and what the person may do there.

The current project comes from :func:`apps.accounts.tenancy.project_resolve`, the resolver the
API uses too: ``?project=<slug>``, else the one chosen in the header switcher, else the person's
only project; with several and no choice, the page is a project chooser. A project the person
is not a member of answers 404 (its existence is not revealed); a role that does not allow the
page's need answers 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import render

from apps.accounts.models import Project
from apps.accounts.permissions import role_allows
from apps.accounts.selectors import project_list_for_user, role_for_user
from apps.accounts.tenancy import (
    SESSION_PROJECT_KEY,
    ProjectAmbiguous,
    ProjectNotFound,
    project_resolve,
)

SESSION_KEY = SESSION_PROJECT_KEY

P = ParamSpec("P")


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    role: str

    def allows(self, need: str) -> bool:
        return role_allows(self.role, need)

    @property
    def can_admin(self) -> bool:
        return self.allows("admin")

    @property
    def can_ingest(self) -> bool:
        return self.allows("ingest")

    @property
    def is_owner(self) -> bool:
        return self.allows("owner")


def project_access(request: HttpRequest) -> ProjectAccess | None:
    """The request's project and role; None when the person has no project at all. Raises
    ProjectAmbiguous when several projects fit and none was chosen (the caller shows a
    chooser)."""
    try:
        project = project_resolve(
            user=request.user,
            named=request.GET.get("project"),
            chosen=request.session.get(SESSION_KEY),
        )
    except ProjectNotFound as exc:
        raise Http404("project: not found") from exc
    if project is None:
        return None
    role = role_for_user(user=request.user, project=project)
    if role is None:  # pragma: no cover - project_list_for_user only lists member projects
        raise Http404("project: not found")
    if request.session.get(SESSION_KEY) != project.slug:
        request.session[SESSION_KEY] = project.slug
    return ProjectAccess(project=project, role=role)


def acting_user(request: HttpRequest) -> User:
    """The signed-in person (views behind ``project_view`` always have one)."""
    user = request.user
    if not isinstance(user, User):  # pragma: no cover - login_required runs first
        raise PermissionDenied("sign in first")
    return user


def project_view(
    need: str = "read",
) -> Callable[
    [Callable[Concatenate[HttpRequest, ProjectAccess, P], HttpResponseBase]],
    Callable[Concatenate[HttpRequest, P], HttpResponseBase],
]:
    """Decorate a view taking ``(request, access, ...)``: login, project, role ``need``."""

    def decorator(
        view: Callable[Concatenate[HttpRequest, ProjectAccess, P], HttpResponseBase],
    ) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            try:
                access = project_access(request)
            except ProjectAmbiguous:
                projects = project_list_for_user(user=request.user).order_by("name")
                return render(
                    request,
                    "dashboard/choose_project.html",
                    {"projects": projects, "next": request.path},
                    status=200,
                )
            if access is None:
                return render(request, "dashboard/no_project.html", status=200)
            # Read back by the template context processor (header, switcher, nav).
            request.project_access = access  # type: ignore[attr-defined]
            if not access.allows(need):
                raise PermissionDenied(f"your role in this project does not allow {need!r}")
            return view(request, access, *args, **kwargs)

        return cast(
            "Callable[Concatenate[HttpRequest, P], HttpResponseBase]", login_required(wrapper)
        )

    return decorator
