"""Reads for accounts: key lookup and who may see which project."""

from __future__ import annotations

import hmac

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from apps.accounts.models import ApiKey, Membership, Project, Role
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


def api_key_list(*, project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).order_by("-created_at")
