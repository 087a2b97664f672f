"""The streaming detector's feed: new embedded calls since the last check, in time order, through
the baseline's MEWMA state.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from apps.drift.detectors import MewmaDetector
from apps.drift.models import (
    Baseline,
    DriftMonitor,
)
from apps.drift.services.state import state_decode
from apps.embeddings.models import CallEmbedding, EmbeddingKind

STREAM_FEED_LIMIT = 10_000
logger = logging.getLogger(__name__)


def stream_feed(*, monitor: DriftMonitor, baseline: Baseline) -> dict[str, Any]:
    """Feed the vectors that arrived since the last check to the monitor's MEWMA detector.

    The fitted detector (its whitening matrix, ~0.8 MB) lives in the baseline's state and is
    never rewritten here; the monitor keeps only the running statistic (a few KB), and starts
    it from zero when the baseline changed. A monitor stored before that split holds the whole
    detector; its running part is read from it and the row shrinks on this check. The cursor is
    the ``created_at`` of the last vector fed; a vector committed late with an older timestamp
    can be missed, which costs the stream one event, not correctness of the window test.
    """
    fitted = state_decode(baseline.state).get("stream")
    if fitted is None:
        return {}
    running = monitor.stream_state
    if monitor.stream_baseline_id != baseline.pk or running is None:
        running = None
        monitor.stream_baseline = baseline
        monitor.stream_cursor = timezone.now() - timedelta(hours=monitor.window_hours)
    try:
        detector = MewmaDetector.from_state(fitted, running=running)
    except (ValueError, KeyError):
        # A running part that does not fit the chart (another version, another dimension):
        # the statistic restarts from zero rather than failing the check.
        logger.warning("monitor %s: stream state not resumable, restarted", monitor.pk)
        detector = MewmaDetector.from_state(fitted)
    rows = list(
        CallEmbedding.objects.filter(
            project_id=monitor.project_id,
            provider_key=baseline.provider_key,
            kind=EmbeddingKind.PROMPT,
            created_at__gt=monitor.stream_cursor,
        )
        # A backfill of old calls is not news: only traffic after the reference period is fed.
        .filter(start_time__gte=baseline.end or baseline.fitted_at or timezone.now())
        .order_by("created_at", "id")
        .values_list("created_at", "vector")[:STREAM_FEED_LIMIT]
    )
    update: dict[str, Any] = {"alarm": False, "alarm_positions": [], "events": 0}
    if rows:
        result = detector.update(np.stack([np.asarray(v, dtype=np.float64) for _, v in rows]))
        update = {
            "alarm": result.alarm,
            "alarm_positions": result.alarm_positions,
            "events": len(rows),
            "summary": result.summary,
        }
        monitor.stream_cursor = rows[-1][0]
    running = detector.running_state()
    monitor.stream_state = running
    monitor.save(update_fields=["stream_state", "stream_baseline", "stream_cursor"])
    # What fired and how close it is, as the window test reports its p-value and threshold.
    update |= {
        "test": detector.name,
        "title": detector.title,
        "statistic": detector.statistic,
        "limit": detector.limit,
        "arl0": detector.arl0,
        "since_reset": detector.since_reset,
        "state_bytes": len(json.dumps(running, separators=(",", ":"))),
    }
    return update
