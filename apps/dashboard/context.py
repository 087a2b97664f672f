"""Template context: the projects the user can switch between and the current one."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def project_context(request: HttpRequest) -> dict[str, Any]:
    return {"current_project": getattr(request, "project", None)}
