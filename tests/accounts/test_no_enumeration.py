"""An owner can neither enroll nor detect another tenant's users or projects."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.accounts.models import Membership, Project, Role


def _flash(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_adding_a_member_reaches_only_users_of_the_same_organization(
    alice: Any, bob: Any, charlie: Any, organization: Any, project: Project
) -> None:
    client = Client()
    client.force_login(alice)
    answers = []
    for name in ("charlie", "charlie@example.com", "nobody-at-all"):
        client = Client()  # a fresh one: unread messages would pile up
        client.force_login(alice)
        response = client.post("/settings/members/", {"username": name, "role": "reviewer"})
        assert response.status_code == 302
        answers.append(_flash(response))
    assert answers[0] == answers[1] == answers[2], answers  # the same whoever exists
    assert "not a member of this organization" in answers[0][0]
    assert not Membership.objects.filter(user=charlie, organization=organization).exists()
    response = client.post("/settings/members/", {"username": "bob", "role": "reviewer"})
    assert "is now reviewer" in _flash(response)[-1]
    assert Membership.objects.get(user=bob, organization=organization).role == Role.REVIEWER


@pytest.mark.django_db
def test_a_slug_clash_answers_the_same_whoever_owns_it(
    alice: Any, project: Project, other_project: Project
) -> None:
    client = Client()
    client.force_login(alice)
    answers = []
    for slug in (project.slug, other_project.slug):
        client = Client()
        client.force_login(alice)
        response = client.post("/settings/projects/", {"name": "New", "slug": slug})
        answers.append([m.replace(slug, "<slug>") for m in _flash(response)])
    assert answers[0] == answers[1], answers
    assert "not available" in answers[0][0]
    assert Project.objects.filter(name="New").count() == 0
    # Without a slug, a name whose slug is taken elsewhere still gets a project.
    client.post("/settings/projects/", {"name": "Globex bot"})
    created = Project.objects.get(name="Globex bot", organization=project.organization)
    assert created.slug.startswith("globex-bot-")
