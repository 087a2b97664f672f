"""UI state kept per person: saved views of the calls explorer."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project
from apps.core.models import TimestampedModel


class SavedView(TimestampedModel):
    """A named calls-explorer query string of one person in one project. Only the explorer's
    own parameters are stored (``apps.dashboard.services.saved_view_save`` filters them), so
    applying a view is a link to ``/calls/?<query>``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    query = models.CharField(max_length=2000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "user", "name"], name="saved_view_unique_name"
            )
        ]
        indexes = [models.Index(fields=["project", "user", "name"], name="saved_view_lookup")]

    def __str__(self) -> str:
        return self.name
