"""Monthly partitions of ``traces_call``: created ahead, and dropped by retention.

* :func:`partitions_ensure` (beat, hourly, and after every ``migrate``) creates the partitions
  of last month, this month and the next ``AHEAD`` months. Creating one takes a short
  ``ACCESS EXCLUSIVE`` lock on the parent, so it is done weeks before the month starts, never
  on the ingest path. Rows that landed in the ``DEFAULT`` partition for the new month's range
  (a client clock far ahead) are moved in first, or PostgreSQL would refuse the new partition.
* :func:`calls_retention_apply` (beat, daily) drops every partition that ends before the
  longest retention of any project (``DETACH`` then ``DROP``: no row-by-row delete, no bloat),
  then trims projects with a shorter retention by a batched ``DELETE`` that only touches the
  oldest live partitions. The calls' ids (``CallId``), vectors and feedback go with them.
  Rollups are kept: charts still cover dropped months.

Bounds are UTC month starts. See docs/partitioning.md for the design and its trade-offs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

logger = logging.getLogger(__name__)

PARENT = "traces_call"
DEFAULT = "traces_call_default"
AHEAD = 3
# Last month too: late data (an SDK spool replayed, a backfill, a demo history) mostly lands
# within weeks of now, and belongs in a partition rather than the default one.
BEHIND = 1
DELETE_BATCH = 10_000


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime
    end: datetime


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def month_add(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_p{month:%Y_%m}"


def partitions() -> list[Partition]:
    """The range partitions of the calls table, oldest first (the default one left out)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)'))
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
            """,
            [PARENT],
        )
        rows = cursor.fetchall()
    out = []
    for name, bounds in rows:
        start, end = (datetime.fromisoformat(b).astimezone(UTC) for b in bounds)
        out.append(Partition(name=name, start=start, end=end))
    return sorted(out, key=lambda p: p.start)


def partition_create(month: datetime) -> bool:
    """Create the partition of ``month`` unless it exists; True when created."""
    start, end = month, month_add(month, 1)
    name = partition_name(month)
    # Identifiers are built from a date; bounds are bound parameters where SQL allows them
    # (partition bounds must be literals: they are formatted from datetimes, never user input).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        row = cursor.fetchone()
        if row and row[0] is not None:
            return False
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        # Rows of this range that went to the default partition move in first.
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT} "  # noqa: S608 - identifiers are ours
            "WHERE start_time >= %s AND start_time < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    logger.info("calls partition %s created (%d rows moved from the default)", name, moved)
    return True


def partitions_ensure(
    *, now: datetime | None = None, ahead: int = AHEAD, behind: int = BEHIND
) -> list[str]:
    """Create the partitions from ``behind`` months ago to ``ahead`` months ahead (unless a
    retention already dropped that far back); returns the names created."""
    this_month = month_start(now or timezone.now())
    existing = partitions()
    first = month_add(this_month, -behind)
    if existing and existing[0].start > first and existing[0].start <= this_month:
        first = existing[0].start  # never re-create a month that retention dropped
    months = []
    month = first
    while month <= month_add(this_month, ahead):
        months.append(month)
        month = month_add(month, 1)
    return [partition_name(m) for m in months if partition_create(m)]


@dataclass(frozen=True)
class RetentionOutcome:
    dropped: list[str]
    calls_deleted: int


def _delete_batched(sql: str, params: list[Any]) -> int:
    """Run a ``DELETE ... LIMIT %s`` until it deletes less than a batch; one short transaction
    a batch, so vacuum and replicas keep up."""
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [*params, DELETE_BATCH])
            deleted = int(cursor.rowcount)
        total += deleted
        if deleted < DELETE_BATCH:
            return total


def _forget_calls_before(cutoff: datetime, *, project_id: int) -> int:
    """The ids, vectors and orphaned feedback of a project's calls that started before
    ``cutoff`` (the calls themselves are gone by now)."""
    total = _delete_batched(
        "DELETE FROM embeddings_callembedding WHERE id IN (SELECT id FROM "
        "embeddings_callembedding WHERE project_id = %s AND start_time < %s LIMIT %s)",
        [project_id, cutoff],
    )
    # Feedback older than the cutoff whose call is gone (or never came).
    total += _delete_batched(
        "DELETE FROM traces_feedback WHERE id IN (SELECT f.id FROM traces_feedback f "
        "WHERE f.project_id = %s AND f.created_at < %s AND NOT EXISTS ("
        "SELECT 1 FROM traces_call_id c WHERE c.project_id = f.project_id AND c.id = f.call_id "
        "AND c.start_time >= %s) LIMIT %s)",
        [project_id, cutoff, cutoff],
    )
    total += _delete_batched(
        "DELETE FROM traces_call_id WHERE (project_id, id) IN (SELECT project_id, id FROM "
        "traces_call_id WHERE project_id = %s AND start_time < %s LIMIT %s)",
        [project_id, cutoff],
    )
    return total


def calls_retention_apply(*, now: datetime | None = None) -> RetentionOutcome:
    """Apply every project's ``retention_days`` to its raw calls (see the module docstring)."""
    from apps.accounts.models import Project

    now = now or timezone.now()
    longest = Project.objects.aggregate(days=Max("retention_days"))["days"]
    if longest is None:
        return RetentionOutcome(dropped=[], calls_deleted=0)
    global_cutoff = now - timedelta(days=longest)
    dropped = []
    for partition in partitions():
        if partition.end > global_cutoff:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition.name}")
            cursor.execute(f"DROP TABLE {partition.name}")
        dropped.append(partition.name)
        logger.info("calls partition %s dropped by retention", partition.name)
    # Each project's cutoff is at or after every dropped partition's end: the trim below also
    # forgets the ids, vectors and feedback of the dropped calls.
    deleted = 0
    for project_id, days in Project.objects.values_list("pk", "retention_days"):
        cutoff = now - timedelta(days=days)
        deleted += _delete_batched(
            f"DELETE FROM {PARENT} WHERE (project_id, id, start_time) IN ("  # noqa: S608
            f"SELECT project_id, id, start_time FROM {PARENT} "
            "WHERE project_id = %s AND start_time < %s LIMIT %s)",
            [project_id, cutoff],
        )
        _forget_calls_before(cutoff, project_id=project_id)
    return RetentionOutcome(dropped=dropped, calls_deleted=deleted)
