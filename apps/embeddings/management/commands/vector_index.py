"""Rebuild the similar-call search index (HNSW) with other graph parameters, online.

    python manage.py vector_index                       # show the index and its parameters
    python manage.py vector_index --m 24 --ef-construction 128

The app ships m 12 / ef_construction 48 (``apps.embeddings.models.HNSW_M``): cheap to maintain
while the embed worker inserts, searched with ef_search 200. At a million vectors a project,
m 24 / ef_construction 128 with ``DRIFTLINE_SEARCH_EF_SEARCH=700`` gives recall@10 0.962 at p95
32 ms (docs/sizing.md), at about twice the build cost of m 16 / 64. The new index is built
with ``CREATE INDEX CONCURRENTLY`` beside the old one (searches and inserts go on), then swapped
in; progress comes from ``pg_stat_progress_create_index``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from tqdm import tqdm

from apps.embeddings.models import HNSW_EF_CONSTRUCTION, HNSW_M, CallEmbedding

INDEX = "callembedding_vector_hnsw"
BUILDING = f"{INDEX}_new"


def index_options(name: str = INDEX) -> dict[str, str] | None:
    """The index's storage parameters (``m``, ``ef_construction``), None when it is missing."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [name])
        row = cursor.fetchone()
    if row is None:
        return None
    return dict(option.split("=", 1) for option in row[0] or [])


def _watch(stop: threading.Event, bar: tqdm) -> None:
    """Follow the build from another connection (the building one is busy)."""
    watcher = connections.create_connection("default")
    try:
        _follow(watcher, stop, bar)
    finally:
        watcher.close()


def _follow(watcher: Any, stop: threading.Event, bar: tqdm) -> None:
    with watcher.cursor() as cursor:
        while not stop.wait(1.0):
            cursor.execute(
                "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total "
                "FROM pg_stat_progress_create_index WHERE relid = %s::regclass",
                [CallEmbedding._meta.db_table],
            )
            row = cursor.fetchone()
            if row is None:
                continue
            phase, blocks_done, blocks_total, tuples_done, tuples_total = row
            if tuples_total:
                done, total = tuples_done, tuples_total
            else:
                done, total = blocks_done, blocks_total
            bar.set_description(str(phase)[:40])
            bar.total = max(int(total or 0), 1)
            bar.n = int(done or 0)
            bar.refresh()


class Command(BaseCommand):
    help = __doc__.split("\n")[0]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--m", type=int, help="HNSW graph degree (2-100)")
        parser.add_argument("--ef-construction", type=int, help="build candidates (4-1000)")

    def handle(self, *args: Any, **options: Any) -> None:
        current = index_options()
        if current is None:
            raise CommandError(f"index {INDEX} is missing: run migrate first")
        self.stdout.write(f"{INDEX}: {current}")
        m, ef = options["m"], options["ef_construction"]
        if m is None and ef is None:
            return
        m = m if m is not None else int(current.get("m", HNSW_M))
        ef = ef if ef is not None else int(current.get("ef_construction", HNSW_EF_CONSTRUCTION))
        if not 2 <= m <= 100 or not 4 <= ef <= 1000 or ef < 2 * m:
            raise CommandError("--m must be 2-100, --ef-construction 4-1000 and at least 2 x m")
        table = CallEmbedding._meta.db_table
        started = time.perf_counter()
        with connection.cursor() as cursor:
            # A build interrupted earlier leaves an invalid index behind: start clean.
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {BUILDING}")
            stop = threading.Event()
            with tqdm(total=1, unit="row", unit_scale=True, desc="building") as bar:
                watcher = threading.Thread(target=_watch, args=(stop, bar), daemon=True)
                watcher.start()
                try:
                    cursor.execute(
                        f"CREATE INDEX CONCURRENTLY {BUILDING} ON {table} USING hnsw "
                        f"(vector halfvec_cosine_ops) WITH (m = {m}, ef_construction = {ef})"
                    )
                finally:
                    stop.set()
                    watcher.join()
            cursor.execute(f"DROP INDEX CONCURRENTLY {INDEX}")
            cursor.execute(f"ALTER INDEX {BUILDING} RENAME TO {INDEX}")
        self.stdout.write(
            f"{INDEX}: {index_options()} (built in {time.perf_counter() - started:.0f} s)"
        )
