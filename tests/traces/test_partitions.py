"""The calls table partitioned by month: routing, cross-time dedupe, partitions made ahead,
retention that drops partitions and trims projects, and the migration of existing rows."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.accounts.models import Project
from apps.embeddings.models import CallEmbedding
from apps.ingest.services import ingest_events
from apps.traces import partitions
from apps.traces.models import Call, CallId, Feedback

pytestmark = pytest.mark.django_db


def _event(call_id: uuid.UUID, start: datetime, prompt: str = "hello") -> dict[str, Any]:
    return {
        "type": "call",
        "id": str(call_id),
        "body": {"prompt": prompt, "model": "gpt-4o-mini", "start_time": start.isoformat()},
    }


def _partition_of(call_id: uuid.UUID) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM traces_call WHERE id = %s", [call_id])
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def _call(project: Project, start: datetime, **fields: Any) -> Call:
    return Call.objects.create(project=project, id=uuid.uuid4(), start_time=start, **fields)


def test_the_calls_table_is_partitioned_and_a_call_lands_in_its_month(project: Project) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'traces_call'")
        assert cursor.fetchone() == ("p",)
    now = timezone.now()
    names = {p.name for p in partitions.partitions()}
    this_month = partitions.month_start(now)
    for offset in range(-partitions.BEHIND, partitions.AHEAD + 1):
        assert partitions.partition_name(partitions.month_add(this_month, offset)) in names
    call_id = uuid.uuid4()
    assert ingest_events(project=project, events=[_event(call_id, now)]).accepted == 1
    assert _partition_of(call_id) == partitions.partition_name(this_month)
    assert (
        CallId.objects.get(project=project, id=call_id).start_time
        == Call.objects.get(project=project, id=call_id).start_time
    )


def test_an_id_is_stored_once_whatever_its_start_time(project: Project, other_project) -> None:
    call_id = uuid.uuid4()
    now = timezone.now()
    first = ingest_events(project=project, events=[_event(call_id, now, "first")])
    assert first.accepted == 1
    # The same id a month earlier (a re-stamped retry) lands in another partition's range.
    again = ingest_events(
        project=project, events=[_event(call_id, now - timedelta(days=40), "second")]
    )
    assert again.duplicates == 1
    assert Call.objects.filter(project=project, id=call_id).count() == 1
    assert Call.objects.get(project=project, id=call_id).prompt == "first"
    # Through the ORM the database itself refuses it.
    with pytest.raises(IntegrityError), transaction.atomic():
        Call.objects.create(project=project, id=call_id, start_time=now - timedelta(days=70))
    # Ids are per project: another tenant may use the same id.
    assert ingest_events(project=other_project, events=[_event(call_id, now)]).accepted == 1


def test_ensure_creates_months_ahead_and_moves_rows_out_of_the_default(project: Project) -> None:
    far = partitions.month_add(partitions.month_start(timezone.now()), 9)
    stray = _call(project, far + timedelta(days=3))  # a client clock far ahead
    assert _partition_of(stray.id) == partitions.DEFAULT
    created = partitions.partitions_ensure(now=far)
    assert partitions.partition_name(far) in created
    assert len(created) == partitions.BEHIND + partitions.AHEAD + 1
    assert _partition_of(stray.id) == partitions.partition_name(far)
    assert partitions.partitions_ensure(now=far) == []  # idempotent


@pytest.mark.django_db(transaction=True)  # as in production: the rows were committed long ago
def test_retention_drops_old_partitions_and_trims_short_retention_projects(
    project: Project, other_project: Project
) -> None:
    now = timezone.now()
    project.retention_days = 30
    project.save()
    other_project.retention_days = 200
    other_project.save()
    oldest = partitions.month_add(partitions.month_start(now), -12)
    for months in range(12):
        partitions.partition_create(partitions.month_add(oldest, months))
    ancient = _call(other_project, oldest + timedelta(days=2))  # older than every retention
    mine_old = _call(project, now - timedelta(days=60))
    mine_new = _call(project, now - timedelta(days=5))
    theirs_mid = _call(other_project, now - timedelta(days=60))
    for call in (mine_old, mine_new):
        CallEmbedding.objects.create(
            project=project,
            call_id=call.id,
            start_time=call.start_time,
            kind="prompt",
            text_hash="0" * 64,
            vector=[1.0] + [0.0] * 383,
            provider_key="test",
        )
        Feedback.objects.create(project=project, call_id=call.id, score=1.0, created_at=now)
    Feedback.objects.filter(call_id=mine_old.id).update(created_at=now - timedelta(days=59))

    outcome = partitions.calls_retention_apply(now=now)

    # Whole partitions older than the longest retention (200 days) are gone.
    assert partitions.partition_name(oldest) in outcome.dropped
    assert all(p.end > now - timedelta(days=200) for p in partitions.partitions())
    alive = set(Call.objects.values_list("id", flat=True))
    assert alive == {mine_new.id, theirs_mid.id}
    assert outcome.calls_deleted == 1  # mine_old, trimmed row by row (ancient went with its table)
    # Their ids, vectors and feedback went with them; the rest stays.
    assert set(CallId.objects.values_list("id", flat=True)) == alive
    assert set(CallEmbedding.objects.values_list("call_id", flat=True)) == {mine_new.id}
    assert set(Feedback.objects.values_list("call_id", flat=True)) == {mine_new.id}
    assert not CallId.objects.filter(id=ancient.id).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_rows_into_partitions(project: Project) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("traces", "0003_call_embed_pending")])
    now = timezone.now()
    ids = [uuid.uuid4() for _ in range(3)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'traces_call'")
        assert cursor.fetchone() == ("r",)
        for i, call_id in enumerate(ids):
            cursor.execute(
                "INSERT INTO traces_call (project_id, id, trace_id, session_id, end_user_id, name, "
                "kind, provider, model, prompt, response, cost_source, status, error, error_type, "
                "release, environment, tags, metadata, truncated, start_time, received_at, "
                "embed_status, pii, flagged, signals) VALUES (%s, %s, '', '', '', '', 'llm', '', "
                "'m', 'p', 'r', '', 'ok', '', '', '', '', '{}', '{}', '{}', %s, %s, 0, '{}', "
                "false, '{}')",
                [project.pk, call_id, now - timedelta(days=31 * i), now],
            )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'traces_call'")
        assert cursor.fetchone() == ("p",)
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'traces_call'")
        indexes = {row[0] for row in cursor.fetchall()}
    assert {"call_project_time", "call_embed_pending", "call_tags_gin"} <= indexes
    assert set(Call.objects.filter(project=project).values_list("id", flat=True)) == set(ids)
    assert set(CallId.objects.filter(project=project).values_list("id", flat=True)) == set(ids)
    months = {_partition_of(call_id) for call_id in ids}
    assert len(months) == 3
    assert partitions.DEFAULT not in months
