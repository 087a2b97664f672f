"""``GET /api/v1/compare`` and ``GET /api/v1/prompts/<name>/compare``: b against a."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, project_for_request
from apps.compare.params import RangeSerializer
from apps.compare.selectors import DIMENSIONS, compare_groups


class _PairSerializer(RangeSerializer):
    a = serializers.CharField(max_length=255)
    b = serializers.CharField(max_length=255)
    alpha = serializers.FloatField(required=False, min_value=0.0001, max_value=0.5, default=0.05)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for key in ("a", "b"):
            if "\x00" in attrs[key]:
                raise serializers.ValidationError({key: "must not contain NUL characters"})
        return super().validate(attrs)


class CompareApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class InputSerializer(_PairSerializer):
        dimension = serializers.ChoiceField(list(DIMENSIONS))
        prompt = serializers.CharField(required=False, max_length=255)

    @extend_schema(parameters=[InputSerializer], responses={200: {"type": "object"}})
    def get(self, request: Request) -> Response:
        project = project_for_request(request, scope="read")
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        comparison = compare_groups(
            project=project,
            dimension=data["dimension"],
            a=data["a"],
            b=data["b"],
            start=data.get("start"),
            end=data.get("end"),
            prompt_name=data.get("prompt"),
            alpha=data["alpha"],
        )
        return Response(comparison.as_dict())


class PromptCompareApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    @extend_schema(
        parameters=[_PairSerializer, OpenApiParameter("name", str, OpenApiParameter.PATH)],
        responses={200: {"type": "object"}},
    )
    def get(self, request: Request, name: str) -> Response:
        project = project_for_request(request, scope="read")
        params = _PairSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        comparison = compare_groups(
            project=project,
            dimension="prompt_version",
            a=data["a"],
            b=data["b"],
            start=data.get("start"),
            end=data.get("end"),
            prompt_name=name,
            alpha=data["alpha"],
        )
        return Response(comparison.as_dict())
