"""Drift: detector scores against thresholds, intent shares, the intent map, new intents;
renaming intents and pinning baselines."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.dashboard import charts
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.forms import BaselineFitForm, IntentRenameForm
from apps.dashboard.services import ui_baseline_fit, ui_baseline_pin, ui_intent_rename
from apps.dashboard.views.common import flash_error
from apps.drift.models import DriftCheck
from apps.drift.selectors import (
    baseline_current,
    baseline_list,
    drift_check_latest,
    drift_projection,
    drift_score_series,
    intent_share_series,
    new_intent_groups,
)
from apps.embeddings.selectors import call_prompt_texts

logger = logging.getLogger(__name__)
MAP_CACHE_S = 600

DRIFT_RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@project_view("read")
def drift(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    project = access.project
    key = request.GET.get("range", "7d")
    key = key if key in DRIFT_RANGES else "7d"
    start = timezone.now() - DRIFT_RANGES[key]
    latest = drift_check_latest(project=project)
    baseline = baseline_current(project=project)
    context: dict[str, Any] = {
        "range": key,
        "ranges": list(DRIFT_RANGES),
        "latest": latest,
        "baseline": baseline,
        "baselines": baseline_list(project=project, limit=10),
        "can_rename": access.allows("review"),
        "can_admin": access.allows("admin"),
        "fit_form": BaselineFitForm(),
    }
    if latest is None and baseline is None:
        return render(request, "dashboard/drift.html", {**context, "available": False})
    map_chart = _map_chart(project, latest, baseline)
    context.update(
        available=True,
        detectors=charts.drift_detector_charts(drift_score_series(project=project, start=start)),
        shares_chart=charts.drift_intent_share_chart(
            intent_share_series(project=project, start=start)
        ),
        map_chart=map_chart,
        new_intents=new_intent_groups(project=project),
    )
    return render(request, "dashboard/drift.html", context)


@require_POST
@project_view("review")
def intent_rename(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = IntentRenameForm(request.POST)
    if form.is_valid():
        try:
            cluster = ui_intent_rename(
                project=access.project,
                cluster_id=form.cleaned_data["intent_id"],
                name=form.cleaned_data["name"],
            )
            messages.success(request, f"Intent renamed to “{cluster.display_name}”.")
        except ApplicationError as exc:
            flash_error(request, exc)
    else:
        messages.error(request, "An intent needs a name (at most 200 characters).")
    return redirect("dashboard:drift")


@require_POST
@project_view("admin")
def baseline_pin(request: HttpRequest, access: ProjectAccess, baseline_id: int) -> HttpResponse:
    pinned = request.POST.get("pinned") == "1"
    try:
        ui_baseline_pin(project=access.project, baseline_id=baseline_id, pinned=pinned)
        messages.success(request, "Baseline pinned." if pinned else "Baseline unpinned.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return redirect("dashboard:drift")


@require_POST
@project_view("admin")
def baseline_fit(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = BaselineFitForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a number of days (1-30) or a release.")
        return redirect("dashboard:drift")
    try:
        ui_baseline_fit(
            project=access.project,
            release=form.cleaned_data["release"],
            days=form.cleaned_data["days"] or 7,
        )
        messages.success(
            request, "Baseline requested: the drift worker fits it (a minute or so) and pins it."
        )
    except ApplicationError as exc:
        flash_error(request, exc)
    return redirect("dashboard:drift")


def _map_chart(
    project: Project, latest: DriftCheck | None, baseline: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The intent map figure, cached per (check, baseline, names): decoding the baseline's
    detector state and projecting it takes ~0.5 s and only changes with a new check."""
    names = "|".join(c["name"] for c in (baseline or {}).get("clusters", []))
    check_id = latest.pk if latest else 0
    baseline_id = (baseline or {}).get("id")
    raw_key = f"{project.pk}:{check_id}:{baseline_id}:{names}"
    key = "dashboard:drift-map:" + hashlib.sha256(raw_key.encode()).hexdigest()
    cached: dict[str, Any] | None = cache.get(key)
    if cached is not None:
        return cached or None
    try:
        projection = drift_projection(project=project, check=latest)
    except ValueError:  # a baseline whose stored state cannot be read: no map, the rest works
        logger.exception("drift map unavailable", extra={"project_id": project.pk})
        projection = {"points": []}
    ids = [p["call_id"] for p in projection.get("points", []) if p.get("call_id")]
    texts = dict(zip(ids, call_prompt_texts(project_id=project.pk, call_ids=ids), strict=True))
    figure = charts.drift_map_chart(projection, texts)
    cache.set(key, figure or {}, MAP_CACHE_S)
    return figure
