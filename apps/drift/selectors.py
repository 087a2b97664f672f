"""Drift reads for the API and the UI: checks, series, the 2-D map, baselines and intents.

Every function takes the project first and returns plain dicts and lists (the UI's
``apps.dashboard.charts`` turns them into plotly figures).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import QuerySet

from apps.accounts.models import Project
from apps.core.errors import NotFound
from apps.drift.models import Baseline, CheckStatus, DriftCheck, IntentCluster
from apps.drift.services.baselines import baseline_active
from apps.drift.services.state import baseline_model
from apps.embeddings.selectors import call_prompt_texts, embedding_sample

# The check's large JSON columns, left out of series and lists.
_HEAVY = ("results", "intent_shares", "new_intents", "stream")


def drift_checks(
    *,
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 50,
) -> QuerySet[DriftCheck]:
    """Newest first."""
    qs = DriftCheck.objects.filter(project=project)
    if start is not None:
        qs = qs.filter(window_end__gte=start)
    if end is not None:
        qs = qs.filter(window_end__lt=end)
    return qs.order_by("-window_end", "-pk")[:limit]


def drift_check_get(*, project: Project, check_id: int) -> DriftCheck:
    check = DriftCheck.objects.filter(project=project, pk=check_id).first()
    if check is None:
        raise NotFound("check: not found")
    return check


def drift_check_latest(*, project: Project) -> DriftCheck | None:
    return DriftCheck.objects.filter(project=project).order_by("-window_end", "-pk").first()


def drift_check_as_dict(check: DriftCheck, *, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": check.pk,
        "baseline_id": check.baseline_id,
        "window_start": check.window_start.isoformat(),
        "window_end": check.window_end.isoformat(),
        "status": check.status,
        "n": check.n,
        "tested_n": check.tested_n,
        "drifted": check.drifted,
        "score": check.score,
        "p_value": check.p_value,
        "threshold": check.threshold,
        "summary": check.summary,
        "example_call_ids": [str(i) for i in check.example_call_ids],
        "created_at": check.created_at.isoformat(),
    }
    if full:
        data["detectors"] = {
            name: {k: r.get(k) for k in ("drifted", "score", "threshold", "p_value", "summary")}
            for name, r in check.results.items()
        }
        data["intent_shares"] = check.intent_shares
        data["new_intents"] = check.new_intents
        data["stream"] = check.stream
        data["out_of_domain"] = check.out_of_domain
    return data


def drift_score_series(
    *, project: Project, start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """Per tested window, oldest first: the combined score and each detector's score with its
    calibrated threshold (``threshold`` is null where a detector cannot fire at that size)."""
    qs = DriftCheck.objects.filter(project=project, status=CheckStatus.TESTED)
    if start is not None:
        qs = qs.filter(window_end__gte=start)
    if end is not None:
        qs = qs.filter(window_end__lt=end)
    out = []
    for window_end, score, p_value, threshold, drifted, results in qs.order_by(
        "window_end"
    ).values_list("window_end", "score", "p_value", "threshold", "drifted", "results"):
        out.append(
            {
                "window_end": window_end.isoformat(),
                "score": score,
                "p_value": p_value,
                # The combined test fires when p <= threshold, i.e. score >= -log10(threshold).
                "score_threshold": float(-np.log10(threshold)) if threshold else None,
                "drifted": drifted,
                "detectors": {
                    name: {
                        "score": r.get("score"),
                        "threshold": _finite(r.get("threshold")),
                        "p_value": r.get("p_value"),
                        "drifted": r.get("drifted"),
                    }
                    for name, r in (results or {}).items()
                },
            }
        )
    return out


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def intent_share_series(
    *, project: Project, start: datetime | None = None, end: datetime | None = None
) -> dict[str, Any]:
    """Shares per intent over tested windows: ``{"intents": [{id, name}], "points": [...]}``.

    Names are read now (a rename shows on past points too); a point is
    ``{"window_end", "baseline_id", "shares": {cluster_id: window_share},
    "baseline_shares": {...}}``.
    """
    qs = DriftCheck.objects.filter(project=project, status=CheckStatus.TESTED)
    if start is not None:
        qs = qs.filter(window_end__gte=start)
    if end is not None:
        qs = qs.filter(window_end__lt=end)
    points = []
    cluster_ids: set[int] = set()
    for window_end, baseline_id, shares in qs.order_by("window_end").values_list(
        "window_end", "baseline_id", "intent_shares"
    ):
        window: dict[int, float] = {}
        reference: dict[int, float] = {}
        for entry in shares or []:
            if entry.get("cluster_id") is None:
                continue
            cluster_ids.add(entry["cluster_id"])
            window[entry["cluster_id"]] = entry["window_share"]
            reference[entry["cluster_id"]] = entry["baseline_share"]
        points.append(
            {
                "window_end": window_end.isoformat(),
                "baseline_id": baseline_id,
                "shares": window,
                "baseline_shares": reference,
            }
        )
    intents = [
        {"id": c.pk, "name": c.display_name, "baseline_id": c.baseline_id}
        for c in IntentCluster.objects.filter(project=project, pk__in=cluster_ids).order_by("pk")
    ]
    return {"intents": intents, "points": points}


def new_intent_groups(*, project: Project, check: DriftCheck | None = None) -> list[dict[str, Any]]:
    """New-intent groups of a check (default: the latest tested one), with example texts."""
    check = check or (
        DriftCheck.objects.filter(project=project, status=CheckStatus.TESTED)
        .order_by("-window_end", "-pk")
        .first()
    )
    if check is None:
        return []
    groups = []
    for group in check.new_intents:
        ids = group.get("example_call_ids", [])
        texts = call_prompt_texts(project_id=project.id, call_ids=ids)
        groups.append(
            {**group, "check_id": check.pk, "examples": list(zip(ids, texts, strict=True))}
        )
    return groups


def intent_cluster_as_dict(
    cluster: IntentCluster, *, texts: list[str] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": cluster.pk,
        "baseline_id": cluster.baseline_id,
        "index": cluster.index,
        "name": cluster.display_name,
        "label": cluster.label,
        "custom_name": cluster.name,
        "size": cluster.size,
        "share": cluster.share,
        "example_call_ids": [str(i) for i in cluster.example_call_ids],
    }
    if texts is not None:
        data["example_texts"] = texts
    return data


def baseline_as_dict(baseline: Baseline) -> dict[str, Any]:
    return {
        "id": baseline.pk,
        "status": baseline.status,
        "error": baseline.error,
        "provider_key": baseline.provider_key,
        "start": baseline.start.isoformat() if baseline.start else None,
        "end": baseline.end.isoformat() if baseline.end else None,
        "release": baseline.release,
        "pinned": baseline.pinned,
        "sample_size": baseline.sample_size,
        "false_alarm_rate": baseline.false_alarm_rate,
        "fitted_at": baseline.fitted_at.isoformat() if baseline.fitted_at else None,
        "k": baseline.summary.get("k"),
    }


def baseline_current(*, project: Project, with_texts: bool = True) -> dict[str, Any] | None:
    """The active baseline and its clusters (largest first), with example prompts."""
    baseline = baseline_active(project_id=project.id)
    if baseline is None:
        return None
    clusters = list(IntentCluster.objects.filter(baseline=baseline).order_by("-size", "index"))
    texts: dict[Any, str] = {}
    if with_texts:
        ids = [i for c in clusters for i in c.example_call_ids]
        texts = dict(zip(ids, call_prompt_texts(project_id=project.id, call_ids=ids), strict=True))
    data = baseline_as_dict(baseline)
    data["clusters"] = [
        intent_cluster_as_dict(
            c, texts=[texts.get(i, "") for i in c.example_call_ids] if with_texts else None
        )
        for c in clusters
    ]
    return data


def baseline_list(*, project: Project, limit: int = 20) -> list[Baseline]:
    return list(
        Baseline.objects.filter(project=project).defer("state").order_by("-created_at")[:limit]
    )


def intent_cluster_get(*, project: Project, cluster_id: int) -> IntentCluster:
    cluster = IntentCluster.objects.filter(project=project, pk=cluster_id).first()
    if cluster is None:
        raise NotFound("intent: not found")
    return cluster


def drift_projection(
    *, project: Project, check: DriftCheck | None = None, per_side: int = 300, seed: int = 0
) -> dict[str, Any]:
    """A 2-D map of the baseline sample and the current window (PCA fitted on both).

    Points are ``{"x", "y", "side": "baseline"|"current", "cluster": index, "call_id"}``
    (``call_id`` only for current points; the baseline keeps vectors, not ids); each is
    coloured by its nearest baseline cluster. Plain lists, ready for plotly.
    """
    check = check or drift_check_latest(project=project)
    baseline = (
        Baseline.objects.filter(pk=check.baseline_id).first()
        if check is not None and check.baseline_id
        else baseline_active(project_id=project.id)
    )
    if baseline is None or baseline.state is None:
        return {"points": [], "clusters": []}
    model = baseline_model(baseline=baseline)
    rng = np.random.default_rng(seed)
    reference = model.reference
    if len(reference) > per_side:
        reference = reference[np.sort(rng.choice(len(reference), per_side, replace=False))]
    current_ids: list[Any] = []
    current = np.zeros((0, reference.shape[1]), dtype=np.float32)
    if check is not None:
        sample = embedding_sample(
            project_id=project.id,
            provider_key=baseline.provider_key,
            start=check.window_start,
            end=check.window_end,
            limit=per_side,
            seed=seed,
        )
        if sample.call_ids:  # an empty window comes back as a shapeless array
            current_ids, current = sample.call_ids, sample.vectors
    both = np.concatenate([reference, current]).astype(np.float64)
    mean = both.mean(axis=0)
    _, _, vt = np.linalg.svd(both - mean, full_matrices=False)
    xy = (both - mean) @ vt[:2].T
    nearest, _ = model.intents.assign(both)
    names = {c.index: c.display_name for c in IntentCluster.objects.filter(baseline=baseline)}
    points = []
    for i in range(len(both)):
        is_current = i >= len(reference)
        points.append(
            {
                "x": round(float(xy[i, 0]), 5),
                "y": round(float(xy[i, 1]), 5),
                "side": "current" if is_current else "baseline",
                "cluster": int(nearest[i]),
                "call_id": str(current_ids[i - len(reference)]) if is_current else None,
            }
        )
    clusters = [
        {"index": c, "name": names.get(c, model.intents.labels[c])} for c in range(model.intents.k)
    ]
    return {"points": points, "clusters": clusters, "baseline_id": baseline.pk}
