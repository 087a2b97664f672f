"""Per-project price overrides (negotiated rates, self-hosted models)."""

from __future__ import annotations

from django.db import models

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
