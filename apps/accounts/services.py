"""Writes for organizations, projects, memberships and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import ApiKey, Membership, Organization, Project, Role, Scope
from apps.core.errors import ApplicationError

KEY_PREFIX = "dl_"


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    raw: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_raw_key(raw: str) -> tuple[str, str] | None:
    """Split ``dl_<prefix>_<secret>``; None when it is not shaped like one of our keys."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not sep or not prefix or not secret or len(prefix) > 16:
        return None
    return prefix, secret


def organization_create(*, name: str, slug: str | None = None) -> Organization:
    return Organization.objects.create(name=name, slug=slug or slugify(name)[:80])


def project_create(*, organization: Organization, name: str, slug: str | None = None) -> Project:
    """Slugs are unique on the instance (scripts name a project by slug alone); a taken one is
    answered the same whoever owns it, so that nobody learns of another tenant's projects."""
    chosen = bool(slug)
    slug = slug or slugify(name)[:80] or "project"
    if not chosen and Project.objects.filter(slug=slug).exists():
        slug = f"{slug[:73]}-{secrets.token_hex(3)}"
    try:
        with transaction.atomic():
            return Project.objects.create(organization=organization, name=name, slug=slug)
    except IntegrityError as exc:
        raise ApplicationError(
            f"slug: {slug!r} is not available; choose another", field="slug"
        ) from exc


def membership_set(*, user: AbstractBaseUser, organization: Organization, role: str) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r}", field="role")
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    return membership


def api_key_create(
    *,
    project: Project,
    name: str = "default",
    scopes: list[str] | tuple[str, ...] = (Scope.INGEST,),
    created_by: User | None = None,
) -> CreatedKey:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ApplicationError(f"unknown scopes: {', '.join(unknown)}", field="scopes")
    if not scopes:
        raise ApplicationError("a key needs at least one scope", field="scopes")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        project=project,
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    return CreatedKey(api_key=api_key, raw=f"{KEY_PREFIX}{prefix}_{secret}")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    # Conditional so a second revoke keeps the first timestamp.
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


@transaction.atomic
def demo_setup(*, admin: AbstractBaseUser) -> tuple[Project, CreatedKey | None]:
    """The demo organization and project of ``make run``; idempotent."""
    organization, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
    project, _ = Project.objects.get_or_create(
        slug="demo", defaults={"organization": organization, "name": "Demo app"}
    )
    membership_set(user=admin, organization=organization, role=Role.OWNER)
    return project, None
