"""``GET /api/v1/calls/<id>/similar``, ``GET /api/v1/search`` and ``GET /api/v1/embeddings/lag``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, request_project
from apps.core.strict import StrictSerializer
from apps.embeddings.models import EmbeddingKind
from apps.embeddings.selectors import MAX_K, call_similar, calls_search, embedding_lag
from apps.traces.selectors import CallFilters


class _KnnParams(StrictSerializer):
    k = serializers.IntegerField(required=False, min_value=1, max_value=MAX_K, default=10)
    kind = serializers.ChoiceField(
        EmbeddingKind.values, required=False, default=EmbeddingKind.PROMPT
    )
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    project = serializers.CharField(required=False)
    model = serializers.CharField(required=False, max_length=255)
    release = serializers.CharField(required=False, max_length=128)
    environment = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(["ok", "error"], required=False)


def _filters(data: dict[str, object]) -> CallFilters:
    return CallFilters(
        model=str(data["model"]) if data.get("model") else None,
        release=str(data["release"]) if data.get("release") else None,
        environment=str(data["environment"]) if data.get("environment") else None,
        status=str(data["status"]) if data.get("status") else None,
    )


class CallSimilarApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class FilterSerializer(_KnnParams):
        pass

    @extend_schema(
        parameters=[FilterSerializer, OpenApiParameter("call_id", str, OpenApiParameter.PATH)],
        responses={200: {"type": "object"}},
        operation_id="calls_similar",
    )
    def get(self, request: Request, call_id: str) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        hits = call_similar(
            project=request_project(request, self),
            call_id=call_id,
            k=data["k"],
            kind=data["kind"],
            start=data.get("start"),
            end=data.get("end"),
            filters=_filters(data),
        )
        return Response({"results": [h.as_dict() for h in hits]})


class SemanticSearchApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class FilterSerializer(_KnnParams):
        q = serializers.CharField(max_length=4000, trim_whitespace=True)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: {"type": "object"}},
        operation_id="calls_search",
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        hits = calls_search(
            project=request_project(request, self),
            query=data["q"],
            k=data["k"],
            kind=data["kind"],
            start=data.get("start"),
            end=data.get("end"),
            filters=_filters(data),
        )
        return Response({"results": [h.as_dict() for h in hits]})


class EmbeddingLagApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    @extend_schema(responses={200: {"type": "object"}}, operation_id="embeddings_lag")
    def get(self, request: Request) -> Response:
        return Response(embedding_lag(project=request_project(request, self)))
