"""Baseline lifecycle: request, fit (on the drift worker), pin (one at a time, READY only),
the active one, intent names carried over, scheduled refits of trailing baselines and pruning.

The statistics live in :mod:`apps.drift.detectors` (pure numpy); this module moves vectors
between PostgreSQL and those detectors and stores what they conclude.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.drift import detectors, enqueue
from apps.drift.detectors import MewmaDetector
from apps.drift.detectors.baseline import MIN_WINDOW
from apps.drift.models import (
    Baseline,
    BaselineStatus,
    DriftMonitor,
    IntentCluster,
)
from apps.drift.services.state import current_provider_key, state_encode
from apps.drift.services.windows import floor_to_interval
from apps.embeddings.selectors import VectorSample, embedding_sample

logger = logging.getLogger(__name__)


DEFAULT_BASELINE_DAYS = 7


# The detectors need at least 4 windows' worth of reference (4 * MIN_WINDOW).
MIN_REFERENCE = 4 * MIN_WINDOW


# A bigger reference adds little power (the window is the noisy side) and costs fit time:
# choosing k by silhouette is ~30 s at 2,000 rows on 2 cores.
MAX_REFERENCE = 2000


CLUSTER_SAMPLE = 1000


# Two baseline centroids this close (cosine) are "the same intent": a reviewer's name carries over.
NAME_CARRY_SIMILARITY = 0.9


REFIT_RETRY_AFTER = timedelta(hours=6)


KEEP_TRAILING_STATES = 7


EXAMPLES = 5


def baseline_fit(
    *,
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    release: str | None = None,
    pin: bool = False,
    provider_key: str | None = None,
    false_alarm_rate: float = 0.01,
    k: int | None = None,
    max_reference: int = MAX_REFERENCE,
    n_calibration: int = 1000,
) -> Baseline:
    """Fit and store a baseline of ``project`` (default: the trailing 7 days).

    ``release`` restricts the reference to calls of that release (within the range when one is
    given); ``pin`` keeps it as the active baseline until unpinned. Raises ApplicationError when
    the range holds too few embedded calls.
    """
    baseline = baseline_request(
        project=project,
        start=start,
        end=end,
        release=release,
        pin=pin,
        provider_key=provider_key,
        false_alarm_rate=false_alarm_rate,
    )
    return baseline_fit_run(
        baseline=baseline,
        k=k,
        max_reference=max_reference,
        n_calibration=n_calibration,
        raise_errors=True,
    )


def baseline_request(
    *,
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    release: str | None = None,
    pin: bool = False,
    provider_key: str | None = None,
    false_alarm_rate: float = 0.01,
) -> Baseline:
    """Record a baseline to fit (status FITTING); :func:`baseline_fit_run` does the work."""
    if not 0 < false_alarm_rate < 0.5:
        raise ApplicationError("false_alarm_rate: must be in (0, 0.5)", field="false_alarm_rate")
    if release is None or start is not None or end is not None:
        end = end or timezone.now()
        start = start or end - timedelta(days=DEFAULT_BASELINE_DAYS)
        if start >= end:
            raise ApplicationError("start: must be before end", field="start")
    key = provider_key or current_provider_key(project_id=project.id)
    if not key:
        raise ApplicationError("project: no embedded calls yet", field="project")
    return Baseline.objects.create(
        project=project,
        provider_key=key,
        start=start,
        end=end,
        release=release or "",
        pinned=pin,
        false_alarm_rate=false_alarm_rate,
        status=BaselineStatus.FITTING,
    )


def baseline_fit_run(
    *,
    baseline: Baseline,
    k: int | None = None,
    max_reference: int = MAX_REFERENCE,
    n_calibration: int = 1000,
    raise_errors: bool = False,
) -> Baseline:
    """Fit a FITTING baseline from its range; sets READY (or FAILED with the reason)."""
    sample = embedding_sample(
        project_id=baseline.project_id,
        provider_key=baseline.provider_key,
        start=baseline.start,
        end=baseline.end,
        release=baseline.release or None,
        limit=max_reference,
        with_texts=True,
        seed=baseline.pk,
    )
    if len(sample) < MIN_REFERENCE:
        message = (
            f"{len(sample)} embedded calls in the baseline range; at least {MIN_REFERENCE} needed"
        )
        Baseline.objects.filter(pk=baseline.pk).update(status=BaselineStatus.FAILED, error=message)
        baseline.status, baseline.error = BaselineStatus.FAILED, message
        if raise_errors:
            raise ApplicationError(message, field="start")
        return baseline
    model = detectors.Baseline.fit(
        sample.vectors,
        texts=sample.texts,
        false_alarm_rate=baseline.false_alarm_rate,
        k=k,
        max_reference=len(sample),
        cluster_sample=CLUSTER_SAMPLE,
        n_calibration=n_calibration,
        key=baseline.provider_key,
        seed=baseline.pk % (2**31),
    )
    stream = _stream_fit(model.reference)
    shares = model.shares
    with transaction.atomic():
        clusters = _clusters_create(baseline=baseline, model=model, sample=sample, shares=shares)
        baseline.state = state_encode(
            {"detector": model.to_state(), "stream": stream.to_state() if stream else None}
        )
        baseline.sample_size = len(sample)
        baseline.status = BaselineStatus.READY
        baseline.fitted_at = timezone.now()
        baseline.summary = {
            "k": model.intents.k,
            "silhouette": None
            if np.isnan(model.intents.silhouette)
            else float(model.intents.silhouette),
            "shares": [float(s) for s in shares],
            "ood_threshold": model.ood_threshold,
        }
        baseline.save(update_fields=["state", "sample_size", "status", "fitted_at", "summary"])
        if baseline.pinned:  # asked to be pinned once fitted: one pinned at a time
            _unpin_others(baseline)
    logger.info("baseline %s fitted: %d calls, %d intents", baseline.pk, len(sample), len(clusters))
    return baseline


def _stream_fit(reference: np.ndarray) -> MewmaDetector | None:
    try:
        return MewmaDetector.fit(reference)
    except ValueError:
        logger.warning("streaming detector not fitted: reference of %d rows", len(reference))
        return None


def _clusters_create(
    *, baseline: Baseline, model: detectors.Baseline, sample: VectorSample, shares: np.ndarray
) -> list[IntentCluster]:
    vectors = sample.vectors.astype(np.float64)
    names = _names_to_carry(baseline=baseline, centroids=model.intents.centroids)
    clusters = []
    for c in range(model.intents.k):
        rows = np.flatnonzero(model.members == c)
        centroid = model.intents.centroids[c]
        closest = rows[np.argsort(np.linalg.norm(vectors[rows] - centroid, axis=1))][:EXAMPLES]
        clusters.append(
            IntentCluster(
                baseline=baseline,
                project_id=baseline.project_id,
                index=c,
                centroid=centroid.astype(np.float32),
                size=int(model.intents.sizes[c]),
                share=float(shares[c]),
                label=model.intents.labels[c][:255],
                name=names.get(c, ""),
                example_call_ids=[sample.call_ids[int(i)] for i in closest],
            )
        )
    return IntentCluster.objects.bulk_create(clusters)


def _names_to_carry(*, baseline: Baseline, centroids: np.ndarray) -> dict[int, str]:
    """Reviewer names of the previous baseline's intents, for new clusters at the same place."""
    named = list(
        IntentCluster.objects.filter(
            project_id=baseline.project_id, baseline__status=BaselineStatus.READY
        )
        .exclude(name="")
        .exclude(baseline=baseline)
        .filter(baseline__provider_key=baseline.provider_key)
        .order_by("-baseline__fitted_at")
        .values_list("centroid", "name")[:200]
    )
    if not named:
        return {}
    old = np.stack([np.asarray(v, dtype=np.float64) for v, _ in named])
    old /= np.maximum(np.linalg.norm(old, axis=1, keepdims=True), 1e-12)
    new = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    similarity = new @ old.T
    out: dict[int, str] = {}
    for c in range(len(new)):
        # Newest baselines come first, so argmax ties prefer the most recent name.
        best = int(np.argmax(similarity[c]))
        if similarity[c, best] >= NAME_CARRY_SIMILARITY:
            out[c] = named[best][1]
    return out


