"""The Celery application. Workers start with ``celery -A apps worker``; routes and the beat
schedule are the data declared in :mod:`apps.queues`."""

from __future__ import annotations

import os

from celery import Celery

from apps.queues import BEAT_SCHEDULE, TASK_ROUTES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")

app = Celery("driftline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = TASK_ROUTES
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()
