from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _partitions_ensure(sender: AppConfig, **kwargs: Any) -> None:
    """After every ``migrate`` (a deploy's migration job, ``make run``): this month's calls
    partition and the next ones exist, even before beat's first hourly run."""
    from django.db import connections

    from apps.traces.partitions import PARENT, partitions_ensure

    connection = connections[kwargs.get("using") or "default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [PARENT])
        row = cursor.fetchone()
    if row and row[0] == "p":  # partitioned (migration 0004 applied)
        partitions_ensure()


class TracesConfig(AppConfig):
    name = "apps.traces"
    label = "traces"

    def ready(self) -> None:
        post_migrate.connect(_partitions_ensure, sender=self)
