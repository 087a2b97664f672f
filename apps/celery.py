"""The Celery application. Workers start with ``celery -A apps worker``; routes and the beat
schedule are the data declared in :mod:`apps.queues` (read through the ``CELERY_*`` settings)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")

app = Celery("driftline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
