"""Reads for accounts: key lookup and who may see which project."""

from __future__ import annotations

import hmac

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import ApiKey, Invitation, Membership, Organization, Project, Role
from apps.accounts.services import hash_secret, parse_raw_key


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """The active key matching ``raw``, or None. Constant-time on the secret."""
    parsed = parse_raw_key(raw)
    if parsed is None:
        return None
    prefix, secret = parsed
    api_key = ApiKey.objects.select_related("project").filter(prefix=prefix).first()
    if api_key is None:
        # Spend the same hashing work so timing does not reveal which prefixes exist.
        hmac.compare_digest(hash_secret(secret), "0" * 64)
        return None
    if not hmac.compare_digest(hash_secret(secret), api_key.secret_hash):
        return None
    if api_key.revoked_at is not None:
        return None
    return api_key


def project_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if getattr(user, "is_superuser", False):
        return Project.objects.select_related("organization").order_by("slug")
    return (
        Project.objects.select_related("organization")
        .filter(organization__memberships__user_id=user.pk)
        .order_by("slug")
    )


def role_for_user(*, user: AbstractBaseUser | AnonymousUser, project: Project) -> str | None:
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return Role.OWNER
    membership = Membership.objects.filter(
        user_id=user.pk, organization_id=project.organization_id
    ).first()
    return membership.role if membership else None


def api_key_list(
    *, project: Project, name: str = "", scope: str = "", active: bool | None = None
) -> QuerySet[ApiKey]:
    """The project's keys, newest first; ``name`` matches a part of the name, ``scope`` one of
    the scopes, ``active`` keeps the unrevoked (True) or revoked (False) ones."""
    qs = ApiKey.objects.filter(project=project)
    if name:
        qs = qs.filter(name__icontains=name)
    if scope:
        qs = qs.filter(scopes__contains=[scope])
    if active is not None:
        qs = qs.filter(revoked_at__isnull=active)
    return qs.order_by("-created_at")


def invitation_for_token(*, token: str) -> Invitation | None:
    """The usable invitation of a link's token (unused, unrevoked, unexpired), or None."""
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("organization", "created_by")
        .filter(
            token_hash=hash_secret(token),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )


def invitation_list(*, organization: Organization) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(organization=organization)
        .select_related("created_by", "accepted_by")
        .order_by("-created_at")
    )
