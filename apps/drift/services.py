"""Drift writes: fitting baselines, running checks, feeding the streaming detector, renames.

The statistics live in :mod:`apps.drift.detectors` (pure numpy); this module moves vectors
between PostgreSQL and those detectors and stores what they conclude.

Never mixing vector spaces: every baseline records the provider key of the vectors it was fit
on and reads only vectors of that key; when the project now embeds with another key, a check
says "baseline needs refit" instead of reporting the model change as drift.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.drift import enqueue
from apps.drift.detectors import Baseline as DetectorBaseline
from apps.drift.detectors import BaselineTestResult, MewmaDetector, ood_scores
from apps.drift.detectors.baseline import MIN_WINDOW
from apps.drift.models import (
    Baseline,
    BaselineStatus,
    CheckStatus,
    DriftCheck,
    DriftMonitor,
    IntentCluster,
)
from apps.embeddings.models import CallEmbedding, EmbeddingKind
from apps.embeddings.selectors import VectorSample, embedding_sample

logger = logging.getLogger(__name__)

DEFAULT_BASELINE_DAYS = 7
# The detectors need at least 4 windows' worth of reference (4 * MIN_WINDOW).
MIN_REFERENCE = 4 * MIN_WINDOW
# A bigger reference adds little power (the window is the noisy side) and costs fit time:
# choosing k by silhouette is ~30 s at 2,000 rows on 2 cores.
MAX_REFERENCE = 2000
CLUSTER_SAMPLE = 1000
# Windows are tested at one of these sizes (the largest that fits): a calibration is computed
# once per size and kept in the baseline, so checks of ragged window counts reuse a handful of
# calibrations instead of recomputing 1,000 resamples each time.
WINDOW_GRID = (20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000)
# Two baseline centroids this close (cosine) are "the same intent": a reviewer's name carries over.
NAME_CARRY_SIMILARITY = 0.9
STREAM_FEED_LIMIT = 10_000
STUCK_AFTER = timedelta(minutes=30)
REFIT_RETRY_AFTER = timedelta(hours=6)
KEEP_TRAILING_STATES = 7
EXAMPLES = 5
# detectors.Baseline.fit calibrates the k-NN threshold for this share of in-domain calls.
OOD_EXPECTED_SHARE = 0.01
OOD_MAX = 5000


# --- state blob ----------------------------------------------------------------------------


def state_encode(state: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode("utf-8"), 3)


def state_decode(blob: bytes | memoryview | None) -> dict[str, Any]:
    if blob is None:
        raise ValueError("baseline has no state")
    loaded: dict[str, Any] = json.loads(zlib.decompress(bytes(blob)))
    return loaded


def baseline_model(*, baseline: Baseline) -> DetectorBaseline:
    """The detector object of a stored baseline."""
    return DetectorBaseline.from_state(state_decode(baseline.state)["detector"])


# --- provider keys -------------------------------------------------------------------------


def current_provider_key(*, project_id: int) -> str | None:
    """The key of the project's newest vectors: what a check compares against the baseline."""
    return (
        CallEmbedding.objects.filter(project_id=project_id)
        .order_by("-created_at")
        .values_list("provider_key", flat=True)
        .first()
    )


