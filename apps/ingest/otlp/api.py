"""OTLP/HTTP views: ``POST /v1/traces``, ``POST /v1/logs`` and Langfuse's
``POST /api/public/otel/v1/traces`` (protobuf or JSON, optionally gzip).

Answers as https://opentelemetry.io/docs/specs/otlp/#otlphttp-response says: 200 with an
``Export*ServiceResponse`` in the request's encoding (``partial_success`` naming rejected
spans), else a ``google.rpc.Status`` body: 400 undecodable, 401 no or bad key, 413 too large,
415 other content type or encoding, 429 with ``Retry-After``. Exporters retry 429/502/503/504
only, so every answer about the data itself is final.

Spans are mapped by ``apps.ingest.otlp.mapping`` and stored by the native write path
(``ingest_events``): same limits, dedupe by event id, tenant scoping and per-event errors.
"""

from __future__ import annotations

import base64
import binascii
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
from apps.accounts.models import ApiKey
from apps.accounts.permissions import HasScope, request_project
from apps.core.errors import ApplicationError, TooManyRequests
from apps.ingest.body import UnsupportedMediaType, read_body
from apps.ingest.otlp import decode
from apps.ingest.otlp.logs import map_logs_request
from apps.ingest.otlp.mapping import map_request
from apps.ingest.otlp.services import (
    otlp_log_events_store,
    otlp_pending_merge_into_events,
    otlp_spans_stored,
)
from apps.ingest.ratelimit import rate_limit_check
from apps.ingest.services import ERROR, ingest_events

logger = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_ERRORS = {
    400: OpenApiResponse(description="body is not an Export*ServiceRequest"),
    401: OpenApiResponse(description="missing, unknown or revoked key"),
    413: OpenApiResponse(description="body (or its decompressed size) over the limit"),
    415: OpenApiResponse(description="Content-Type other than protobuf or JSON"),
    429: OpenApiResponse(description="project rate limit; see Retry-After"),
}


class BasicSecretKeyAuthentication(ApiKeyAuthentication):
    """``Authorization: Basic base64(public:secret)`` with a Driftline key as the secret, as
    the Langfuse SDK sends it (its public key is not needed and ignored); Bearer works too."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = str(request.META.get("HTTP_AUTHORIZATION", ""))
        keyword, _, encoded = header.partition(" ")
        if keyword.lower() != "basic":
            return super().authenticate(request)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, ValueError) as exc:
            raise exceptions.AuthenticationFailed(
                "Authorization: Basic value is not base64"
            ) from exc
        _public, _, secret = decoded.partition(":")
        if not secret.strip():
            raise exceptions.AuthenticationFailed(
                "Authorization: the secret (a Driftline key) is empty"
            )
        return self.authenticate_key(secret.strip())

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="driftline"'


def _media_type(request: Request) -> str:
    return str(request.META.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()


def _answer(status: int, body: bytes, *, as_json: bool) -> HttpResponse:
    return HttpResponse(body, status=status, content_type=JSON if as_json else PROTOBUF)


class _OtlpView(APIView):
    # Only project keys: OTLP exporters carry a header, never a session (and so no CSRF).
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = "ingest"
    # The body is read by us (size cap, gzip) and decoded by apps.ingest.otlp.decode.
    parser_classes: list[Any] = []

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # The answer's encoding follows the request's Content-Type, not Accept: never 406.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    def _read(self, request: Request) -> tuple[bytes, bool]:
        media_type = _media_type(request)
        as_json = media_type == JSON
        if not as_json and media_type not in decode.PROTOBUF_CONTENT_TYPES:
            raise UnsupportedMediaType(
                f"Content-Type: {media_type or 'none'!r}; send {PROTOBUF} or {JSON}"
            )
        return read_body(request._request), as_json

    def _rate_limit(self, project_id: int, items: int) -> None:
        retry_after = rate_limit_check(project_id=project_id, events=items)
        if retry_after is not None:
            raise TooManyRequests(
                "rate limit exceeded for this project; retry later",
                retry_after=int(retry_after + 0.999),
            )

    # DRF's finalize_response takes any HttpResponse; a DRF Response would drop Content-Type
    # from the empty protobuf body of a plain success, hence the narrower stub is overridden.
    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        """Every failure as a ``google.rpc.Status`` in the request's encoding (JSON when the
        request's own encoding is unknown), as OTLP/HTTP exporters expect."""
        as_json = _media_type(self.request) not in decode.PROTOBUF_CONTENT_TYPES
        headers: dict[str, str] = {}
        if isinstance(exc, decode.OtlpDecodeError):
            status, code, message = 400, decode.RPC_INVALID_ARGUMENT, str(exc)
        elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status, code, message = 401, decode.RPC_UNAUTHENTICATED, str(exc.detail)
            challenge = self.get_authenticators()[0].authenticate_header(self.request)
            headers["WWW-Authenticate"] = challenge or ApiKeyAuthentication.keyword
        elif isinstance(exc, exceptions.PermissionDenied):
            status, code, message = 403, decode.RPC_PERMISSION_DENIED, str(exc.detail)
        elif isinstance(exc, TooManyRequests):
            status, code, message = 429, decode.RPC_RESOURCE_EXHAUSTED, exc.message
            headers["Retry-After"] = str(exc.retry_after)
        elif isinstance(exc, ApplicationError):
            status, message = exc.status_code, exc.message
            code = decode.RPC_RESOURCE_EXHAUSTED if status == 413 else decode.RPC_INVALID_ARGUMENT
        elif isinstance(exc, exceptions.APIException):
            status, code, message = exc.status_code, decode.RPC_INVALID_ARGUMENT, str(exc.detail)
            if isinstance(exc, exceptions.MethodNotAllowed):
                code = decode.RPC_UNIMPLEMENTED
        else:
            return super().handle_exception(exc)
        response = _answer(
            status,
            decode.encode_status(code=code, message=message, as_json=as_json),
            as_json=as_json,
        )
        for name, value in headers.items():
            response[name] = value
        return response


