"""Read API: ``GET /api/v1/calls`` and ``GET /api/v1/calls/<id>``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, request_project
from apps.traces.selectors import (
    CallFilters,
    call_as_dict,
    call_get,
    call_page,
    feedback_as_dict,
    feedback_for_call,
)

# Sections that apps above traces add to the call detail (evaluators' "scores") without
# traces importing them: name -> fn(project, call_id) -> JSON-able value.
_CALL_DETAIL_SECTIONS: dict[str, Callable[[Any, uuid.UUID], Any]] = {}


def register_call_detail_section(name: str, fn: Callable[[Any, uuid.UUID], Any]) -> None:
    _CALL_DETAIL_SECTIONS[name] = fn


class CallListApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class FilterSerializer(serializers.Serializer[CallFilters]):
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
            project=request_project(request, self),
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
        project = request_project(request, self)
        call = call_get(project=project, call_id=call_id)
        data = call_as_dict(call)
        data["feedback"] = [
            feedback_as_dict(f) for f in feedback_for_call(project=project, call_id=call.id)
        ]
        for name, section in _CALL_DETAIL_SECTIONS.items():
            data[name] = section(project, call.id)
        return Response(data)
