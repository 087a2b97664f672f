"""Partition ``traces_call`` by month of ``start_time``, with ``traces_call_id`` keeping the
client's id unique per project (see apps/traces/models.py and docs/partitioning.md).

Existing rows are copied into the partitioned table inside this migration: fine for the
installations of today (a few million rows copy in minutes). A large installation follows the
online path of docs/partitioning.md instead (dual write, backfill by month, swap).
"""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

OLD = "traces_call_unpartitioned"
# Months of history that get partitions of their own; anything older goes to the default one.
HISTORY_MONTHS = 24
AHEAD = 3

TRIGGER = """
CREATE FUNCTION traces_call_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A second insert of (project_id, id), whatever its start_time, fails here: the statement
    -- and its calls roll back. Ordered so concurrent batches lock ids in the same order.
    INSERT INTO traces_call_id (project_id, id, start_time)
    SELECT project_id, id, start_time FROM new_calls ORDER BY project_id, id;
    RETURN NULL;
END $$;
CREATE TRIGGER traces_call_ids AFTER INSERT ON traces_call
    REFERENCING NEW TABLE AS new_calls FOR EACH STATEMENT EXECUTE FUNCTION traces_call_ids();
"""


def _month_add(month, months):
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _swap(cursor, *, partitioned):
    """Move traces_call's rows into a new table of the other kind, keeping every index and
    foreign key by name."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = 'traces_call'::regclass AND NOT x.indisprimary"
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'traces_call'::regclass AND contype = 'f'"
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(f"ALTER TABLE traces_call RENAME TO {OLD}")
    cursor.execute(f"ALTER INDEX traces_call_pkey RENAME TO {OLD}_pkey")
    for name, _ in indexes:
        cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:50]}_old"')
    key = "(project_id, id, start_time)" if partitioned else "(project_id, id)"
    suffix = " PARTITION BY RANGE (start_time)" if partitioned else ""
    cursor.execute(
        f"CREATE TABLE traces_call (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE){suffix}"
    )
    cursor.execute(f"ALTER TABLE traces_call ADD CONSTRAINT traces_call_pkey PRIMARY KEY {key}")
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE traces_call ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        cursor.execute(definition)
    if partitioned:
        cursor.execute("CREATE TABLE traces_call_default PARTITION OF traces_call DEFAULT")
        cursor.execute(f"SELECT min(start_time) FROM {OLD}")
        oldest = cursor.fetchone()[0]
        now = datetime.now(UTC)
        first = datetime(now.year, now.month, 1, tzinfo=UTC)
        start = _month_add(first, -1)  # a new installation: from last month on
        if oldest is not None:
            oldest_month = datetime(oldest.year, oldest.month, 1, tzinfo=UTC)
            start = min(start, max(_month_add(first, -HISTORY_MONTHS), oldest_month))
        month = start
        while month <= _month_add(first, AHEAD):
            end = _month_add(month, 1)
            cursor.execute(
                f"CREATE TABLE traces_call_p{month:%Y_%m} PARTITION OF traces_call "
                f"FOR VALUES FROM ('{month.isoformat()}') TO ('{end.isoformat()}')"
            )
            month = end
        cursor.execute(TRIGGER)
    else:
        cursor.execute("DROP TRIGGER IF EXISTS traces_call_ids ON " + OLD)
        cursor.execute("DROP FUNCTION IF EXISTS traces_call_ids()")
    cursor.execute(f"INSERT INTO traces_call SELECT * FROM {OLD}")  # noqa: S608
    cursor.execute(f"DROP TABLE {OLD}")


def forward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        _swap(cursor, partitioned=True)


def backward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        _swap(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("traces", "0003_call_embed_pending"),
    ]

    operations = [
        migrations.CreateModel(
            name="CallId",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "project_id",
                        "id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("id", models.UUIDField()),
                ("start_time", models.DateTimeField()),
                (
                    "project",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.project",
                    ),
                ),
            ],
            options={
                "db_table": "traces_call_id",
                "indexes": [
                    models.Index(fields=["project", "start_time"], name="call_id_project_time")
                ],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