def baseline_pin(*, baseline: Baseline, pinned: bool) -> Baseline:
    """Pin or unpin a baseline. Only a fitted (READY) baseline can be pinned, and one is pinned
    at a time: pinning it unpins the project's others. The API and the UI both pin here."""
    if pinned and baseline.status != BaselineStatus.READY:
        raise ApplicationError("baseline: only a fitted baseline can be pinned", field="baseline")
    with transaction.atomic():
        if pinned:
            _unpin_others(baseline)
        baseline.pinned = pinned
        baseline.save(update_fields=["pinned"])
    return baseline


def _unpin_others(baseline: Baseline) -> None:
    Baseline.objects.filter(project_id=baseline.project_id, pinned=True).exclude(
        pk=baseline.pk
    ).update(pinned=False)


def baseline_fit_request(
    *,
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    release: str | None = None,
    pin: bool = False,
    false_alarm_rate: float = 0.01,
) -> Baseline:
    """Record a baseline to fit and queue its fit on the drift worker once this commits
    (fitting takes seconds to a minute). ``pin`` pins it once fitted."""
    with transaction.atomic():
        baseline = baseline_request(
            project=project,
            start=start,
            end=end,
            release=release,
            pin=pin,
            false_alarm_rate=false_alarm_rate,
        )
        transaction.on_commit(lambda: enqueue.baseline_fit(baseline.pk))
    return baseline


