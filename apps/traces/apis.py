"""Read API: ``GET /api/v1/calls`` and ``GET /api/v1/calls/<id>``."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope
from apps.core.dbtypes import EARLIEST_LOADABLE, LATEST_LOADABLE
from apps.core.strict import StrictSerializer
from apps.traces.selectors import (
    CallFilters,
    call_as_dict,
    call_get,
    call_page,
    feedback_as_dict,
    feedback_for_call,
)


class CallListApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class FilterSerializer(StrictSerializer):
        start = serializers.DateTimeField(required=False)
        end = serializers.DateTimeField(required=False)
        model = serializers.CharField(required=False)
        release = serializers.CharField(required=False)
        environment = serializers.CharField(required=False)
        status = serializers.ChoiceField(["ok", "error"], required=False)
        user_id = serializers.CharField(required=False)
        session_id = serializers.CharField(required=False)
        tag = serializers.CharField(required=False)
        trace_id = serializers.CharField(required=False)
        search = serializers.CharField(required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)
        cursor = serializers.CharField(required=False)
        project = serializers.CharField(required=False)

        def _in_range(self, value: datetime) -> datetime:
            if not EARLIEST_LOADABLE <= value <= LATEST_LOADABLE:
                raise serializers.ValidationError("outside the years 1 .. 9999")
            return value

        def validate_start(self, value: datetime) -> datetime:
            return self._in_range(value)

        def validate_end(self, value: datetime) -> datetime:
            return self._in_range(value)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: {"type": "object"}},
        operation_id="calls_list",
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        limit = data.pop("limit")
        cursor = data.pop("cursor", None)
        data.pop("project", None)
        if "user_id" in data:
            data["end_user_id"] = data.pop("user_id")
        calls, next_cursor = call_page(
            project=request.project,  # type: ignore[attr-defined]
            filters=CallFilters(**data),
            limit=limit,
            cursor=cursor,
        )
        return Response(
            {"results": [call_as_dict(c, full=False) for c in calls], "next_cursor": next_cursor}
        )


class CallDetailApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    @extend_schema(
        responses={200: {"type": "object"}},
        operation_id="calls_retrieve",
        parameters=[OpenApiParameter("call_id", str, OpenApiParameter.PATH)],
    )
    def get(self, request: Request, call_id: str) -> Response:
        project = request.project  # type: ignore[attr-defined]
        call = call_get(project=project, call_id=call_id)
        data = call_as_dict(call)
        data["feedback"] = [
            feedback_as_dict(f) for f in feedback_for_call(project=project, call_id=call.id)
        ]
        return Response(data)
