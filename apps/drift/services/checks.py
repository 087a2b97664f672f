"""Drift checks: a window of embedded calls tested against the active baseline, stored once per
(monitor, window end), with out-of-domain examples, intent shares and new-intent groups.

Never mixing vector spaces: when the project now embeds with another provider key than the
baseline's, a check says "baseline needs refit" instead of reporting the model change as drift.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.drift import detectors
from apps.drift.detectors import BaselineTestResult, ood_scores
from apps.drift.detectors.baseline import MIN_WINDOW
from apps.drift.models import (
    Baseline,
    BaselineStatus,
    CheckStatus,
    DriftCheck,
    DriftMonitor,
    IntentCluster,
)
from apps.drift.services.baselines import (
    DEFAULT_BASELINE_DAYS,
    EXAMPLES,
    REFIT_RETRY_AFTER,
    baseline_active,
    baseline_fit_run,
    baseline_request,
)
from apps.drift.services.monitors import (
    drift_monitor_claim,
    drift_monitor_ensure,
    drift_monitor_release,
)
from apps.drift.services.state import (
    baseline_model,
    current_provider_key,
    state_decode,
    state_encode,
)
from apps.drift.services.stream import stream_feed
from apps.drift.services.windows import Window, floor_to_interval
from apps.embeddings.selectors import VectorSample, embedding_sample

logger = logging.getLogger(__name__)


# Windows are tested at one of these sizes (the largest that fits): a calibration is computed
# once per size and kept in the baseline, so checks of ragged window counts reuse a handful of
# calibrations instead of recomputing 1,000 resamples each time.
WINDOW_GRID = (20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000)


# detectors.Baseline.fit calibrates the k-NN threshold for this share of in-domain calls.
OOD_EXPECTED_SHARE = 0.01


OOD_MAX = 5000


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
        end = floor_to_interval(timezone.now(), monitor.interval_minutes)
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
        end = floor_to_interval(end, monitor.interval_minutes)
    window = Window(start=end - timedelta(hours=monitor.window_hours), end=end)
    existing = DriftCheck.objects.filter(monitor=monitor, window_end=window.end).first()
    if existing is not None:
        return existing
    fields = _check_outcome(monitor=monitor, window=window, fit_k=fit_k)
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


def _baseline_for_window(
    *, monitor: DriftMonitor, window: Window, provider_key: str, fit_k: int | None
) -> Baseline:
    """The active baseline; when there is none (a project's first check), one fitted now on the
    7 days before the window, unless a fit failed recently. The result may not be READY."""
    baseline = baseline_active(project_id=monitor.project_id)
    if baseline is not None:
        return baseline
    failed = _recent_failed_baseline(project_id=monitor.project_id, provider_key=provider_key)
    if failed is not None:
        return failed
    requested = baseline_request(
        project=monitor.project,
        start=window.start - timedelta(days=DEFAULT_BASELINE_DAYS),
        end=window.start,
        provider_key=provider_key,
    )
    return baseline_fit_run(baseline=requested, k=fit_k)


def _check_outcome(*, monitor: DriftMonitor, window: Window, fit_k: int | None) -> dict[str, Any]:
    """The fields of the window's DriftCheck: its status and, when the test ran, its result."""
    project_id = monitor.project_id
    key = current_provider_key(project_id=project_id)
    if key is None:
        return {"status": CheckStatus.TOO_FEW, "summary": "No embedded calls yet."}
    baseline = _baseline_for_window(monitor=monitor, window=window, provider_key=key, fit_k=fit_k)
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
    stream = stream_feed(monitor=monitor, baseline=baseline)
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
    if stream.get("alarm"):
        summary += " " + stream["summary"]
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
    *, model: detectors.Baseline, sample: VectorSample, alpha: float
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


def _baseline_state_save(*, baseline: Baseline, model: detectors.Baseline) -> None:
    """Keep a calibration computed for a new window size (1,000 resamples) for later checks."""
    state = state_decode(baseline.state)
    state["detector"] = model.to_state()
    Baseline.objects.filter(pk=baseline.pk).update(state=state_encode(state))


def _intent_shares(
    *,
    model: detectors.Baseline,
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
