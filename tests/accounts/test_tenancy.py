"""One tenancy resolver: the API and the UI give the same answer for the same person."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import Organization, Project
from apps.accounts.tenancy import (
    SESSION_PROJECT_KEY,
    ProjectAmbiguous,
    ProjectNotFound,
    project_resolve,
)


@pytest.fixture
def second(organization: Organization) -> Project:
    return Project.objects.create(organization=organization, name="Sales bot", slug="sales-bot")


@pytest.mark.django_db
def test_resolver(alice: Any, project: Project, second: Project, other_project: Project) -> None:
    with pytest.raises(ProjectAmbiguous):
        project_resolve(user=alice, named=None, chosen=None)
    # A stale or foreign session choice is ignored, never "the first project".
    with pytest.raises(ProjectAmbiguous):
        project_resolve(user=alice, named=None, chosen=other_project.slug)
    with pytest.raises(ProjectNotFound):
        project_resolve(user=alice, named=other_project.slug, chosen=None)
    assert project_resolve(user=alice, named=None, chosen=second.slug) == second
    assert project_resolve(user=alice, named=project.slug, chosen=second.slug) == project
    second.delete()
    assert project_resolve(user=alice, named=None, chosen=None) == project


@pytest.mark.django_db
def test_api_and_ui_agree_on_an_ambiguous_project(
    alice: Any, project: Project, second: Project
) -> None:
    api = APIClient()
    api.force_login(alice)
    ambiguous = api.get("/api/v1/calls")
    assert ambiguous.status_code == 400
    assert ambiguous.json()["field"] == "project"
    assert api.get(f"/api/v1/calls?project={second.slug}").status_code == 200

    ui = Client()
    ui.force_login(alice)
    page = ui.get("/calls/")
    assert page.status_code == 200
    assert b"Choose a project" in page.content
    assert project.slug.encode() in page.content
    assert second.slug.encode() in page.content
    assert SESSION_PROJECT_KEY not in ui.session

    switched = ui.post("/project/switch/", {"project": second.slug, "next": "/calls/"})
    assert switched.status_code == 302
    assert ui.session[SESSION_PROJECT_KEY] == second.slug
    assert b"Choose a project" not in ui.get("/calls/").content
    # The API reads the same session choice.
    api_session = APIClient()
    api_session.cookies = ui.cookies
    assert api_session.get("/api/v1/calls").status_code == 200
