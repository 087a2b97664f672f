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
from apps.accounts.selectors import project_list_for_user, role_for_user

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
    slug = slug or request.query_params.get("project") or _slug_from_body(request)
    if not slug and hasattr(request, "session"):
        slug = request.session.get("project_slug")
    projects = project_list_for_user(user=user)
    if slug:
        project = projects.filter(slug=slug).first()
        if project is None:
            raise exceptions.NotFound("project: not found")
    else:
        candidates = list(projects[:2])
        if len(candidates) != 1:
            raise exceptions.ValidationError({"project": ["name the project (?project=<slug>)"]})
        project = candidates[0]
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
    """Requires ``view.required_scope`` for the request's project; the view reads the project
    back from ``request.project``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "required_scope", "read")
        request.project = project_for_request(request, scope=scope)  # type: ignore[attr-defined]
        return True


def HasProjectScope(scope: str) -> type[BasePermission]:
    """``permission_classes = [HasProjectScope("admin")]`` for views without ``required_scope``."""

    class _HasProjectScope(BasePermission):
        def has_permission(self, request: Request, view: Any) -> bool:
            request.project = project_for_request(request, scope=scope)  # type: ignore[attr-defined]
            return True

    return _HasProjectScope
