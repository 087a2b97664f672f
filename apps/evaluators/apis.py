"""REST API of evaluators (admin scope: an ``admin`` key, or an owner/member session).

| method and path                                   | view                     |
| ------------------------------------------------- | ------------------------ |
| GET, POST   /api/v1/llm-connections               | ConnectionListCreateApi  |
| GET, DELETE /api/v1/llm-connections/<id>          | ConnectionDetailApi      |
| GET, POST   /api/v1/evaluators                    | EvaluatorListCreateApi   |
| GET, PATCH, DELETE /api/v1/evaluators/<id>        | EvaluatorDetailApi       |
| POST        /api/v1/evaluators/<id>/preview       | EvaluatorPreviewApi      |
| POST        /api/v1/evaluators/<id>/backfill      | EvaluatorBackfillApi     |
| GET         /api/v1/evaluators/templates          | TemplateListApi          |

API keys of connections are write-only: never returned, not even masked beyond a hint.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, project_for_request
from apps.core.schema import results_of
from apps.core.strict import BodySerializer
from apps.evaluators import selectors, services
from apps.evaluators.library import TEMPLATES
from apps.evaluators.local import SCORERS
from apps.evaluators.models import (
    Evaluator,
    EvaluatorKind,
    EvaluatorStatus,
    LLMConnection,
    Provider,
    ScoreType,
)
from apps.evaluators.services import FILTER_KEYS


class _AdminApi(APIView):
    permission_classes = [HasScope]
    required_scope = "admin"


def _project(request: Request) -> Any:
    return project_for_request(request, scope="admin")


class ConnectionOutput(serializers.ModelSerializer[LLMConnection]):
    class Meta:
        model = LLMConnection
        fields = [
            "id",
            "name",
            "provider",
            "base_url",
            "api_key_hint",
            "default_model",
            "created_at",
        ]


class ConnectionListCreateApi(_AdminApi):
    @extend_schema_serializer(component_name="LLMConnectionCreateInput")
    class InputSerializer(BodySerializer):
        name = serializers.CharField(max_length=200)
        provider = serializers.ChoiceField(Provider.choices)
        base_url = serializers.CharField(
            max_length=2048,
            help_text="openai: up to the version prefix (https://api.openai.com/v1); "
            "anthropic: the host (https://api.anthropic.com)",
        )
        api_key = serializers.CharField(max_length=500, write_only=True)
        default_model = serializers.CharField(max_length=255)

    @extend_schema(
        responses={200: results_of("LLMConnectionList", ConnectionOutput)},
        operation_id="llm_connections_list",
    )
    def get(self, request: Request) -> Response:
        rows = selectors.connection_list(project=_project(request))
        return Response({"results": ConnectionOutput(rows, many=True).data})

    @extend_schema(
        request=InputSerializer,
        responses={201: ConnectionOutput},
        operation_id="llm_connections_create",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conn = services.connection_create(project=_project(request), **data.validated_data)
        return Response(ConnectionOutput(conn).data, status=status.HTTP_201_CREATED)


class ConnectionDetailApi(_AdminApi):
    @extend_schema(responses={200: ConnectionOutput}, operation_id="llm_connections_retrieve")
    def get(self, request: Request, connection_id: int) -> Response:
        conn = selectors.connection_get(project=_project(request), connection_id=connection_id)
        return Response(ConnectionOutput(conn).data)

    @extend_schema(responses={204: None}, operation_id="llm_connections_delete")
    def delete(self, request: Request, connection_id: int) -> Response:
        conn = selectors.connection_get(project=_project(request), connection_id=connection_id)
        services.connection_delete(connection=conn)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FiltersField(serializers.DictField):
    """``{"model": ["gpt-4o"], "kind": ["llm"], ...}``; keys: model, release, environment,
    name, tags, kind."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            child=serializers.ListField(child=serializers.CharField(max_length=255), max_length=50),
            **kwargs,
        )


class EvaluatorOutput(serializers.ModelSerializer[Evaluator]):
    connection = serializers.PrimaryKeyRelatedField(read_only=True)  # type: ignore[var-annotated]

    class Meta:
        model = Evaluator
        fields = [
            "id",
            "name",
            "kind",
            "connection",
            "model",
            "template",
            "instruction",
            "prompt_template",
            "scorer",
            "score_type",
            "labels",
            "filters",
            "sampling_rate",
            "daily_budget_usd",
            "status",
            "paused_reason",
            "paused_until",
            "version",
            "created_at",
            "updated_at",
        ]


class _EvaluatorInput(BodySerializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(EvaluatorKind.choices, required=False)
    connection = serializers.IntegerField(required=False, allow_null=True, help_text="llm_judge")
    model = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="blank: the connection's default",
    )
    template = serializers.ChoiceField(
        list(TEMPLATES), required=False, allow_blank=True, help_text="a built-in judge template"
    )
    instruction = serializers.CharField(
        max_length=20_000, required=False, allow_blank=True, help_text="the judge's system message"
    )
    prompt_template = serializers.CharField(
        max_length=50_000,
        required=False,
        allow_blank=True,
        help_text="the user message; {{prompt}}, {{messages}}, {{response}}, {{context}}, "
        "{{metadata.<path>}}",
    )
    scorer = serializers.ChoiceField(
        list(SCORERS), required=False, allow_blank=True, help_text="embedding / python kinds"
    )
    score_type = serializers.ChoiceField(ScoreType.choices, required=False)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=20
    )
    filters = FiltersField(required=False, help_text=f"keys: {', '.join(FILTER_KEYS)}")
    sampling_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    daily_budget_usd = serializers.FloatField(min_value=0.0, required=False, allow_null=True)

    def validate_filters(self, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(FILTER_KEYS))
        if unknown:
            raise serializers.ValidationError(
                f"unknown keys {unknown}; allowed: {list(FILTER_KEYS)}"
            )
        return value


