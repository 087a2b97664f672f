"""Drift API: ``GET drift/checks``, ``GET|POST drift/baselines``, ``PATCH drift/intents/<id>``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, request_project
from apps.core.errors import NotFound
from apps.core.strict import BodySerializer, StrictSerializer
from apps.drift.models import Baseline
from apps.drift.selectors import (
    baseline_as_dict,
    baseline_current,
    baseline_list,
    drift_check_as_dict,
    drift_checks,
    intent_cluster_as_dict,
    intent_cluster_get,
)
from apps.drift.services.baselines import baseline_fit_request, baseline_pin, intent_rename


class DriftCheckListApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class FilterSerializer(StrictSerializer):
        start = serializers.DateTimeField(required=False)
        end = serializers.DateTimeField(required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=20)
        project = serializers.CharField(required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: {"type": "object"}},
        operation_id="drift_checks",
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        checks = drift_checks(
            project=request_project(request, self),
            start=data.get("start"),
            end=data.get("end"),
            limit=data["limit"],
        )
        return Response({"results": [drift_check_as_dict(c) for c in checks]})


class BaselineApi(APIView):
    permission_classes = [HasScope]

    @property
    def required_scope(self) -> str:
        return "admin" if self.request.method == "POST" else "read"

    @extend_schema_serializer(component_name="BaselineCreateInput")
    class InputSerializer(BodySerializer):
        baseline_id = serializers.IntegerField(required=False)
        start = serializers.DateTimeField(required=False)
        end = serializers.DateTimeField(required=False)
        release = serializers.CharField(required=False, max_length=128)
        pin = serializers.BooleanField(required=False, default=False)
        false_alarm_rate = serializers.FloatField(
            required=False, default=0.01, min_value=0.0001, max_value=0.2
        )

    @extend_schema(responses={200: {"type": "object"}}, operation_id="drift_baselines")
    def get(self, request: Request) -> Response:
        project = request_project(request, self)
        return Response(
            {
                "current": baseline_current(project=project),
                "results": [baseline_as_dict(b) for b in baseline_list(project=project)],
            }
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: {"type": "object"}, 202: {"type": "object"}},
        operation_id="drift_baselines_create",
    )
    def post(self, request: Request) -> Response:
        project = request_project(request, self)
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        if "baseline_id" in data:
            # Pin or unpin an existing baseline.
            baseline = (
                Baseline.objects.filter(project=project, pk=data["baseline_id"])
                .defer("state")
                .first()
            )
            if baseline is None:
                raise NotFound("baseline_id: not found")
            return Response(baseline_as_dict(baseline_pin(baseline=baseline, pinned=data["pin"])))
        baseline = baseline_fit_request(
            project=project,
            start=data.get("start"),
            end=data.get("end"),
            release=data.get("release"),
            pin=data["pin"],
            false_alarm_rate=data["false_alarm_rate"],
        )
        return Response(baseline_as_dict(baseline), status=202)


class IntentRenameApi(APIView):
    permission_classes = [HasScope]
    # Reviewers name intents as they label answers.
    required_scope = "review"

    @extend_schema_serializer(component_name="IntentRenameInput")
    class InputSerializer(BodySerializer):
        name = serializers.CharField(max_length=255, allow_blank=True, trim_whitespace=True)

    @extend_schema(
        request=InputSerializer,
        responses={200: {"type": "object"}},
        parameters=[OpenApiParameter("intent_id", int, OpenApiParameter.PATH)],
        operation_id="drift_intents_rename",
    )
    def patch(self, request: Request, intent_id: int) -> Response:
        project = request_project(request, self)
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        cluster = intent_cluster_get(project=project, cluster_id=intent_id)
        return Response(
            intent_cluster_as_dict(
                intent_rename(cluster=cluster, name=params.validated_data["name"])
            )
        )
