"""The Celery application. Workers start with ``celery -A apps worker``; routes and the beat
schedule are the data declared in :mod:`apps.queues` (read through the ``CELERY_*`` settings)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")

app = Celery("driftline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The processes of a prefork pool share the worker's cores: each sizes its model threads to its
# share (apps.embeddings.providers.model_threads reads this). Two embed processes of one thread
# each embed 1.2-1.4x as many texts a second on two cores as one process of two threads: one
# encodes while the other waits on PostgreSQL writing its vectors.
PROCESSES_ENV = "DRIFTLINE_WORKER_PROCESSES"
_controller: Any = None


@worker_init.connect
def _remember_controller(sender: Any = None, **_: Any) -> None:
    global _controller
    _controller = sender


@worker_process_init.connect
def _share_cores(**_: Any) -> None:
    """In a prefork child (the pool's size is resolved by then): note how many share the cores."""
    size = getattr(_controller, "concurrency", None)
    if isinstance(size, int) and size > 0:
        os.environ[PROCESSES_ENV] = str(size)
