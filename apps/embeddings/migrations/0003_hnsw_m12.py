"""The similar-call index with m 12 / ef_construction 48 instead of m 16 / 64 (see
``apps.embeddings.models.HNSW_M``): 30% cheaper for every vector the embed worker writes.

Only an index still at the old defaults is rebuilt; one that an operator rebuilt with other
parameters (``manage.py vector_index``) is left as it is. The rebuild is online, as that command
does it: the new index is built with ``CREATE INDEX CONCURRENTLY`` beside the old one, which
answers searches and takes inserts until it is swapped out. Over ``MAX_ROWS_REBUILT`` vectors
the build would hold ``migrate`` for many minutes, so the index is left at 16 / 64 (which
searches as well) and the message says how to rebuild it when convenient.
"""

import pgvector.django.indexes
from django.db import migrations

INDEX = "callembedding_vector_hnsw"
BUILDING = f"{INDEX}_new"
TABLE = "embeddings_callembedding"
MAX_ROWS_REBUILT = 250_000  # about two minutes of build on two cores


def _options(cursor):
    cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [INDEX])
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(option.split("=", 1) for option in row[0] or [])


def _rebuild(old, new):
    def rebuild(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            if _options(cursor) != {"m": str(old[0]), "ef_construction": str(old[1])}:
                return
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} LIMIT %s) t", [MAX_ROWS_REBUILT + 1]
            )
            if cursor.fetchone()[0] > MAX_ROWS_REBUILT:
                print(
                    f"\n  {INDEX} left at m {old[0]} / ef_construction {old[1]}: over"
                    f" {MAX_ROWS_REBUILT:,} vectors. Rebuild it online when convenient:"
                    f" python manage.py vector_index --m {new[0]} --ef-construction {new[1]}"
                )
                return
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {BUILDING}")
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY {BUILDING} ON {TABLE} USING hnsw"
                f" (vector halfvec_cosine_ops) WITH (m = {new[0]}, ef_construction = {new[1]})"
            )
            cursor.execute(f"DROP INDEX CONCURRENTLY {INDEX}")
            cursor.execute(f"ALTER INDEX {BUILDING} RENAME TO {INDEX}")

    return rebuild


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("embeddings", "0002_halfvec"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="callembedding", name=INDEX),
                migrations.AddIndex(
                    model_name="callembedding",
                    index=pgvector.django.indexes.HnswIndex(
                        ef_construction=48,
                        fields=["vector"],
                        m=12,
                        name=INDEX,
                        opclasses=["halfvec_cosine_ops"],
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(_rebuild((16, 64), (12, 48)), _rebuild((12, 48), (16, 64)))
            ],
        ),
    ]
