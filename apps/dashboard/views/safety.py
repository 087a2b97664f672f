"""Settings section "Safety flags": each learned flag's operating point (benign FPR).

The section is ``templates/dashboard/_safety_settings.html``, included by the settings page; it
reads its rows through the ``safety_settings`` template tag, so the settings view needs nothing.
Saving needs ``admin`` (owners and members), like the rest of the settings page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.dashboard.access import ProjectAccess, project_view
from apps.dashboard.views.common import flash_error
from apps.quality.scorers import learned
from apps.quality.services import safety_settings_set

# "" is the deployment's default point.
FPR_FORM_CHOICES = [("", "default"), *((f"{c:g}", f"{c * 100:g}%") for c in learned.FPR_CHOICES)]


class SafetySettingsForm(forms.Form):
    injection_fpr = forms.TypedChoiceField(
        choices=FPR_FORM_CHOICES, coerce=float, empty_value=None, required=False
    )
    toxicity_fpr = forms.TypedChoiceField(
        choices=FPR_FORM_CHOICES, coerce=float, empty_value=None, required=False
    )
    refusal_fpr = forms.TypedChoiceField(
        choices=FPR_FORM_CHOICES, coerce=float, empty_value=None, required=False
    )


@require_POST
@project_view("admin")
def safety_settings_save(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = SafetySettingsForm(request.POST)
    back = redirect("dashboard:settings")
    if not form.is_valid():
        field = next(iter(form.errors), "operating point")
        messages.error(request, f"{field}: choose one of the listed false-positive rates.")
        return back
    try:
        safety_settings_set(project=access.project, **form.cleaned_data)
        messages.success(
            request, "Safety operating points saved; they apply to calls scored from now on."
        )
    except ApplicationError as exc:
        flash_error(request, exc)
    return back
