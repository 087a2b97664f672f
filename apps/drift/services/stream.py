"""The streaming detector's feed: new embedded calls since the last check, in time order, through
the baseline's MEWMA state.
"""

from __future__ import annotations

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


def stream_feed(*, monitor: DriftMonitor, baseline: Baseline) -> dict[str, Any]:
    """Feed the vectors that arrived since the last check to the monitor's MEWMA detector.

    The detector is (re)started from the baseline's fitted one when the baseline changed. The
    cursor is the ``created_at`` of the last vector fed; a vector committed late with an older
    timestamp can be missed, which costs the stream one event, not correctness of the window
    test.
    """
    if monitor.stream_baseline_id != baseline.pk or monitor.stream_state is None:
        fitted = state_decode(baseline.state).get("stream")
        if fitted is None:
            return {}
        monitor.stream_state = fitted
        monitor.stream_baseline = baseline
        monitor.stream_cursor = timezone.now() - timedelta(hours=monitor.window_hours)
    detector = MewmaDetector.from_state(monitor.stream_state)
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
    update: dict[str, Any] = {"events": 0, "alarm": False}
    if rows:
        result = detector.update(np.stack([np.asarray(v, dtype=np.float64) for _, v in rows]))
        update = {
            "alarm": result.alarm,
            "alarm_positions": result.alarm_positions,
            "statistic": result.statistic,
            "limit": result.limit,
            "events": len(rows),
            "since_reset": result.since_reset,
            "summary": result.summary,
        }
        monitor.stream_cursor = rows[-1][0]
    monitor.stream_state = detector.to_state()
    monitor.save(update_fields=["stream_state", "stream_baseline", "stream_cursor"])
    return update