def baseline_active(*, project_id: int) -> Baseline | None:
    """The newest ready pinned baseline, else the newest ready trailing one."""
    return (
        Baseline.objects.filter(project_id=project_id, status=BaselineStatus.READY)
        .exclude(state=None)
        .order_by("-pinned", "-fitted_at")
        .first()
    )


def intent_rename(*, cluster: IntentCluster, name: str) -> IntentCluster:
    """Name an intent (an empty name falls back to the automatic label)."""
    name = " ".join(name.split())
    if len(name) > 255:
        raise ApplicationError("name: at most 255 characters", field="name")
    cluster.name = name
    cluster.save(update_fields=["name"])
    return cluster


def baselines_refit_due(*, now: datetime | None = None) -> list[int]:
    """Projects whose active baseline is a trailing one older than a day (pinned ones stay)."""
    now = now or timezone.now()
    out = []
    for monitor in DriftMonitor.objects.filter(enabled=True).only("project_id"):
        active = baseline_active(project_id=monitor.project_id)
        if active is None or active.pinned:
            continue
        if active.fitted_at and active.fitted_at < now - timedelta(days=1):
            out.append(monitor.project_id)
    return out


def baseline_refit_trailing(*, project_id: int) -> Baseline | None:
    """Refit the trailing baseline on the 7 days before the monitor's current window."""
    monitor = DriftMonitor.objects.select_related("project").filter(project_id=project_id).first()
    if monitor is None:
        return None
    end = floor_to_interval(timezone.now(), monitor.interval_minutes) - timedelta(
        hours=monitor.window_hours
    )
    baseline = baseline_request(
        project=monitor.project, start=end - timedelta(days=DEFAULT_BASELINE_DAYS), end=end
    )
    baseline = baseline_fit_run(baseline=baseline)
    baselines_prune(project_id=project_id)
    return baseline


def baselines_prune(*, project_id: int, keep: int = KEEP_TRAILING_STATES) -> int:
    """Drop the state (MBs each) of old trailing baselines and delete old failed fits.

    Rows stay, with their clusters, so past checks keep their intent names; only the 2-D map
    of a check that old can no longer be drawn. Pinned baselines are never touched.
    """
    keep_ids = list(
        Baseline.objects.filter(project_id=project_id, status=BaselineStatus.READY, pinned=False)
        .order_by("-fitted_at")
        .values_list("pk", flat=True)[:keep]
    )
    cleared = (
        Baseline.objects.filter(project_id=project_id, status=BaselineStatus.READY, pinned=False)
        .exclude(pk__in=keep_ids)
        .exclude(state=None)
        .update(state=None)
    )
    Baseline.objects.filter(
        project_id=project_id,
        status=BaselineStatus.FAILED,
        created_at__lt=timezone.now() - timedelta(days=7),
    ).delete()
    return cleared
