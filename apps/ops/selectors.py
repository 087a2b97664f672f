"""Health of the parts Driftline depends on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.models import WorkerHeartbeat

WORKER_STALE_AFTER = timedelta(seconds=60)


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        return {"ok": True, "pgvector": row[0] if row else None}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _broker() -> dict[str, Any]:
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _workers() -> dict[str, Any]:
    try:
        latest = WorkerHeartbeat.objects.order_by("-beat_at").first()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if latest is None:
        return {"ok": False, "error": "no worker heartbeat yet"}
    age = timezone.now() - latest.beat_at
    return {"ok": age < WORKER_STALE_AFTER, "last_beat_s": round(age.total_seconds(), 1)}


def _embedding_backlog() -> dict[str, Any]:
    from apps.embeddings.budget import embed_backlog
    from apps.traces.models import Call, EmbedStatus

    try:
        oldest = (
            Call.objects.filter(embed_status=EmbedStatus.PENDING, processed_at__isnull=False)
            .order_by("received_at")
            .values_list("received_at", flat=True)
            .first()
        )
    except Exception:
        oldest = None
    lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return {"queued_messages": embed_backlog(), "lag_s": round(lag, 1)}


def health_report() -> dict[str, Any]:
    report: dict[str, Any] = {"database": _database(), "broker": _broker(), "worker": _workers()}
    report["ok"] = all(part["ok"] for part in report.values())
    report["embedding"] = _embedding_backlog() if report["database"]["ok"] else {}
    report["version"] = settings.SPECTACULAR_SETTINGS["VERSION"]
    return report
