"""``GET /api/v1/health``: 200 only when database, broker and a worker are all up."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.ops.selectors import health_report


class HealthApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: {"type": "object"}, 503: {"type": "object"}}, operation_id="health"
    )
    def get(self, request: Request) -> Response:
        report = health_report()
        return Response(report, status=200 if report["ok"] else 503)
