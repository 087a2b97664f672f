"""Which project a person's request acts on: one resolver for the API and the UI.

The answer, in order: the project the request names (``?project=<slug>`` or a ``project``
field), else the one chosen in the UI session (the header switcher), else the person's only
project. A named project the person is not a member of is "not found" (other tenants' slugs
cannot be probed); a stale session choice is ignored; several projects and no choice is
ambiguous: the API answers 400, the UI shows a project chooser. Never "the first project".

API keys do not come here: a key acts on its own project only.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from apps.accounts.models import Project
from apps.accounts.selectors import project_list_for_user

# The session key holding the slug chosen in the UI's project switcher (read by the API too,
# for the UI's own fetches).
SESSION_PROJECT_KEY = "project_slug"


class ProjectNotFound(Exception):
    """The named project does not exist or the person is not a member."""


class ProjectAmbiguous(Exception):
    """The person has several projects and none was named or chosen."""


def project_resolve(
    *, user: AbstractBaseUser | AnonymousUser, named: str | None, chosen: str | None
) -> Project | None:
    """The project ``user`` acts on (``named`` by the request, ``chosen`` in the session);
    None when the person has no project at all."""
    projects = project_list_for_user(user=user)
    if named:
        project = projects.filter(slug=named).first()
        if project is None:
            raise ProjectNotFound(named)
        return project
    if chosen:
        project = projects.filter(slug=chosen).first()
        if project is not None:
            return project
    candidates = list(projects[:2])
    if len(candidates) > 1:
        raise ProjectAmbiguous
    return candidates[0] if candidates else None