def _resolve_connection(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    if "connection" in data:
        pk = data.pop("connection")
        data["connection"] = (
            None
            if pk is None
            else selectors.connection_get(project=_project(request), connection_id=pk)
        )
    return data


class EvaluatorListCreateApi(_AdminApi):
    @extend_schema_serializer(component_name="EvaluatorCreateInput")
    class InputSerializer(_EvaluatorInput):
        pass

    @extend_schema(
        responses={200: results_of("EvaluatorList", EvaluatorOutput)},
        operation_id="evaluators_list",
    )
    def get(self, request: Request) -> Response:
        rows = selectors.evaluator_list(project=_project(request))
        return Response({"results": EvaluatorOutput(rows, many=True).data})

    @extend_schema(
        request=InputSerializer, responses={201: EvaluatorOutput}, operation_id="evaluators_create"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = _resolve_connection(request, dict(data.validated_data))
        evaluator = services.evaluator_create(project=_project(request), **fields)
        return Response(EvaluatorOutput(evaluator).data, status=status.HTTP_201_CREATED)


class EvaluatorDetailApi(_AdminApi):
    @extend_schema_serializer(component_name="EvaluatorUpdateInput")
    class InputSerializer(_EvaluatorInput):
        status = serializers.ChoiceField(
            EvaluatorStatus.choices, required=False, help_text="active resumes a paused evaluator"
        )

    @extend_schema(responses={200: EvaluatorOutput}, operation_id="evaluators_retrieve")
    def get(self, request: Request, evaluator_id: int) -> Response:
        evaluator = selectors.evaluator_get(project=_project(request), evaluator_id=evaluator_id)
        return Response(EvaluatorOutput(evaluator).data)

    @extend_schema(
        request=InputSerializer, responses={200: EvaluatorOutput}, operation_id="evaluators_update"
    )
    def patch(self, request: Request, evaluator_id: int) -> Response:
        evaluator = selectors.evaluator_get(project=_project(request), evaluator_id=evaluator_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = _resolve_connection(request, dict(data.validated_data))
        evaluator = services.evaluator_update(evaluator=evaluator, **fields)
        return Response(EvaluatorOutput(evaluator).data)

    @extend_schema(responses={204: None}, operation_id="evaluators_delete")
    def delete(self, request: Request, evaluator_id: int) -> Response:
        evaluator = selectors.evaluator_get(project=_project(request), evaluator_id=evaluator_id)
        services.evaluator_delete(evaluator=evaluator)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreviewRow(serializers.Serializer[Any]):
    call_id = serializers.UUIDField()
    prompt = serializers.CharField()
    response = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    # A field named like Field.label: fine at run time (the metaclass collects it).
    label = serializers.CharField()  # type: ignore[assignment]
    reason = serializers.CharField()
    error = serializers.CharField(help_text="set instead of a score when the call failed")
    missing = serializers.ListField(child=serializers.CharField(), help_text="empty variables")
    cost_usd = serializers.FloatField(allow_null=True)
    latency_ms = serializers.FloatField(allow_null=True)


class PreviewOutput(serializers.Serializer[Any]):
    results = PreviewRow(many=True)


class EvaluatorPreviewApi(_AdminApi):
    @extend_schema_serializer(component_name="EvaluatorPreviewInput")
    class InputSerializer(BodySerializer):
        limit = serializers.IntegerField(min_value=1, max_value=services.PREVIEW_MAX, default=5)

    @extend_schema(
        request=InputSerializer, responses={200: PreviewOutput}, operation_id="evaluators_preview"
    )
    def post(self, request: Request, evaluator_id: int) -> Response:
        evaluator = selectors.evaluator_get(project=_project(request), evaluator_id=evaluator_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rows = services.evaluator_preview(evaluator=evaluator, limit=data.validated_data["limit"])
        return Response({"results": rows})


class BackfillOutput(serializers.Serializer[Any]):
    queued = serializers.IntegerField()


class EvaluatorBackfillApi(_AdminApi):
    @extend_schema_serializer(component_name="EvaluatorBackfillInput")
    class InputSerializer(BodySerializer):
        start = serializers.DateTimeField(required=False, help_text="default: 24 hours ago")
        end = serializers.DateTimeField(required=False, help_text="default: now")
        limit = serializers.IntegerField(
            min_value=1, max_value=services.BACKFILL_MAX, default=10_000
        )

    @extend_schema(
        request=InputSerializer,
        responses={202: BackfillOutput},
        operation_id="evaluators_backfill",
    )
    def post(self, request: Request, evaluator_id: int) -> Response:
        evaluator = selectors.evaluator_get(project=_project(request), evaluator_id=evaluator_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        end = data.validated_data.get("end") or timezone.now()
        start = data.validated_data.get("start") or end - timedelta(hours=24)
        queued = services.evaluator_backfill(
            evaluator=evaluator, start=start, end=end, limit=data.validated_data["limit"]
        )
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class TemplateOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    instruction = serializers.CharField()
    prompt_template = serializers.CharField()
    score_type = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())


class TemplateListApi(_AdminApi):
    @extend_schema(
        responses={200: results_of("EvaluatorTemplateList", TemplateOutput)},
        operation_id="evaluator_templates_list",
    )
    def get(self, request: Request) -> Response:
        rows = [
            {
                "key": t.key,
                "title": t.title,
                "description": t.description,
                "instruction": t.instruction,
                "prompt_template": t.prompt_template,
                "score_type": t.score_type,
                "labels": list(t.labels),
            }
            for t in TEMPLATES.values()
        ]
        return Response({"results": rows})
