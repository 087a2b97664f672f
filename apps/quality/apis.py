"""REST API of a project's safety operating points.

| method and path                     | scope | view             |
| ----------------------------------- | ----- | ---------------- |
| GET         /api/v1/safety-settings | read  | SafetySettingsApi |
| PATCH, PUT  /api/v1/safety-settings | admin | SafetySettingsApi |

Each learned safety flag (injection, toxicity, refusal) is set for a benign false-positive rate;
the answer says, per signal, the rate chosen (null: the deployment's default), the rate in force,
the benign FPR measured there, and the recall measured there on source families the probe was
not trained on (leave-one-source-out, from the figures shipped in the probe file).
"""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, request_project
from apps.core.strict import BodySerializer
from apps.quality.scorers import learned
from apps.quality.selectors import SafetySignalSetting, safety_settings_get
from apps.quality.services import safety_settings_set

FPR_FIELD_CHOICES = [(c, f"{c:g}") for c in learned.FPR_CHOICES]


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def safety_setting_as_dict(row: SafetySignalSetting) -> dict[str, Any]:
    point = row.point
    return {
        "signal": row.signal,
        "chosen_fpr": row.chosen_fpr,
        "target_fpr": point.target_fpr,
        "expected_fpr": _finite(point.expected_fpr),
        "heldout_recall": point.heldout_recall,
        "heldout_worst_family": point.heldout_worst_family,
        "heldout_worst_recall": point.heldout_worst_recall,
        "source": point.source,
    }


class SafetySettingsApi(APIView):
    permission_classes = [HasScope]

    @property
    def required_scope(self) -> str:
        return "read" if self.request.method == "GET" else "admin"

    @extend_schema_serializer(component_name="SafetySettingsInput")
    class InputSerializer(BodySerializer):
        injection_fpr = serializers.ChoiceField(FPR_FIELD_CHOICES, required=False, allow_null=True)
        toxicity_fpr = serializers.ChoiceField(FPR_FIELD_CHOICES, required=False, allow_null=True)
        refusal_fpr = serializers.ChoiceField(FPR_FIELD_CHOICES, required=False, allow_null=True)

    def _answer(self, request: Request) -> Response:
        project = request_project(request, self)
        rows = safety_settings_get(project=project)
        return Response(
            {
                "choices": list(learned.FPR_CHOICES),
                "results": [safety_setting_as_dict(r) for r in rows],
            }
        )

    @extend_schema(responses={200: {"type": "object"}}, operation_id="safety_settings_retrieve")
    def get(self, request: Request) -> Response:
        return self._answer(request)

    @extend_schema(
        request=InputSerializer,
        responses={200: {"type": "object"}},
        operation_id="safety_settings_update",
    )
    def patch(self, request: Request) -> Response:
        project = request_project(request, self)
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        safety_settings_set(project=project, **params.validated_data)
        return self._answer(request)

    @extend_schema(
        request=InputSerializer,
        responses={200: {"type": "object"}},
        operation_id="safety_settings_replace",
    )
    def put(self, request: Request) -> Response:
        """Like PATCH, but a signal not named goes back to the default."""
        project = request_project(request, self)
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = {f"{s}_fpr": params.validated_data.get(f"{s}_fpr") for s in learned.SIGNALS}
        safety_settings_set(project=project, **data)
        return self._answer(request)
