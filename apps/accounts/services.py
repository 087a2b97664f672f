"""Writes for organizations, projects, memberships and API keys."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.models import AbstractBaseUser, User
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import (
    ApiKey,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
    Scope,
)
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

KEY_PREFIX = "dl_"
INVITATION_TTL = timedelta(days=7)
RETENTION_MIN_DAYS = 1
RETENTION_MAX_DAYS = 3650


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


def project_retention_set(*, project: Project, days: int) -> Project:
    """Days of raw calls kept (the retention task drops older ones)."""
    if not RETENTION_MIN_DAYS <= days <= RETENTION_MAX_DAYS:
        raise ApplicationError(
            f"retention_days: between {RETENTION_MIN_DAYS} and {RETENTION_MAX_DAYS}",
            field="retention_days",
        )
    project.retention_days = days
    project.save(update_fields=["retention_days", "updated_at"])
    return project


# --- Invitations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedInvitation:
    invitation: Invitation
    token: str  # shown once (in the link), never stored


def invitation_create(
    *,
    organization: Organization,
    role: str,
    email: str = "",
    created_by: User | None = None,
    ttl: timedelta = INVITATION_TTL,
) -> CreatedInvitation:
    if role not in Role.values:
        raise ApplicationError(f"role: unknown role {role!r}", field="role")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email.strip(),
        role=role,
        token_hash=hash_secret(token),
        created_by=created_by,
        expires_at=timezone.now() + ttl,
    )
    return CreatedInvitation(invitation=invitation, token=token)


def invitation_email_send(*, invitation: Invitation, link: str) -> str:
    """E-mail the link when SMTP is configured (``EMAIL_HOST``); the outcome is stored on the
    invitation for the admin to see. No mail server is the default: the admin copies the link."""
    if not invitation.email or not settings.EMAIL_HOST:
        return ""
    inviter = invitation.created_by.get_username() if invitation.created_by else "An admin"
    try:
        send_mail(
            subject=f"You are invited to {invitation.organization.name} on Driftline",
            message=(
                f"{inviter} invited you to {invitation.organization.name} on Driftline as "
                f"{invitation.role}.\n\nChoose a username and password here (the link works "
                f"once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[invitation.email],
            fail_silently=False,
        )
        status = "sent"
    except (OSError, ValueError) as exc:  # smtplib errors are OSErrors
        logger.warning("invitation e-mail failed", extra={"invitation_id": invitation.pk})
        status = f"failed: {exc}"[:255]
    Invitation.objects.filter(pk=invitation.pk).update(email_status=status)
    invitation.email_status = status
    return status


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    Invitation.objects.filter(
        pk=invitation.pk, revoked_at__isnull=True, accepted_at__isnull=True
    ).update(revoked_at=timezone.now())
    invitation.refresh_from_db(fields=["revoked_at"])
    return invitation


def invitation_accept(*, token: str, username: str, password: str, email: str = "") -> User:
    """Create the invitee's account and membership; the link is spent in the same transaction
    (a conditional UPDATE, so two submissions of one link make one account)."""
    from apps.accounts.selectors import invitation_for_token

    invitation = invitation_for_token(token=token)
    if invitation is None:
        raise ApplicationError("invitation: this link is invalid, used or expired", field="token")
    username = username.strip()
    if not username or len(username) > 150:
        raise ApplicationError("username: 1 to 150 characters", field="username")
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError("username: taken; choose another", field="username")
    candidate = User(username=username, email=email or invitation.email)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ApplicationError("password: " + " ".join(exc.messages), field="password") from exc
    with transaction.atomic():
        spent = Invitation.objects.filter(
            pk=invitation.pk,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        ).update(accepted_at=timezone.now())
        if not spent:
            raise ApplicationError(
                "invitation: this link is invalid, used or expired", field="token"
            )
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    username=username, email=candidate.email, password=password
                )
        except IntegrityError as exc:  # the same username taken a moment ago
            raise ApplicationError("username: taken; choose another", field="username") from exc
        Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
        membership_set(user=user, organization=invitation.organization, role=invitation.role)
    return user


@transaction.atomic
def demo_setup(*, admin: AbstractBaseUser) -> tuple[Project, CreatedKey | None]:
    """The demo organization and project of ``make run``; idempotent."""
    organization, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
    project, _ = Project.objects.get_or_create(
        slug="demo", defaults={"organization": organization, "name": "Demo app"}
    )
    membership_set(user=admin, organization=organization, role=Role.OWNER)
    return project, None
