"""``GET /api/v1/insights/cost``: cost and quality per intent and model, what a response cache
would save, and intents where a cheaper model is not significantly worse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, project_for_request
from apps.compare.insights import cost_insights
from apps.compare.params import RangeSerializer

MAX_SPAN = timedelta(days=90)

_SEGMENT: dict[str, Any] = {
    "intent": serializers.CharField(),
    "model": serializers.CharField(),
    "calls": serializers.IntegerField(),
    "cost_usd": serializers.FloatField(),
    "cost_per_call": serializers.FloatField(allow_null=True),
    "rated": serializers.IntegerField(help_text="calls with feedback"),
    "negative_rate": serializers.FloatField(allow_null=True),
    "error_rate": serializers.FloatField(),
    "p50_latency_ms": serializers.FloatField(allow_null=True),
    "share_of_cost": serializers.FloatField(),
}
_DUPLICATE: dict[str, Any] = {
    "key": serializers.CharField(),
    "example_prompt": serializers.CharField(),
    "model": serializers.CharField(),
    "count": serializers.IntegerField(),
    "total_cost": serializers.FloatField(),
    "avoidable_cost": serializers.FloatField(help_text="every call of the group but the first"),
    "call_ids": serializers.ListField(child=serializers.CharField()),
}
_ROUTING: dict[str, Any] = {
    "intent": serializers.CharField(),
    "current_model": serializers.CharField(),
    "cheaper_model": serializers.CharField(),
    "n_current": serializers.IntegerField(),
    "n_cheaper": serializers.IntegerField(),
    "negative_rate_current": serializers.FloatField(),
    "negative_rate_cheaper": serializers.FloatField(),
    "difference": serializers.FloatField(),
    "ci_high": serializers.FloatField(help_text="upper bound of the one-sided 95% interval"),
    "margin": serializers.FloatField(),
    "p_value": serializers.FloatField(),
    "q_value": serializers.FloatField(help_text="Benjamini-Hochberg adjusted"),
    "cost_per_call_current": serializers.FloatField(),
    "cost_per_call_cheaper": serializers.FloatField(),
    "monthly_saving_estimate": serializers.FloatField(
        help_text="price gap times the calls the current model served in the window"
    ),
    "summary": serializers.CharField(),
}
CostInsightsSchema = inline_serializer(
    "CostInsights",
    {
        "start": serializers.DateTimeField(),
        "end": serializers.DateTimeField(),
        "calls": serializers.IntegerField(),
        "truncated": serializers.BooleanField(help_text="more calls than the read bound"),
        "total_cost_usd": serializers.FloatField(),
        "segments": inline_serializer("CostSegment", _SEGMENT, many=True),
        "cache": inline_serializer(
            "CacheInsight",
            {
                "saving_usd": serializers.FloatField(),
                "groups": inline_serializer("DuplicatePromptGroup", _DUPLICATE, many=True),
            },
        ),
        "routing": inline_serializer(
            "RoutingInsight",
            {
                "margin": serializers.FloatField(),
                "min_feedback_per_model": serializers.IntegerField(),
                "saving_usd": serializers.FloatField(),
                "suggestions": inline_serializer("RoutingSuggestion", _ROUTING, many=True),
            },
        ),
    },
)


class CostInsightsApi(APIView):
    permission_classes = [HasScope]
    required_scope = "read"

    class InputSerializer(RangeSerializer):
        default_span = timedelta(days=7)
        max_span = MAX_SPAN

        start = serializers.DateTimeField(required=False, help_text="default: end - 7 days")
        end = serializers.DateTimeField(required=False, help_text="default: now")
        margin = serializers.FloatField(required=False, min_value=0.0, max_value=0.5, default=0.02)
        min_n = serializers.IntegerField(required=False, min_value=5, max_value=100000, default=30)

    @extend_schema(
        parameters=[InputSerializer],
        responses={200: CostInsightsSchema, 400: OpenApiResponse(description="a bad parameter")},
        summary="Cost insight: per intent and model, cache savings, cheaper-model routing",
    )
    def get(self, request: Request) -> Response:
        project = project_for_request(request, scope="read")
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        insights = cost_insights(
            project=project,
            start=data["start"],
            end=data["end"],
            margin=data["margin"],
            min_n=data["min_n"],
        )
        return Response(insights.as_dict())
