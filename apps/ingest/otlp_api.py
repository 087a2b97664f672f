"""``POST /v1/traces``: OTLP/HTTP trace ingestion (protobuf or JSON, optionally gzip).

Answers as https://opentelemetry.io/docs/specs/otlp/#otlphttp-response says: 200 with an
``ExportTraceServiceResponse`` in the request's encoding (``partial_success`` naming rejected
spans), else a ``google.rpc.Status`` body: 400 undecodable, 401 no or bad key, 413 too large,
415 other content type or encoding, 429 with ``Retry-After``. Exporters retry 429/502/503/504
only, so every answer about the data itself is final.

The spans are mapped by ``apps.ingest.otlp`` and stored by the native write path
(``ingest_events``): same limits, dedupe by event id, tenant scoping and per-event errors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.accounts.authentication import ApiKeyAuthentication
from apps.accounts.permissions import HasScope
from apps.core.errors import ApplicationError, TooManyRequests
from apps.ingest import otlp
from apps.ingest.body import UnsupportedMediaType, read_body
from apps.ingest.ratelimit import rate_limit_check
from apps.ingest.services import ERROR, ingest_events

logger = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _media_type(request: Request) -> str:
    return str(request.META.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()


def _answer(status: int, body: bytes, *, as_json: bool) -> HttpResponse:
    return HttpResponse(body, status=status, content_type=JSON if as_json else PROTOBUF)


class OtlpTracesView(APIView):
    """Store the spans of an OTLP ``ExportTraceServiceRequest`` as calls."""

    # Only project keys: OTLP exporters carry a header, never a session (and so no CSRF).
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = "ingest"
    # The body is read by us (size cap, gzip) and decoded by apps.ingest.otlp.
    parser_classes: list[Any] = []

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # The answer's encoding follows the request's Content-Type, not Accept: never 406.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        operation_id="otlp_traces",
        request={PROTOBUF: OpenApiTypes.BINARY, JSON: OpenApiTypes.OBJECT},
        responses={
            200: OpenApiResponse(
                description="ExportTraceServiceResponse; partialSuccess names rejected spans"
            ),
            400: OpenApiResponse(description="body is not an ExportTraceServiceRequest"),
            401: OpenApiResponse(description="missing, unknown or revoked key"),
            413: OpenApiResponse(description="body (or its decompressed size) over the limit"),
            415: OpenApiResponse(description="Content-Type other than protobuf or JSON"),
            429: OpenApiResponse(description="project rate limit; see Retry-After"),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        project = request.project  # type: ignore[attr-defined]
        media_type = _media_type(request)
        as_json = media_type == JSON
        if not as_json and media_type not in otlp.PROTOBUF_CONTENT_TYPES:
            raise UnsupportedMediaType(
                f"Content-Type: {media_type or 'none'!r}; send {PROTOBUF} or {JSON}"
            )
        body = read_body(request._request)
        decoded = otlp.decode_json(body) if as_json else otlp.decode_protobuf(body)
        mapping = otlp.map_request(decoded)

        if mapping.events:
            retry_after = rate_limit_check(project_id=project.pk, events=len(mapping.events))
            if retry_after is not None:
                raise TooManyRequests(
                    "rate limit exceeded for this project; retry later",
                    retry_after=int(retry_after + 0.999),
                )
        rejections = list(mapping.rejections)
        # One bounded statement per chunk, like a native batch.
        size = settings.INGEST_MAX_BATCH_EVENTS
        for start in range(0, len(mapping.events), size):
            outcome = ingest_events(project=project, events=mapping.events[start : start + size])
            for where, result in zip(
                mapping.wheres[start : start + size], outcome.results, strict=True
            ):
                if result.status == ERROR:
                    rejections.append(otlp.SpanRejection(where, result.error or "invalid"))
        message = otlp.summarize_rejections(rejections) if rejections else ""
        if rejections:
            logger.info(
                "otlp spans rejected",
                extra={
                    "project_id": project.pk,
                    "rejected": len(rejections),
                    "first": message[:500],
                },
            )
        return _answer(
            200,
            otlp.encode_response(rejected=len(rejections), message=message, as_json=as_json),
            as_json=as_json,
        )

    # DRF's finalize_response takes any HttpResponse; a DRF Response would drop Content-Type
    # from the empty protobuf body of a plain success, hence the narrower stub is overridden.
    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        """Every failure as a ``google.rpc.Status`` in the request's encoding (JSON when the
        request's own encoding is unknown), as OTLP/HTTP exporters expect."""
        as_json = _media_type(self.request) not in otlp.PROTOBUF_CONTENT_TYPES
        headers: dict[str, str] = {}
        if isinstance(exc, otlp.OtlpDecodeError):
            status, code, message = 400, otlp.RPC_INVALID_ARGUMENT, str(exc)
        elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status, code, message = 401, otlp.RPC_UNAUTHENTICATED, str(exc.detail)
            headers["WWW-Authenticate"] = ApiKeyAuthentication.keyword
        elif isinstance(exc, exceptions.PermissionDenied):
            status, code, message = 403, otlp.RPC_PERMISSION_DENIED, str(exc.detail)
        elif isinstance(exc, TooManyRequests):
            status, code, message = 429, otlp.RPC_RESOURCE_EXHAUSTED, exc.message
            headers["Retry-After"] = str(exc.retry_after)
        elif isinstance(exc, ApplicationError):
            status, message = exc.status_code, exc.message
            code = otlp.RPC_RESOURCE_EXHAUSTED if status == 413 else otlp.RPC_INVALID_ARGUMENT
        elif isinstance(exc, exceptions.APIException):
            status, code, message = exc.status_code, otlp.RPC_INVALID_ARGUMENT, str(exc.detail)
            if isinstance(exc, exceptions.MethodNotAllowed):
                code = otlp.RPC_UNIMPLEMENTED
        else:
            return super().handle_exception(exc)
        response = _answer(
            status, otlp.encode_status(code=code, message=message, as_json=as_json), as_json=as_json
        )
        for name, value in headers.items():
            response[name] = value
        return response
