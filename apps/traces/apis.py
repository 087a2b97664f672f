"""Read API: calls, prompts (and registering a prompt version), sessions, users, traces."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, project_for_request, request_project
from apps.core.dbtypes import EARLIEST_LOADABLE, LATEST_LOADABLE
from apps.core.errors import NotFound
from apps.core.strict import BodySerializer, StrictSerializer
from apps.traces.prompt_selectors import prompt_list, prompt_versions
from apps.traces.selectors import (
    CallFilters,
    call_as_dict,
    call_get,
    call_page,
    feedback_as_dict,
    feedback_for_call,
)
from apps.traces.services import (
    PROMPT_NAME_MAX,
    PROMPT_TEMPLATE_MAX,
    PROMPT_VERSION_MAX,
    prompt_register,
)
from apps.traces.session_selectors import session_detail, session_list, user_list
from apps.traces.trace_selectors import agent_graph, trace_spans, trace_timeline

# Sections that apps above traces add to the call detail (evaluators' "scores") without
# traces importing them: name -> fn(project, call_id) -> JSON-able value.
_CALL_DETAIL_SECTIONS: dict[str, Callable[[Any, uuid.UUID], Any]] = {}


def register_call_detail_section(name: str, fn: Callable[[Any, uuid.UUID], Any]) -> None:
    _CALL_DETAIL_SECTIONS[name] = fn


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
        prompt_name = serializers.CharField(required=False, max_length=255)
        prompt_version = serializers.CharField(required=False, max_length=64)
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


# --- Prompts, sessions, users, traces --------------------------------------------------------


def _since(days: int | None) -> datetime | None:
    return timezone.now() - timedelta(days=days) if days else None


class _WindowSerializer(StrictSerializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=400, default=30)
    search = serializers.CharField(required=False, max_length=255)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=100_000, default=0)
    project = serializers.CharField(required=False)

    def validate_search(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("must not contain NUL characters")
        return value


class PromptListApi(APIView):
    """``GET``: prompts seen in calls or registered; ``POST``: register a template version."""

    permission_classes: list[Any] = []

    @extend_schema_serializer(component_name="PromptCreateInput")
    class InputSerializer(BodySerializer):
        name = serializers.CharField(max_length=PROMPT_NAME_MAX)
        template = serializers.CharField(max_length=PROMPT_TEMPLATE_MAX, trim_whitespace=False)
        version = serializers.CharField(
            max_length=PROMPT_VERSION_MAX, required=False, allow_blank=True
        )

    @extend_schema(
        parameters=[_WindowSerializer],
        responses={200: {"type": "object"}},
        operation_id="prompts_list",
    )
    def get(self, request: Request) -> Response:
        project = project_for_request(request, scope="read")
        params = _WindowSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = prompt_list(
            project=project,
            start=_since(params.validated_data["days"]),
            search=params.validated_data.get("search"),
        )
        return Response(
            {
                "results": [
                    {
                        "name": r.name,
                        "versions": r.versions,
                        "latest_registered_version": r.latest_version or None,
                        "metrics": r.metrics.as_dict() if r.metrics else None,
                    }
                    for r in rows
                ]
            }
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: {"type": "object"},
            201: {"type": "object"},
            409: OpenApiResponse(description="the version name is taken by another template"),
        },
    )
    def post(self, request: Request) -> Response:
        project = project_for_request(request, scope="ingest")
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        row, created = prompt_register(
            project=project,
            name=data["name"],
            template=data["template"],
            version=data.get("version") or None,
        )
        return Response(
            {"name": row.name, "version": row.version, "created": created},
            status=201 if created else 200,
        )


class PromptDetailApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    @extend_schema(
        parameters=[_WindowSerializer, OpenApiParameter("name", str, OpenApiParameter.PATH)],
        responses={200: {"type": "object"}},
        operation_id="prompts_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        project = project_for_request(request, scope="read")
        params = _WindowSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = prompt_versions(
            project=project, name=name, start=_since(params.validated_data["days"])
        )
        return Response({"name": name, "versions": [r.as_dict() for r in rows]})


class SessionListApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class FilterSerializer(_WindowSerializer):
        user_id = serializers.CharField(required=False, max_length=255)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: {"type": "object"}},
        operation_id="sessions_list",
    )
    def get(self, request: Request) -> Response:
        project = project_for_request(request, scope="read")
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        rows = session_list(
            project=project,
            start=_since(data["days"]),
            user_id=data.get("user_id"),
            search=data.get("search"),
            limit=data["limit"],
            offset=data["offset"],
        )
        return Response(
            {
                "results": [
                    {
                        "session_id": m.key[0],
                        "user_id": user,
                        "turns": m.traces or m.calls,
                        **m.as_dict(),
                    }
                    for m, user in rows
                ]
            }
        )


class SessionDetailApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    @extend_schema(
        parameters=[OpenApiParameter("session_id", str, OpenApiParameter.PATH)],
        responses={200: {"type": "object"}},
        operation_id="sessions_retrieve",
    )
    def get(self, request: Request, session_id: str) -> Response:
        project = project_for_request(request, scope="read")
        view = session_detail(project=project, session_id=session_id)
        return Response(
            {
                "session_id": view.session_id,
                "user_id": view.user_id,
                "truncated": view.truncated,
                **view.metrics.as_dict(),
                "turns": [
                    {
                        **call_as_dict(t.call),
                        "feedback": [feedback_as_dict(f) for f in t.feedback],
                        "spans": [
                            {**call_as_dict(c, full=False), "depth": depth}
                            for c, depth in t.children
                        ],
                    }
                    for t in view.turns
                ],
            }
        )


class UserListApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class FilterSerializer(_WindowSerializer):
        order = serializers.ChoiceField(["cost", "calls", "last_seen"], required=False)

    @extend_schema(parameters=[FilterSerializer], responses={200: {"type": "object"}})
    def get(self, request: Request) -> Response:
        project = project_for_request(request, scope="read")
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        rows = user_list(
            project=project,
            start=_since(data["days"]),
            search=data.get("search"),
            order=data.get("order") or "cost",
            limit=data["limit"],
            offset=data["offset"],
        )
        return Response(
            {"results": [{"user_id": m.key[0], "sessions": n, **m.as_dict()} for m, n in rows]}
        )


class TraceDetailApi(APIView):
    """One trace as a tree with its timeline, and its agent graph."""

    permission_classes = [HasScope]
    required_scope = "read"

    @extend_schema(
        parameters=[OpenApiParameter("trace_id", str, OpenApiParameter.PATH)],
        responses={200: {"type": "object"}},
    )
    def get(self, request: Request, trace_id: str) -> Response:
        project = project_for_request(request, scope="read")
        spans = trace_spans(project=project, trace_id=trace_id)
        if not spans:
            raise NotFound("trace: not found")
        timeline = trace_timeline(spans)
        return Response(
            {
                "trace_id": trace_id,
                "duration_ms": timeline.total_ms,
                "truncated": timeline.truncated,
                "spans": [
                    {
                        "id": str(row.call.id),
                        "parent_id": str(row.call.parent_id) if row.call.parent_id else None,
                        "name": row.call.name,
                        "kind": row.call.kind,
                        "model": row.call.model,
                        "status": row.call.status,
                        "depth": row.depth,
                        "offset_ms": row.offset_ms,
                        "duration_ms": row.duration_ms,
                    }
                    for row in timeline.rows
                ],
                "graph": agent_graph(project=project, trace_id=trace_id).as_dict(),
            }
        )
