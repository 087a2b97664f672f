"""Per-project price overrides (negotiated rates, self-hosted models) and review requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Project
from apps.core.models import TimestampedModel


class PriceOverride(TimestampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="price_overrides")
    # A glob on the model name, e.g. "gpt-4o*"; the most specific match wins.
    model_pattern = models.CharField(max_length=255)
    input_per_mtok = models.FloatField(help_text="USD per million input tokens")
    output_per_mtok = models.FloatField(help_text="USD per million output tokens")
    cached_input_per_mtok = models.FloatField(null=True, blank=True)
    reasoning_per_mtok = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "model_pattern"], name="price_override_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.model_pattern}"


class ReviewRequest(models.Model):
    """A call someone asked reviewers to label (a batch: a new drift intent, say), shown in the
    review queue's "Requested" mode until a reviewer labels it. Unique per (call, batch), so
    sending the same sample twice queues it once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    call_id = models.UUIDField()
    batch = models.CharField(max_length=200)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "call_id", "batch"], name="reviewrequest_call_batch"
            )
        ]
        indexes = [models.Index(fields=["project", "batch"], name="reviewrequest_batch")]

    def __str__(self) -> str:
        return f"review of {self.call_id} ({self.batch})"


class SafetySettings(TimestampedModel):
    """A project's operating points: the benign false-positive rate each learned safety flag is
    set for. A null field keeps the deployment's default (``DRIFTLINE_SAFETY_FPR[_<SIGNAL>]``,
    else 1%). Allowed values: :data:`apps.quality.scorers.learned.FPR_CHOICES`."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="safety_settings"
    )
    injection_fpr = models.FloatField(null=True, blank=True)
    toxicity_fpr = models.FloatField(null=True, blank=True)
    refusal_fpr = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.project_id}: safety settings"
