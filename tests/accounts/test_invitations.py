"""Invitations: a hashed one-time token with an expiry; accepting makes the account and the
membership with the invitation's role, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from apps.accounts.models import Invitation, Membership, Role
from apps.accounts.selectors import api_key_list, invitation_for_token
from apps.accounts.services import (
    api_key_create,
    api_key_revoke,
    hash_secret,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    project_retention_set,
)
from apps.core.errors import ApplicationError

PASSWORD = "a long enough pass phrase"


@pytest.mark.django_db
def test_only_a_hash_of_the_token_is_stored(organization) -> None:
    created = invitation_create(organization=organization, role=Role.REVIEWER)
    row = Invitation.objects.get()
    assert created.token not in row.token_hash
    assert row.token_hash == hash_secret(created.token)
    assert row.expires_at > timezone.now() + timedelta(days=6)
    assert invitation_for_token(token=created.token) == row
    assert invitation_for_token(token=created.token + "x") is None


@pytest.mark.django_db
def test_accepting_makes_the_account_with_the_role_once(organization) -> None:
    created = invitation_create(organization=organization, role=Role.REVIEWER, email="r@x.io")
    user = invitation_accept(token=created.token, username="rosa", password=PASSWORD)
    assert user.check_password(PASSWORD)
    assert user.email == "r@x.io"
    membership = Membership.objects.get(user=user)
    assert (membership.organization_id, membership.role) == (organization.pk, Role.REVIEWER)
    row = Invitation.objects.get()
    assert row.accepted_at is not None
    assert row.accepted_by_id == user.pk
    with pytest.raises(ApplicationError, match="invalid, used or expired"):
        invitation_accept(token=created.token, username="rosa2", password=PASSWORD)
    assert not User.objects.filter(username="rosa2").exists()


@pytest.mark.django_db
def test_expired_and_revoked_links_do_not_work(organization) -> None:
    expired = invitation_create(organization=organization, role="member", ttl=timedelta(0))
    with pytest.raises(ApplicationError, match="expired"):
        invitation_accept(token=expired.token, username="late", password=PASSWORD)
    revoked = invitation_create(organization=organization, role="member")
    invitation_revoke(invitation=revoked.invitation)
    assert invitation_for_token(token=revoked.token) is None
    with pytest.raises(ApplicationError):
        invitation_accept(token=revoked.token, username="late", password=PASSWORD)
    assert not User.objects.filter(username="late").exists()


@pytest.mark.django_db
def test_a_weak_password_or_taken_username_spends_nothing(organization, alice) -> None:
    created = invitation_create(organization=organization, role="member")
    with pytest.raises(ApplicationError, match="password"):
        invitation_accept(token=created.token, username="newbie", password="123")
    with pytest.raises(ApplicationError, match="username: taken"):
        invitation_accept(token=created.token, username="ALICE", password=PASSWORD)
    assert invitation_for_token(token=created.token) is not None  # still usable
    invitation_accept(token=created.token, username="newbie", password=PASSWORD)


@pytest.mark.django_db
def test_unknown_role_is_refused(organization) -> None:
    with pytest.raises(ApplicationError, match="role"):
        invitation_create(organization=organization, role="superuser")


@pytest.mark.django_db
def test_retention_is_validated(project) -> None:
    assert project_retention_set(project=project, days=90).retention_days == 90
    project.refresh_from_db()
    assert project.retention_days == 90
    for bad in (0, -1, 3651):
        with pytest.raises(ApplicationError, match="retention_days"):
            project_retention_set(project=project, days=bad)
    project.refresh_from_db()
    assert project.retention_days == 90


@pytest.mark.django_db
def test_keys_filter_by_name_scope_and_status(project, other_project) -> None:
    sdk = api_key_create(project=project, name="SDK prod", scopes=["ingest"]).api_key
    reader = api_key_create(project=project, name="reader", scopes=["read"]).api_key
    old = api_key_create(project=project, name="old sdk", scopes=["ingest", "admin"]).api_key
    api_key_revoke(api_key=old)
    api_key_create(project=other_project, name="sdk", scopes=["ingest"])

    def names(**kw) -> set[str]:
        return {k.name for k in api_key_list(project=project, **kw)}

    assert names(name="sdk") == {sdk.name, old.name}
    assert names(scope="ingest") == {sdk.name, old.name}
    assert names(scope="admin") == {old.name}
    assert names(active=True) == {sdk.name, reader.name}
    assert names(active=False) == {old.name}
    assert names(name="sdk", active=True) == {sdk.name}