# --- baselines -----------------------------------------------------------------------------


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
    model = DetectorBaseline.fit(
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
        return MewmaDetector.fit(reference, n_components=min(32, len(reference) // 2))
    except ValueError:
        logger.warning("streaming detector not fitted: reference of %d rows", len(reference))
        return None


def _clusters_create(
    *, baseline: Baseline, model: DetectorBaseline, sample: VectorSample, shares: np.ndarray
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


# --- intents -------------------------------------------------------------------------------


def intent_rename(*, cluster: IntentCluster, name: str) -> IntentCluster:
    """Name an intent (an empty name falls back to the automatic label)."""
    name = " ".join(name.split())
    if len(name) > 255:
        raise ApplicationError("name: at most 255 characters", field="name")
    cluster.name = name
    cluster.save(update_fields=["name"])
    return cluster


# --- monitors --------------------------------------------------------------------------------


def drift_monitor_ensure(*, project: Project) -> DriftMonitor:
    monitor, _ = DriftMonitor.objects.get_or_create(project=project)
    return monitor


def drift_monitors_ensure() -> int:
    """A monitor for every project that has embedded calls and none yet; returns how many."""
    projects = Project.objects.filter(
        Exists(CallEmbedding.objects.filter(project_id=OuterRef("pk"))),
        ~Exists(DriftMonitor.objects.filter(project_id=OuterRef("pk"))),
    ).values_list("pk", flat=True)
    created = 0
    for project_id in projects:
        _, new = DriftMonitor.objects.get_or_create(project_id=project_id)
        created += int(new)
    return created


def _aligned(moment: datetime, minutes: int) -> datetime:
    """``moment`` floored to a multiple of ``minutes`` since the epoch (stable window ends)."""
    step = max(minutes, 1) * 60
    return datetime.fromtimestamp(int(moment.timestamp()) // step * step, tz=moment.tzinfo)


def drift_monitor_claim(*, monitor_id: int) -> bool:
    """Claim a due monitor for one check; False when another worker holds it."""
    now = timezone.now()
    return bool(
        DriftMonitor.objects.filter(pk=monitor_id, enabled=True, running_since__isnull=True).update(
            running_since=now
        )
    )


def drift_monitor_release(*, monitor: DriftMonitor) -> None:
    now = timezone.now()
    following = _aligned(now, monitor.interval_minutes) + timedelta(
        minutes=monitor.interval_minutes
    )
    DriftMonitor.objects.filter(pk=monitor.pk).update(
        running_since=None, next_check_at=following, last_check_at=now
    )


def drift_monitor_check(*, monitor_id: int) -> DriftCheck | None:
    """Run the due check of one monitor, unless another worker is already running it."""
    if not drift_monitor_claim(monitor_id=monitor_id):
        return None
    monitor = DriftMonitor.objects.select_related("project").get(pk=monitor_id)
    try:
        return drift_check_run(monitor=monitor)
    except (OperationalError, InterfaceError):
        raise  # transient: the task retries
    except Exception as exc:
        # A bug or bad data would fail the same way on retry: record it where users look.
        logger.exception("drift check of monitor %s failed", monitor_id)
        end = _aligned(timezone.now(), monitor.interval_minutes)
        check, _ = DriftCheck.objects.get_or_create(
            monitor=monitor,
            window_end=end,
            defaults={
                "project_id": monitor.project_id,
                "window_start": end - timedelta(hours=monitor.window_hours),
                "status": CheckStatus.FAILED,
                "summary": f"Check failed: {type(exc).__name__}: {str(exc)[:500]}",
            },
        )
        return check
    finally:
        drift_monitor_release(monitor=monitor)


def drift_monitors_unstick(*, older_than: timedelta = STUCK_AFTER) -> int:
    """Janitor: release monitors whose worker died mid-check (claims held too long)."""
    return DriftMonitor.objects.filter(running_since__lt=timezone.now() - older_than).update(
        running_since=None
    )


def drift_monitors_due(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        DriftMonitor.objects.filter(
            enabled=True, next_check_at__lte=now, running_since__isnull=True
        ).values_list("pk", flat=True)
    )


# --- checks ----------------------------------------------------------------------------------


@dataclass
class _Window:
    start: datetime
    end: datetime


def drift_check_run(
    *,
    monitor: DriftMonitor | None = None,
    project: Project | None = None,
    window_end: datetime | None = None,
    aligned: bool = True,
    fit_k: int | None = None,
) -> DriftCheck:
    """Test the monitor's current window against the active baseline and store the result.

    With no active baseline one is fitted on the 7 days before the window. ``window_end``
    defaults to now, floored to the monitor's interval when ``aligned`` (so a re-run of the
    same scheduled check finds its stored result instead of adding one).
    """
    if monitor is None:
        if project is None:
            raise ValueError("drift_check_run needs a monitor or a project")
        monitor = drift_monitor_ensure(project=project)
    end = window_end or timezone.now()
    if aligned and window_end is None:
        end = _aligned(end, monitor.interval_minutes)
    window = _Window(start=end - timedelta(hours=monitor.window_hours), end=end)
    existing = DriftCheck.objects.filter(monitor=monitor, window_end=window.end).first()
    if existing is not None:
        return existing
    fields = _check_fields(monitor=monitor, window=window, fit_k=fit_k)
    try:
        with transaction.atomic():
            return DriftCheck.objects.create(
                monitor=monitor,
                project_id=monitor.project_id,
                window_start=window.start,
                window_end=window.end,
                **fields,
            )
    except IntegrityError:
        # A concurrent run stored the same window first.
        return DriftCheck.objects.get(monitor=monitor, window_end=window.end)


def _check_fields(*, monitor: DriftMonitor, window: _Window, fit_k: int | None) -> dict[str, Any]:
    project_id = monitor.project_id
    key = current_provider_key(project_id=project_id)
    if key is None:
        return {"status": CheckStatus.TOO_FEW, "summary": "No embedded calls yet."}
    baseline = baseline_active(project_id=project_id)
    if baseline is None:
        failed = _recent_failed_baseline(project_id=project_id, provider_key=key)
        if failed is not None:
            return {
                "status": CheckStatus.NO_BASELINE,
                "baseline": failed,
                "summary": f"No baseline yet: {failed.error}.",
            }
        baseline = baseline_request(
            project=monitor.project,
            start=window.start - timedelta(days=DEFAULT_BASELINE_DAYS),
            end=window.start,
            provider_key=key,
        )
        baseline = baseline_fit_run(baseline=baseline, k=fit_k)
        if baseline.status != BaselineStatus.READY:
            return {
                "status": CheckStatus.NO_BASELINE,
                "baseline": baseline,
                "summary": f"No baseline yet: {baseline.error}.",
            }
    if baseline.provider_key != key:
        return {
            "status": CheckStatus.NEEDS_REFIT,
            "baseline": baseline,
            "summary": (
                f"Baseline needs refit: it was fit on vectors of {baseline.provider_key}, and the "
                f"project now embeds with {key}. A model change is not drift; refit the baseline."
            ),
        }
    model = baseline_model(baseline=baseline)
    limit = min(monitor.max_window, model.max_window)
    sample = embedding_sample(
        project_id=project_id, provider_key=key, start=window.start, end=window.end
    )
    n = len(sample)
    size = max((s for s in WINDOW_GRID if s <= min(n, limit)), default=0)
    stream = _stream_feed(monitor=monitor, baseline=baseline)
    if size < MIN_WINDOW:
        return {
            "status": CheckStatus.TOO_FEW,
            "baseline": baseline,
            "n": n,
            "stream": stream,
            "summary": (
                f"Not tested: {n} embedded calls in the window, at least {MIN_WINDOW} needed."
            ),
        }
    out_of_domain = _out_of_domain(model=model, sample=sample, alpha=baseline.false_alarm_rate)
    if size < n:
        rng = np.random.default_rng(int(window.end.timestamp()))
        rows = np.sort(rng.choice(n, size, replace=False))
        sample = VectorSample(
            call_ids=[sample.call_ids[i] for i in rows],
            start_times=[sample.start_times[i] for i in rows],
            vectors=sample.vectors[rows],
        )
    from apps.embeddings.selectors import call_prompt_texts

    sample.texts = call_prompt_texts(project_id=project_id, call_ids=sample.call_ids)
    had_calibration = size in model.calibrations
    result = model.test(sample.vectors, texts=sample.texts)
    if not had_calibration:
        _baseline_state_save(baseline=baseline, model=model)
    clusters = {c.index: c for c in IntentCluster.objects.filter(baseline=baseline)}
    shares = _intent_shares(model=model, result=result, sample=sample, clusters=clusters)
    new_intents = _new_intents(result=result, sample=sample, clusters=clusters)
    examples: list[str] = []
    for group in new_intents:
        examples.extend(group["example_call_ids"])
    for entry in shares:
        if entry["moved"] == "grew":
            examples.extend(entry["example_call_ids"])
    summary = result.summary
    if out_of_domain["drifted"]:
        summary += " " + out_of_domain["summary"]
    return {
        "status": CheckStatus.TESTED,
        "baseline": baseline,
        "n": n,
        "tested_n": size,
        "drifted": result.drifted,
        "score": result.score,
        "p_value": result.p_value,
        "threshold": result.threshold,
        "summary": summary,
        "results": {name: r.to_dict() for name, r in result.results.items()},
        "out_of_domain": out_of_domain,
        "intent_shares": shares,
        "new_intents": new_intents,
        "example_call_ids": list(dict.fromkeys(examples))[:50],
        "stream": stream,
    }


def _recent_failed_baseline(*, project_id: int, provider_key: str) -> Baseline | None:
    """A fit that failed lately: checks do not retry it every interval (it would fail again
    until more history arrives)."""
    return (
        Baseline.objects.filter(
            project_id=project_id,
            provider_key=provider_key,
            status=BaselineStatus.FAILED,
            created_at__gte=timezone.now() - REFIT_RETRY_AFTER,
        )
        .order_by("-created_at")
        .first()
    )


def _out_of_domain(
    *, model: DetectorBaseline, sample: VectorSample, alpha: float
) -> dict[str, Any]:
    """k-NN distance of every window call (up to ``OOD_MAX``) to the baseline reference."""
    from scipy import stats as scipy_stats

    rows = np.arange(len(sample))
    if len(rows) > OOD_MAX:
        rows = np.sort(np.random.default_rng(0).choice(len(rows), OOD_MAX, replace=False))
    result = ood_scores(
        model.reference,
        sample.vectors[rows],
        threshold=model.ood_threshold,
        k=model.ood_neighbours,
    )
    n, flagged = len(rows), int(result.flagged.sum())
    # One-sided binomial test against the rate the threshold was calibrated for.
    p_value = float(scipy_stats.binom.sf(flagged - 1, n, OOD_EXPECTED_SHARE)) if n else 1.0
    worst = np.argsort(-result.scores)[: min(flagged, EXAMPLES)]
    share = flagged / n if n else 0.0
    return {
        "n": n,
        "flagged": flagged,
        "share": share,
        "expected_share": OOD_EXPECTED_SHARE,
        "p_value": p_value,
        "drifted": bool(n and p_value <= alpha),
        "threshold": result.threshold,
        "summary": (
            f"{100 * share:.1f}% of calls ({flagged}) are unlike any baseline call "
            f"(expected {100 * OOD_EXPECTED_SHARE:.0f}%)."
        ),
        "example_call_ids": [str(sample.call_ids[int(rows[i])]) for i in worst],
    }


def _baseline_state_save(*, baseline: Baseline, model: DetectorBaseline) -> None:
    """Keep a calibration computed for a new window size (1,000 resamples) for later checks."""
    state = state_decode(baseline.state)
    state["detector"] = model.to_state()
    Baseline.objects.filter(pk=baseline.pk).update(state=state_encode(state))


def _intent_shares(
    *,
    model: DetectorBaseline,
    result: BaselineTestResult,
    sample: VectorSample,
    clusters: dict[int, IntentCluster],
) -> list[dict[str, Any]]:
    detail = result.results.get("intent_share")
    per_cluster = {c["cluster"]: c for c in (detail.details.get("clusters", []) if detail else [])}
    grew = set(detail.details.get("grew", [])) if detail and detail.drifted else set()
    shrank = set(detail.details.get("shrank", [])) if detail and detail.drifted else set()
    vectors = sample.vectors.astype(np.float64)
    labels, distances = model.intents.assign(vectors)
    counts = np.bincount(labels, minlength=model.intents.k)
    base = model.shares
    out = []
    for c in range(model.intents.k):
        cluster = clusters.get(c)
        rows = np.flatnonzero(labels == c)
        closest = rows[np.argsort(distances[rows])][:EXAMPLES]
        info = per_cluster.get(c, {})
        out.append(
            {
                "cluster_id": cluster.pk if cluster else None,
                "index": c,
                "name": cluster.display_name if cluster else model.intents.labels[c],
                "baseline_share": float(info.get("baseline_share", base[c])),
                "window_share": float(info.get("window_share", counts[c] / max(len(labels), 1))),
                "z": info.get("z"),
                "moved": "grew" if c in grew else "shrank" if c in shrank else "",
                "example_call_ids": [str(sample.call_ids[int(i)]) for i in closest],
            }
        )
    return out


def _new_intents(
    *, result: BaselineTestResult, sample: VectorSample, clusters: dict[int, IntentCluster]
) -> list[dict[str, Any]]:
    detail = result.results.get("new_intent")
    if detail is None:
        return []
    out = []
    for group in detail.details.get("groups", []):
        nearest = clusters.get(int(group.get("nearest_baseline_cluster", -1)))
        out.append(
            {
                "size": int(group["size"]),
                "share": float(group["share"]),
                "label": group.get("label") or "",
                "example_call_ids": [str(sample.call_ids[int(i)]) for i in group["examples"]],
                "example_texts": list(group.get("example_texts", [])),
                "nearest_cluster_id": nearest.pk if nearest else None,
                "nearest_cluster_name": nearest.display_name if nearest else "",
            }
        )
    return out


# --- streaming -------------------------------------------------------------------------------


def _stream_feed(*, monitor: DriftMonitor, baseline: Baseline) -> dict[str, Any]:
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


# --- scheduled refits ----------------------------------------------------------------------


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
    end = _aligned(timezone.now(), monitor.interval_minutes) - timedelta(hours=monitor.window_hours)
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
