"""Evaluators: the list (status, paused reason, spend, scores), LLM connections, and the
create/edit form with a preview on the last matching calls before saving."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.views.common import flash_error
from apps.evaluators import selectors, services
from apps.evaluators.library import TEMPLATES
from apps.evaluators.local import SCORERS
from apps.evaluators.models import Evaluator, EvaluatorKind, Provider, ScoreType


class EvaluatorForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=EvaluatorKind.choices)
    template = forms.CharField(required=False, max_length=64)
    connection = forms.IntegerField(required=False)
    model = forms.CharField(required=False, max_length=255)
    instruction = forms.CharField(required=False, max_length=20_000)
    prompt_template = forms.CharField(required=False, max_length=50_000)
    scorer = forms.CharField(required=False, max_length=64)
    score_type = forms.ChoiceField(choices=ScoreType.choices, required=False)
    labels = forms.CharField(required=False, max_length=2000, help_text="comma-separated")
    sampling_rate = forms.FloatField(min_value=0.0, max_value=1.0, initial=1.0)
    daily_budget_usd = forms.FloatField(min_value=0.0, required=False)
    filter_model = forms.CharField(required=False, max_length=2000)
    filter_release = forms.CharField(required=False, max_length=2000)
    filter_environment = forms.CharField(required=False, max_length=2000)
    filter_name = forms.CharField(required=False, max_length=2000)
    filter_tags = forms.CharField(required=False, max_length=2000)
    filter_kind = forms.CharField(required=False, max_length=200)

    def evaluator_data(self, access: ProjectAccess) -> dict[str, Any]:
        d = self.cleaned_data
        data: dict[str, Any] = {
            "name": d["name"],
            "kind": d["kind"],
            "sampling_rate": d["sampling_rate"],
            "daily_budget_usd": d.get("daily_budget_usd"),
            "filters": {
                key: _split(d.get(f"filter_{key}") or "")
                for key in services.FILTER_KEYS
                if _split(d.get(f"filter_{key}") or "")
            },
        }
        if d["kind"] == EvaluatorKind.LLM_JUDGE:
            data.update(
                template=d.get("template") or "",
                model=d.get("model") or "",
                instruction=d.get("instruction") or "",
                prompt_template=d.get("prompt_template") or "",
                score_type=d.get("score_type") or ScoreType.NUMERIC,
                labels=_split(d.get("labels") or ""),
                connection=selectors.connection_get(
                    project=access.project, connection_id=d["connection"]
                )
                if d.get("connection")
                else None,
            )
        else:
            data["scorer"] = d.get("scorer") or ""
        return data


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _initial(evaluator: Evaluator | None, template_key: str) -> dict[str, Any]:
    if evaluator is not None:
        f = evaluator.filters or {}
        return {
            "name": evaluator.name,
            "kind": evaluator.kind,
            "template": evaluator.template,
            "connection": evaluator.connection_id,
            "model": evaluator.model,
            "instruction": evaluator.instruction,
            "prompt_template": evaluator.prompt_template,
            "scorer": evaluator.scorer,
            "score_type": evaluator.score_type,
            "labels": ", ".join(evaluator.labels),
            "sampling_rate": evaluator.sampling_rate,
            "daily_budget_usd": evaluator.daily_budget_usd,
            **{f"filter_{k}": ", ".join(f.get(k, [])) for k in services.FILTER_KEYS},
        }
    template = TEMPLATES.get(template_key) or TEMPLATES["helpfulness"]
    return {
        "name": template.key,
        "kind": EvaluatorKind.LLM_JUDGE,
        "template": template.key,
        "instruction": template.instruction,
        "prompt_template": template.prompt_template,
        "score_type": template.score_type,
        "labels": ", ".join(template.labels),
        "sampling_rate": 0.1,
        "daily_budget_usd": 1.0,
    }


@project_view("read")
def evaluators(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    context = {
        "summaries": selectors.evaluator_summaries(project=access.project),
        "connections": list(selectors.connection_list(project=access.project)),
        "providers": Provider.choices,
        "templates": list(TEMPLATES.values()),
        "can_act": access.allows("admin"),
    }
    return render(request, "evaluators/list.html", context)


def _form_context(
    access: ProjectAccess, form: EvaluatorForm, evaluator: Evaluator | None
) -> dict[str, Any]:
    return {
        "form": form,
        "evaluator": evaluator,
        "connections": list(selectors.connection_list(project=access.project)),
        "templates": list(TEMPLATES.values()),
        "scorers": list(SCORERS.values()),
        "kinds": EvaluatorKind.choices,
        "score_types": ScoreType.choices,
        "judge_calls": selectors.judge_calls_recent(project=access.project, evaluator=evaluator)
        if evaluator is not None
        else [],
        "errors": selectors.jobs_recent_errors(project=access.project, evaluator=evaluator)
        if evaluator is not None
        else [],
    }


@project_view("admin")
def evaluator_edit(
    request: HttpRequest, access: ProjectAccess, evaluator_id: int | None = None
) -> HttpResponse:
    evaluator = (
        selectors.evaluator_get(project=access.project, evaluator_id=evaluator_id)
        if evaluator_id is not None
        else None
    )
    if request.method != "POST":
        form = EvaluatorForm(initial=_initial(evaluator, request.GET.get("template", "")))
        return render(request, "evaluators/form.html", _form_context(access, form, evaluator))
    form = EvaluatorForm(request.POST)
    context = _form_context(access, form, evaluator)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        messages.error(request, f"{field}: {errors[0]}")
        return render(request, "evaluators/form.html", context, status=400)
    try:
        data = form.evaluator_data(access)
        if request.POST.get("action") == "preview":
            draft = services.evaluator_build(project=access.project, **data)
            if evaluator is not None:
                draft.pk = evaluator.pk
            context["preview"] = services.evaluator_preview(evaluator=draft, limit=5)
            return render(request, "evaluators/form.html", context)
        if evaluator is None:
            evaluator = services.evaluator_create(project=access.project, **data)
            messages.success(request, f"Evaluator “{evaluator.name}” created.")
        else:
            evaluator = services.evaluator_update(evaluator=evaluator, **data)
            messages.success(request, f"Evaluator “{evaluator.name}” saved (v{evaluator.version}).")
    except ApplicationError as exc:
        flash_error(request, exc)
        return render(request, "evaluators/form.html", context, status=400)
    return redirect("dashboard:evaluators")


@require_POST
@project_view("admin")
def evaluator_action(
    request: HttpRequest, access: ProjectAccess, evaluator_id: int, action: str
) -> HttpResponse:
    if action not in ("pause", "resume", "delete", "backfill"):
        raise Http404("action: not found")
    try:
        evaluator = selectors.evaluator_get(project=access.project, evaluator_id=evaluator_id)
        if action == "delete":
            services.evaluator_delete(evaluator=evaluator)
            messages.success(request, f"Evaluator “{evaluator.name}” deleted.")
        elif action == "backfill":
            end = timezone.now()
            queued = services.evaluator_backfill(
                evaluator=evaluator, start=end - timedelta(hours=24), end=end
            )
            messages.success(request, f"{queued} calls of the last 24 hours queued for scoring.")
        else:
            status = "paused" if action == "pause" else "active"
            services.evaluator_update(evaluator=evaluator, status=status)
            messages.success(request, f"Evaluator “{evaluator.name}” {action}d.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return redirect("dashboard:evaluators")


@require_POST
@project_view("admin")
def connection_new(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    fields = ("name", "provider", "base_url", "api_key", "default_model")
    values = {f: str(request.POST.get(f, "")) for f in fields}
    try:
        conn = services.connection_create(project=access.project, **values)
        messages.success(request, f"Connection “{conn.name}” added; its key is stored encrypted.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return redirect("dashboard:evaluators")


@require_POST
@project_view("admin")
def connection_remove(
    request: HttpRequest, access: ProjectAccess, connection_id: int
) -> HttpResponse:
    try:
        conn = selectors.connection_get(project=access.project, connection_id=connection_id)
        services.connection_delete(connection=conn)
        messages.success(request, f"Connection “{conn.name}” deleted.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return redirect("dashboard:evaluators")
