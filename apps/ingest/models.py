"""Rows the ingest path keeps of its own (the calls themselves live in ``apps.traces``)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from apps.accounts.models import Project


class OtlpLogEvent(models.Model):
    """A GenAI content event received on ``/v1/logs``, kept for the call of its span.

    Logs and spans are exported separately, in either order: an event whose call is not stored
    yet waits here (``applied_at`` null) and is merged when the span lands; one whose call is
    stored is merged at once. The call's content is always rebuilt from all its events, so a
    redelivered export (same ``event_key``, refused by the unique constraint) changes nothing.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    # The native id of the span's call (apps.ingest.otlp.span_event_id).
    call_id = models.UUIDField()
    # sha256 of the record's time, event name and body: the redelivery key.
    event_key = models.CharField(max_length=64)
    name = models.CharField(max_length=128)
    time_unix_nano = models.BigIntegerField(default=0)
    # Position in its export request: orders events of the same nanosecond.
    seq = models.IntegerField(default=0)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "call_id", "event_key"], name="otlp_log_event_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["project", "call_id"],
                name="otlp_log_event_pending",
                condition=models.Q(applied_at__isnull=True),
            ),
            models.Index(fields=["received_at"], name="otlp_log_event_received"),
        ]

    def __str__(self) -> str:
        return f"{self.name} for {self.call_id}"
