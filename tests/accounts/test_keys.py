"""API keys: shown once, stored hashed, scoped, revocable; the create_api_key command."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import ApiKey, Project
from apps.accounts.selectors import api_key_authenticate
from apps.accounts.services import api_key_create, api_key_revoke
from apps.core.errors import ApplicationError


@pytest.mark.django_db
def test_key_is_stored_hashed_and_authenticates(project: Project) -> None:
    created = api_key_create(project=project, scopes=["ingest", "read"])
    stored = ApiKey.objects.get(pk=created.api_key.pk)
    assert created.raw.startswith(f"dl_{stored.prefix}_")
    secret = created.raw.split("_", 2)[2]
    assert secret not in stored.secret_hash
    assert created.raw not in str(stored.__dict__)
    assert api_key_authenticate(raw=created.raw) == stored
    assert api_key_authenticate(raw=created.raw + "x") is None
    assert api_key_authenticate(raw=f"dl_{stored.prefix}_wrong") is None
    api_key_revoke(api_key=stored)
    assert api_key_authenticate(raw=created.raw) is None


@pytest.mark.django_db
def test_unknown_scope_is_refused(project: Project) -> None:
    with pytest.raises(ApplicationError, match="unknown scopes: write"):
        api_key_create(project=project, scopes=["write"])


@pytest.mark.django_db
def test_create_api_key_command_prints_the_key_last(project: Project) -> None:
    out = io.StringIO()
    call_command(
        "create_api_key",
        "--project",
        project.slug,
        "--scopes",
        "ingest,read",
        "--name",
        "ci",
        stdout=out,
        stderr=io.StringIO(),
    )
    raw = out.getvalue().strip().splitlines()[-1]
    key = api_key_authenticate(raw=raw)
    assert key is not None
    assert key.project == project
    assert key.scopes == ["ingest", "read"]
    with pytest.raises(CommandError, match="no project"):
        call_command("create_api_key", "--project", "nope", stdout=out)
