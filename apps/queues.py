"""Queues by kind of work, so each scales on its own, and the beat schedule.

| queue    | work                                               |
| -------- | -------------------------------------------------- |
| ingest   | follow-up of stored calls: cost, signals, rollups  |
| embed    | the embedding model (CPU- or GPU-bound)             |
| drift    | baseline fits and drift checks                      |
| alerts   | rule evaluation and notification delivery           |
| evaluate | evaluator selection and judge calls (LLM-as-judge)  |
| default  | sweepers and housekeeping                           |
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

INGEST = "ingest"
EMBED = "embed"
DRIFT = "drift"
ALERTS = "alerts"
EVALUATE = "evaluate"
DEFAULT = "default"
ALL_QUEUES = (DEFAULT, INGEST, EMBED, DRIFT, ALERTS, EVALUATE)

TASK_ROUTES: dict[str, dict[str, str]] = {
    "apps.ingest.tasks.*": {"queue": INGEST},
    "apps.quality.tasks.*": {"queue": INGEST},
    "apps.traces.tasks.*": {"queue": INGEST},
    "apps.embeddings.tasks.*": {"queue": EMBED},
    "apps.drift.tasks.*": {"queue": DRIFT},
    "apps.alerts.tasks.*": {"queue": ALERTS},
    "apps.evaluators.tasks.*": {"queue": EVALUATE},
    "apps.core.tasks.*": {"queue": DEFAULT},
}

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "worker-heartbeat": {
        "task": "apps.core.tasks.heartbeat",
        "schedule": timedelta(seconds=15),
        "options": {"queue": DEFAULT, "expires": 15},
    },
    "ingest-sweep-unprocessed": {
        "task": "apps.ingest.tasks.sweep_unprocessed_calls",
        "schedule": timedelta(minutes=1),
        "options": {"queue": INGEST, "expires": 60},
    },
    "ingest-sweep-otlp-log-events": {
        "task": "apps.ingest.tasks.sweep_otlp_log_events",
        "schedule": timedelta(minutes=5),
        "options": {"queue": INGEST, "expires": 300},
    },
}


def register_periodic(name: str, entry: dict[str, Any]) -> None:
    """Apps add their periodic tasks here at import time (drift checks, alert evaluation)."""
    BEAT_SCHEDULE[name] = entry
