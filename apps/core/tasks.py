"""Housekeeping tasks on the default queue."""

from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from apps.core.models import WorkerHeartbeat


@shared_task(ignore_result=True)
def heartbeat() -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=socket.gethostname(), defaults={"beat_at": timezone.now()}
    )
