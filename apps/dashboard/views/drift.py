"""Drift: a plain-language verdict, detector scores against thresholds, intent shares, the
intent map, new intents (open their calls, name them, send a sample to review); renaming
intents, pinning baselines and "check now"."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.dashboard import charts
from apps.dashboard.access import ProjectAccess, acting_user, project_view
from apps.dashboard.forms import (
    BaselineFitForm,
    IntentGroupForm,
    IntentGroupNameForm,
    IntentRenameForm,
)
from apps.dashboard.services import ui_baseline_fit, ui_baseline_pin, ui_intent_rename
from apps.dashboard.views.common import flash_error
from apps.drift.models import CheckStatus, DriftCheck, DriftMonitor
from apps.drift.selectors import (
    baseline_current,
    baseline_list,
    drift_check_latest,
    drift_projection,
    drift_score_series,
    intent_share_series,
    new_intent_groups,
)
from apps.drift.services.intent_groups import (
    REVIEW_SAMPLE,
    drift_check_request,
    intent_group_get,
    intent_group_name,
    intent_group_names,
    intent_group_send_to_review,
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
        "review_sample": REVIEW_SAMPLE,
        "monitor": DriftMonitor.objects.filter(project=project).first(),
    }
    if latest is None and baseline is None:
        return render(request, "dashboard/drift.html", {**context, "available": False})
    map_chart = _map_chart(project, latest, baseline)
    new_intents = new_intent_groups(project=project)
    for group, name in zip(
        new_intents, intent_group_names(project=project, groups=new_intents), strict=True
    ):
        group["name"] = name
    context.update(
        available=True,
        detectors=charts.drift_detector_charts(drift_score_series(project=project, start=start)),
        shares_chart=charts.drift_intent_share_chart(
            intent_share_series(project=project, start=start)
        ),
        map_chart=map_chart,
        new_intents=new_intents,
        verdict=verdict_sentence(latest, new_intents) if latest else "",
    )
    return render(request, "dashboard/drift.html", context)


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.01 else "under 1%"


def verdict_sentence(check: DriftCheck, new_intents: list[dict[str, Any]]) -> str:
    """The verdict in one plain sentence, before any statistics."""
    if check.status == CheckStatus.TOO_FEW:
        return (
            f"Too few calls to judge: the last window had {check.n} embedded calls, "
            "fewer than a test needs."
        )
    if check.status == CheckStatus.NO_BASELINE:
        return "No baseline yet: drift is judged once a baseline of normal traffic is fitted."
    if check.status == CheckStatus.NEEDS_REFIT:
        return (
            "The embedding model changed since the baseline: fit a new baseline before "
            "drift can be judged."
        )
    if check.status == CheckStatus.FAILED:
        return "The last drift check failed; the error is below."
    if not check.drifted:
        return (
            f"What users ask still looks like the baseline: no test crossed its alarm line "
            f"on {check.tested_n} calls."
        )
    parts = []
    if new_intents:
        largest = max(new_intents, key=lambda g: g.get("size", 0))
        title = largest.get("name") or largest.get("label") or "an unnamed group"
        parts.append(
            f"{_pct(float(largest.get('share', 0)))} of calls ask about something new ({title})"
        )
    moved = [s for s in check.intent_shares or [] if s.get("moved") and s.get("name")]
    for share in moved[:2]:
        word = "more" if share["moved"] == "grew" else "fewer"
        parts.append(f"{word} calls are about {share['name']}")
    if not parts:
        return "Users are asking different things than in the baseline."
    return "Users are asking different things than in the baseline: " + "; ".join(parts) + "."


def _group_ref_or_back(request: HttpRequest, access: ProjectAccess, form: IntentGroupForm) -> Any:
    if not form.is_valid():
        messages.error(request, "That new-intent group is not on this page any more.")
        return None
    try:
        return intent_group_get(
            project=access.project,
            check_id=form.cleaned_data["check_id"],
            index=form.cleaned_data["index"],
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        return None


@require_POST
@project_view("review")
def group_name(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = IntentGroupNameForm(request.POST)
    ref = _group_ref_or_back(request, access, form)
    if ref is not None:
        try:
            name = intent_group_name(
                project=access.project, ref=ref, name=form.cleaned_data["name"]
            )
            messages.success(
                request, f"New intent named “{name}”." if name else "New intent name removed."
            )
        except ApplicationError as exc:
            flash_error(request, exc)
    return redirect(reverse("dashboard:drift") + "#new-intents")


@require_POST
@project_view("review")
def group_review(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    ref = _group_ref_or_back(request, access, IntentGroupForm(request.POST))
    if ref is None:
        return redirect("dashboard:drift")
    try:
        batch, queued = intent_group_send_to_review(
            project=access.project, ref=ref, requested_by=acting_user(request)
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        return redirect("dashboard:drift")
    messages.success(
        request,
        f"{queued} call{'' if queued == 1 else 's'} sent to the review queue"
        + ("." if queued else " (this sample was queued already)."),
    )
    return redirect(
        reverse("dashboard:review") + "?" + urlencode({"mode": "requested", "batch": batch})
    )


@require_POST
@project_view("admin")
def check_now(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    drift_check_request(project=access.project)
    messages.success(
        request,
        f"Drift check queued at {timezone.now():%H:%M} UTC: the drift worker tests the current "
        "window in a minute or so; reload to see it.",
    )
    return redirect("dashboard:drift")


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
