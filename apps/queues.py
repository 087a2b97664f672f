"""Celery wiring, declared once: the queues by kind of work, the task routes and the beat
schedule. Nothing else names a queue for a route or adds a periodic task.

| queue    | work                                                          |
| -------- | ------------------------------------------------------------- |
| ingest   | follow-up of stored calls: cost, signals; rollup marks/flushes |
| embed    | the embedding model (CPU- or GPU-bound)                        |
| drift    | baseline fits and drift checks                                 |
| alerts   | rule evaluation and notification delivery                      |
| evaluate | evaluator selection and judge calls (LLM-as-judge)             |
| default  | sweepers and housekeeping (heartbeat, partitions, retention)   |

Beat entries carry no queue: a periodic task goes where its route sends it, like any other
send, so the two cannot disagree.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery.schedules import crontab

INGEST = "ingest"
EMBED = "embed"
DRIFT = "drift"
ALERTS = "alerts"
EVALUATE = "evaluate"
DEFAULT = "default"
ALL_QUEUES = (DEFAULT, INGEST, EMBED, DRIFT, ALERTS, EVALUATE)

# How often rollups flush; the flush fan-out expires its messages before the next tick.
ROLLUP_FLUSH_EVERY = timedelta(seconds=10)

# Exact names first: Celery takes the first matching route.
TASK_ROUTES: dict[str, dict[str, str]] = {
    # traces housekeeping runs beside the other sweepers, its rollup work beside ingest.
    "apps.traces.tasks.calls_partitions_ensure": {"queue": DEFAULT},
    "apps.traces.tasks.calls_retention": {"queue": DEFAULT},
    "apps.traces.tasks.rollups_prune": {"queue": DEFAULT},
    "apps.traces.tasks.*": {"queue": INGEST},
    "apps.ingest.tasks.*": {"queue": INGEST},
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
        "options": {"expires": 15},
    },
    "ingest-sweep-unprocessed": {
        "task": "apps.ingest.tasks.sweep_unprocessed_calls",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 60},
    },
    "ingest-sweep-otlp-log-events": {
        "task": "apps.ingest.tasks.sweep_otlp_log_events",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 300},
    },
    "calls-partitions-ensure": {
        "task": "apps.traces.tasks.calls_partitions_ensure",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3600},
    },
    "calls-retention": {
        "task": "apps.traces.tasks.calls_retention",
        "schedule": timedelta(days=1),
        "options": {"expires": 3600},
    },
    "rollups-flush": {
        "task": "apps.traces.tasks.rollups_flush",
        "schedule": ROLLUP_FLUSH_EVERY,
        "options": {"expires": ROLLUP_FLUSH_EVERY.total_seconds()},
    },
    # Re-marks the last 15 minutes: a mark lost to a killed worker is recovered.
    "rollups-reconcile": {
        "task": "apps.traces.tasks.rollups_reconcile",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 300},
    },
    "rollups-prune": {
        "task": "apps.traces.tasks.rollups_prune",
        "schedule": timedelta(days=1),
        "options": {"expires": 3600},
    },
    "embeddings-sweep-pending": {
        "task": "apps.embeddings.tasks.sweep_pending_embeddings",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 300},
    },
    "drift-schedule-due-checks": {
        "task": "apps.drift.tasks.schedule_due_checks",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 60},
    },
    "drift-reset-stuck-checks": {
        "task": "apps.drift.tasks.reset_stuck_checks",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 300},
    },
    "drift-refit-trailing-baselines": {
        "task": "apps.drift.tasks.schedule_baseline_refits",
        # Early morning UTC, off the busiest hours.
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 3600},
    },
    # Fans out one evaluate_rule per due rule (PostHog style).
    "alerts-dispatch-due-rules": {
        "task": "apps.alerts.tasks.dispatch_due_rules",
        "schedule": timedelta(seconds=15),
        "options": {"expires": 15},
    },
    "alerts-reset-stuck-rules": {
        "task": "apps.alerts.tasks.reset_stuck_rules",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 60},
    },
    # Re-enqueues deliveries whose task was lost.
    "alerts-sweep-notifications": {
        "task": "apps.alerts.tasks.sweep_notifications",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 60},
    },
}
