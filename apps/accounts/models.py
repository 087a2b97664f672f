"""Organizations, projects, memberships and project API keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.core.models import TimestampedModel


class Organization(TimestampedModel):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)

    def __str__(self) -> str:
        return self.name


class Project(TimestampedModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=200)
    # Globally unique so scripts can name a project by slug alone.
    slug = models.SlugField(max_length=80, unique=True)
    # Days of raw calls kept; older partitions/rows are dropped by the retention task.
    retention_days = models.PositiveIntegerField(default=30)

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    OWNER = "owner"
    MEMBER = "member"
    REVIEWER = "reviewer"


class Membership(TimestampedModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_user_org_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.organization_id}:{self.role}"


class Scope(models.TextChoices):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


class ApiKey(TimestampedModel):
    """A project key ``dl_<prefix>_<secret>``: the prefix is shown, only a hash of the secret
    is kept.

    The secret has 256 bits of entropy, so a fast SHA-256 is enough (no password KDF needed)
    and the ingest hot path stays cheap.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120, default="default")
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"dl_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        # admin implies read; ingest stays separate so a leaked SDK key cannot read data.
        return scope in self.scopes or (scope == Scope.READ and Scope.ADMIN in self.scopes)


class Invitation(TimestampedModel):
    """A one-time link that lets someone create an account with a role in an organization.

    Only a SHA-256 of the token is kept (the link has 256 bits of entropy, as API keys do);
    the link is shown once to the admin who made it, and e-mailed when SMTP is configured.
    Accepting is a conditional UPDATE of ``accepted_at``, so a link works once.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(blank=True, default="")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    # "" (no mail server configured), "sent", or "failed: <reason>": shown to the admin.
    email_status = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.role})"
