"""``POST /api/v1/ingest``: the native batch ingestion endpoint."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasScope, request_project
from apps.core.errors import ApplicationError
from apps.ingest.body import read_body
from apps.ingest.decode import decode_batch
from apps.ingest.ratelimit import rate_limit_check
from apps.ingest.services import ingest_events

_RESULT = inline_serializer(
    "IngestResult",
    {
        "results": serializers.ListField(
            child=inline_serializer(
                "IngestEventResult",
                {
                    "id": serializers.CharField(allow_null=True),
                    "status": serializers.ChoiceField(["accepted", "duplicate", "error"]),
                    "error": serializers.CharField(required=False),
                },
            )
        ),
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "errors": serializers.IntegerField(),
    },
)


class IngestApi(APIView):
    """Store a batch of calls and feedback. Answers 207 with one result per event."""

    permission_classes = [HasScope]
    required_scope = "ingest"
    # The body is read and validated by us (size cap, gzip, msgspec), not by DRF's parsers.
    parser_classes: list[Any] = []

    @extend_schema(
        operation_id="ingest",
        request={
            "application/json": {
                "type": "object",
                "required": ["batch"],
                "properties": {
                    "batch": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "id", "body"],
                            "properties": {
                                "type": {"type": "string", "enum": ["call", "feedback"]},
                                "id": {"type": "string", "format": "uuid"},
                                "body": {"type": "object"},
                            },
                        },
                    }
                },
            }
        },
        responses={
            207: _RESULT,
            400: OpenApiResponse(
                description="not a JSON object with a batch array, or too many events"
            ),
            403: OpenApiResponse(description="the key lacks the ingest scope"),
            415: OpenApiResponse(description="an unsupported Content-Encoding"),
            401: OpenApiResponse(description="missing, unknown or revoked key"),
            413: OpenApiResponse(description="body (or its decompressed size) over the limit"),
            429: OpenApiResponse(description="project rate limit; see Retry-After"),
        },
        examples=[
            OpenApiExample(
                "one call and its feedback",
                request_only=True,
                value={
                    "batch": [
                        {
                            "type": "call",
                            "id": "8f0e6d0c-7a36-4c2e-9a39-8ad2b0cb6f11",
                            "body": {
                                "model": "gpt-4o-mini",
                                "prompt": "How do I reset my password?",
                                "response": "Open Settings, then Security.",
                                "input_tokens": 12,
                                "output_tokens": 9,
                                "latency_ms": 412.5,
                                "start_time": "2026-11-22T10:00:00Z",
                            },
                        },
                        {
                            "type": "feedback",
                            "id": "0b8e7a9e-5d9f-4c59-9b52-3d3f5b0c1a77",
                            "body": {"call_id": "8f0e6d0c-7a36-4c2e-9a39-8ad2b0cb6f11", "score": 1},
                        },
                    ]
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        project = request_project(request, self)
        body = read_body(request._request)
        # When some event is invalid, the others are still decoded and kept; each error
        # names its event and field (see apps/ingest/decode.py).
        events = decode_batch(body)
        limit = settings.INGEST_MAX_BATCH_EVENTS
        if len(events) > limit:
            raise ApplicationError(
                f"batch: {len(events)} events is over the limit of {limit} per request",
                field="batch",
            )
        retry_after = rate_limit_check(project_id=project.pk, events=len(events))
        if retry_after is not None:
            response = Response(
                {"error": "rate limit exceeded for this project; retry later"},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
            response["Retry-After"] = str(int(retry_after + 0.999))
            return response
        outcome = ingest_events(project=project, events=events)
        return Response(outcome.as_dict(), status=status.HTTP_207_MULTI_STATUS)
