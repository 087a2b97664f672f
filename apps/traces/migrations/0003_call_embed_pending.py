"""A partial index on the embed backlog, built CONCURRENTLY: the calls table is large and
takes writes all the time, and a plain CREATE INDEX would block ingestion while it builds."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0001_initial"),
        ("traces", "0002_rollups"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="call",
            index=models.Index(
                condition=models.Q(("embed_status", 0)),
                fields=["received_at"],
                name="call_embed_pending",
            ),
        ),
    ]
