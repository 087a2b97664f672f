"""Template context: the projects the user can switch between, the current one and the role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.selectors import project_list_for_user
from apps.alerts.selectors import open_incident_count

NAV = (
    ("overview", "Overview", "/"),
    ("calls", "Calls", "/calls/"),
    ("sessions", "Sessions", "/sessions/"),
    ("prompts", "Prompts", "/prompts/"),
    ("compare", "Compare", "/compare/"),
    ("insights", "Cost", "/insights/"),
    ("drift", "Drift", "/drift/"),
    ("review", "Review", "/review/"),
    ("alerts", "Alerts", "/alerts/"),
    ("evaluators", "Evaluators", "/evaluators/"),
    ("users", "Users", "/users/"),
    ("agents", "Agents", "/agents/"),
    ("settings", "Settings", "/settings/"),
)


def project_context(request: HttpRequest) -> dict[str, Any]:
    # Set by dashboard.access.project_view for the page being rendered.
    access = getattr(request, "project_access", None)
    context: dict[str, Any] = {
        "current_project": access.project if access else None,
        "project_access": access,
        "nav": NAV,
    }
    user = getattr(request, "user", None)
    if access is not None and user is not None and user.is_authenticated:
        context["switch_projects"] = list(project_list_for_user(user=user)[:50])
        # One indexed count per page: the on-call engineer sees open incidents from anywhere.
        context["open_incidents"] = open_incident_count(project=access.project)
    section = request.path.strip("/").split("/", 1)[0]
    context["active_nav"] = section or "overview"
    return context
