"""A timestamp PostgreSQL holds but Python cannot (year 10000, 1 BC) must not fail a read.

PostgreSQL's ``timestamptz`` spans 4713 BC .. 294276 AD, Python's ``datetime`` 1 .. 9999. Rows
outside Python's range are refused at ingest now, but one stored earlier (or written by hand)
made psycopg raise ``DataError`` while loading *any* query result that held it: every list and
detail of its project answered 500. The loader below clamps such values to the edge of the
representable range (with a day of margin, so converting to a local time zone cannot overflow)
instead; the row stays visible and can be deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EARLIEST_LOADABLE = datetime(1, 1, 2, tzinfo=UTC)
LATEST_LOADABLE = datetime(9999, 12, 30, tzinfo=UTC)


def clamp_timestamps(sender: Any, connection: Any, **_: Any) -> None:
    """``connection_created`` receiver: wrap the connection's timestamptz text loader."""
    if connection.vendor != "postgresql":
        return
    import psycopg
    from psycopg.pq import Format

    adapters = connection.connection.adapters
    oid = adapters.types["timestamptz"].oid
    base = adapters.get_loader(oid, Format.TEXT)
    if base is None or getattr(base, "clamps", False):
        return

    class ClampedLoader(base):  # type: ignore[misc, valid-type]
        clamps = True

        def load(self, data: Any) -> datetime:
            try:
                return super().load(data)  # type: ignore[no-any-return]
            except psycopg.DataError:
                # "timestamp too large (after year 10K)" / "too small (before year 1)".
                return EARLIEST_LOADABLE if b"BC" in bytes(data) else LATEST_LOADABLE

    adapters.register_loader("timestamptz", ClampedLoader)
