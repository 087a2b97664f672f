"""Who may do what in a project: key scopes for API keys, roles for people.

| need   | API key scope   | session role             |
| ------ | --------------- | ------------------------ |
| ingest | ingest          | owner, member            |
| read   | read or admin   | owner, member, reviewer  |
| review | read or admin   | owner, member, reviewer  |
| admin  | admin           | owner, member            |
| owner  | (never)         | owner                    |
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.models import ApiKey, Project, Role
from apps.accounts.selectors import role_for_user
from apps.accounts.tenancy import (
    SESSION_PROJECT_KEY,
    ProjectAmbiguous,
    ProjectNotFound,
    project_resolve,
)

ROLES_FOR_NEED: dict[str, set[str]] = {
    "ingest": {Role.OWNER, Role.MEMBER},
    "read": {Role.OWNER, Role.MEMBER, Role.REVIEWER},
    "review": {Role.OWNER, Role.MEMBER, Role.REVIEWER},
    "admin": {Role.OWNER, Role.MEMBER},
    "owner": {Role.OWNER},
}
SCOPE_FOR_NEED: dict[str, str | None] = {
    "ingest": "ingest",
    "read": "read",
    "review": "read",
    "admin": "admin",
    "owner": None,
}


def role_allows(role: str | None, need: str) -> bool:
    return role is not None and role in ROLES_FOR_NEED[need]


def project_for_request(request: Request, *, scope: str, slug: str | None = None) -> Project:
    """The project this request acts on, checked for ``scope``; raises 401/403/404.

    A key acts on its own project only. A person names the project (``?project=<slug>``, a
    ``project`` field, or the one chosen in the UI session); a project the person is not a member
    of answers 404, so ids and slugs of other tenants cannot be probed.
    """
    auth = request.auth
    if isinstance(auth, ApiKey):
        required = SCOPE_FOR_NEED[scope]
        if required is None or not auth.has_scope(required):
            raise exceptions.PermissionDenied(f"this API key lacks the {required or scope!r} scope")
        return auth.project
    user = request.user
    if user is None or not user.is_authenticated:
        raise exceptions.NotAuthenticated("authentication required")
    named = slug or request.query_params.get("project") or _slug_from_body(request)
    chosen = request.session.get(SESSION_PROJECT_KEY) if hasattr(request, "session") else None
    try:
        project = project_resolve(user=user, named=named, chosen=chosen)
    except ProjectNotFound as exc:
        raise exceptions.NotFound("project: not found") from exc
    except ProjectAmbiguous:
        project = None
    if project is None:
        raise exceptions.ValidationError({"project": ["name the project (?project=<slug>)"]})
    if not role_allows(role_for_user(user=user, project=project), scope):
        raise exceptions.PermissionDenied(f"your role in this project does not allow {scope!r}")
    return project


def _slug_from_body(request: Request) -> str | None:
    try:
        data = request.data
    except exceptions.ParseError:
        return None
    value = data.get("project") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class HasScope(BasePermission):
    """Requires ``view.required_scope`` for the request's project (401/403/404/400 before the
    handler runs). A check only: the handler asks for the project itself with
    :func:`request_project`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        project_for_request(request, scope=getattr(view, "required_scope", "read"))
        return True


def request_project(request: Request, view: Any) -> Project:
    """The project of an API view behind :class:`HasScope`, checked for its required scope."""
    return project_for_request(request, scope=getattr(view, "required_scope", "read"))
