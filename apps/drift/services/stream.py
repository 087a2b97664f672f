"""The streaming detector's feed: new embedded calls since the last check, in time order, through
the baseline's MEWMA state.

The fitted chart is decoded once per process and baseline state: a small LRU keyed by the
baseline's id and a digest of its stored blob (so a refit or any rewrite of the state is a new
key, never a stale chart), because decompressing and parsing the whole state (the reference
sample and the ~0.8 MB chart) on every check cost more than the check itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from datetime import timedelta
from typing import Any, NamedTuple

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
# Decoded charts kept per process (~1.2 MB each at d = 384): a worker serves a few projects.
CHART_CACHE_SIZE = 8
logger = logging.getLogger(__name__)


class CachedChart(NamedTuple):
    """A baseline's decoded chart (None: the baseline has none) and the digest of its fitted
    part, which a monitor's running part records so that it never resumes on another chart."""

    chart: MewmaDetector | None
    digest: str


class ChartCacheInfo(NamedTuple):
    hits: int
    misses: int
    size: int


_charts: OrderedDict[tuple[int, str], CachedChart] = OrderedDict()
_charts_lock = threading.Lock()
_counts = {"hits": 0, "misses": 0}


def _blob_digest(blob: bytes | memoryview) -> str:
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def stream_chart(*, baseline: Baseline) -> CachedChart:
    """The baseline's fitted chart, decoded at most once per stored state in this process.

    The key is the digest of the stored blob, not ``fitted_at``: the state is also rewritten
    in place (a window calibration saved for later checks), and a test or an operator may
    replace it; hashing the blob costs a few ms against the decode's tens.
    """
    if baseline.state is None:
        raise ValueError("baseline has no state")
    key = (int(baseline.pk), _blob_digest(baseline.state))
    with _charts_lock:
        cached = _charts.get(key)
        if cached is not None:
            _charts.move_to_end(key)
            _counts["hits"] += 1
            return cached
    fitted = state_decode(baseline.state).get("stream")
    chart = None if fitted is None else MewmaDetector.from_state(fitted)
    digest = "" if fitted is None else _blob_digest(json.dumps(fitted, sort_keys=True).encode())
    cached = CachedChart(chart=chart, digest=digest)
    with _charts_lock:
        _counts["misses"] += 1
        _charts[key] = cached
        while len(_charts) > CHART_CACHE_SIZE:
            _charts.popitem(last=False)
    return cached


def stream_chart_cache_info() -> ChartCacheInfo:
    with _charts_lock:
        return ChartCacheInfo(hits=_counts["hits"], misses=_counts["misses"], size=len(_charts))


def stream_chart_cache_clear() -> None:
    with _charts_lock:
        _charts.clear()
        _counts.update(hits=0, misses=0)


def stream_feed(*, monitor: DriftMonitor, baseline: Baseline) -> dict[str, Any]:
    """Feed the vectors that arrived since the last check to the monitor's MEWMA detector.

    The fitted detector (its whitening matrix, ~0.8 MB) lives in the baseline's state, is
    decoded once per process (:func:`stream_chart`) and never rewritten here; the monitor
    keeps only the running statistic (a few KB), and starts it from zero when the baseline or
    its chart changed. A monitor stored before that split holds the whole
    detector; its running part is read from it and the row shrinks on this check. The cursor is
    the ``created_at`` of the last vector fed; a vector committed late with an older timestamp
    can be missed, which costs the stream one event, not correctness of the window test.
    """
    cached = stream_chart(baseline=baseline)
    if cached.chart is None:
        return {}
    running = monitor.stream_state
    if (
        monitor.stream_baseline_id != baseline.pk
        or running is None
        # A running part recorded on another chart of this baseline (its state was refitted
        # in place): restart. Parts stored before the digest was recorded resume as before.
        or running.get("chart", cached.digest) != cached.digest
    ):
        running = None
        monitor.stream_baseline = baseline
        monitor.stream_cursor = timezone.now() - timedelta(hours=monitor.window_hours)
    detector = cached.chart.clone()
    if running is not None:
        try:
            detector.resume(running)
        except (ValueError, KeyError):
            # A running part that does not fit the chart (another version, another dimension):
            # the statistic restarts from zero rather than failing the check.
            logger.warning("monitor %s: stream state not resumable, restarted", monitor.pk)
            detector = cached.chart.clone()
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
    running = detector.running_state() | {"chart": cached.digest}
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