class OtlpTracesView(_OtlpView):
    """Store the spans of an OTLP ``ExportTraceServiceRequest`` as calls."""

    @extend_schema(
        operation_id="otlp_traces",
        request={PROTOBUF: OpenApiTypes.BINARY, JSON: OpenApiTypes.OBJECT},
        responses={
            200: OpenApiResponse(
                description="ExportTraceServiceResponse; partialSuccess names rejected spans"
            ),
            **_ERRORS,
        },
    )
    def post(self, request: Request) -> HttpResponse:
        project = request_project(request, self)
        body, as_json = self._read(request)
        decoded = decode.decode_json(body) if as_json else decode.decode_protobuf(body)
        mapping = map_request(decoded)
        if mapping.events:
            self._rate_limit(project.pk, len(mapping.events))
        rejections = list(mapping.rejections)
        # One bounded statement per chunk, like a native batch.
        size = settings.INGEST_MAX_BATCH_EVENTS
        for start in range(0, len(mapping.events), size):
            chunk = mapping.events[start : start + size]
            used_log_events = otlp_pending_merge_into_events(project=project, events=chunk)
            outcome = ingest_events(project=project, events=chunk)
            otlp_spans_stored(
                project=project, used_events=used_log_events, call_ids=outcome.accepted_call_ids
            )
            for where, result in zip(
                mapping.wheres[start : start + size], outcome.results, strict=True
            ):
                if result.status == ERROR:
                    rejections.append(decode.SpanRejection(where, result.error or "invalid"))
        message = decode.summarize_rejections(rejections) if rejections else ""
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
            decode.encode_response(rejected=len(rejections), message=message, as_json=as_json),
            as_json=as_json,
        )


class LangfuseOtlpTracesView(OtlpTracesView):
    """The Langfuse SDK's OTLP path, with its Basic auth: teams move by changing host and key."""

    authentication_classes = [BasicSecretKeyAuthentication]

    @extend_schema(
        operation_id="otlp_traces_langfuse",
        request={PROTOBUF: OpenApiTypes.BINARY, JSON: OpenApiTypes.OBJECT},
        responses={200: OpenApiResponse(description="ExportTraceServiceResponse"), **_ERRORS},
    )
    def post(self, request: Request) -> HttpResponse:
        return super().post(request)


class OtlpLogsView(_OtlpView):
    """GenAI content events of an OTLP ``ExportLogsServiceRequest``, attached to their span's
    call whichever arrives first; every other log record is accepted and dropped."""

    @extend_schema(
        operation_id="otlp_logs",
        request={PROTOBUF: OpenApiTypes.BINARY, JSON: OpenApiTypes.OBJECT},
        responses={200: OpenApiResponse(description="ExportLogsServiceResponse"), **_ERRORS},
    )
    def post(self, request: Request) -> HttpResponse:
        project = request_project(request, self)
        body, as_json = self._read(request)
        decoded = decode.decode_logs_json(body) if as_json else decode.decode_logs_protobuf(body)
        mapping = map_logs_request(decoded)
        if mapping.events:
            self._rate_limit(project.pk, len(mapping.events))
            otlp_log_events_store(project=project, events=mapping.events)
        return _answer(
            200,
            decode.encode_response(rejected=0, message="", as_json=as_json, logs=True),
            as_json=as_json,
        )
