"""The Celery application. Workers start with ``celery -A apps worker``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")

app = Celery("driftline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _configure_routes(sender: Celery, **_: object) -> None:
    from apps.queues import BEAT_SCHEDULE, TASK_ROUTES

    sender.conf.task_routes = TASK_ROUTES
    sender.conf.beat_schedule = BEAT_SCHEDULE
