"""OTLP/HTTP bodies in and answers out: protobuf and OTLP/JSON decoding of trace and log
exports, ``Export*ServiceResponse`` and ``google.rpc.Status`` answers. Pure.

https://opentelemetry.io/docs/specs/otlp/#otlphttp (bodies, JSON mapping, answers).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF_CONTENT_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_CONTENT_TYPE = "application/json"

# A rejection summary names this many items; the count covers all of them.
MAX_ERRORS_IN_MESSAGE = 5

# google.rpc.Code values used in error bodies.
RPC_INVALID_ARGUMENT = 3
RPC_UNAUTHENTICATED = 16
RPC_PERMISSION_DENIED = 7
RPC_RESOURCE_EXHAUSTED = 8
RPC_UNIMPLEMENTED = 12
RPC_INTERNAL = 13


class OtlpDecodeError(Exception):
    """The body is not an Export*ServiceRequest in the announced encoding (answer 400)."""


@dataclass(frozen=True)
class SpanRejection:
    """A span (or log record) that could not be stored; ``where`` names it in the request."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


_M = TypeVar("_M", bound=Message)


def _parse_protobuf(body: bytes, request: _M) -> _M:
    name = type(request).__name__
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body: not an {name} in protobuf ({exc})") from exc
    return request


def _parse_json(body: bytes, request: _M, containers: tuple[str, str, str]) -> _M:
    """OTLP/JSON: protobuf's JSON mapping except that trace and span ids are hex, not base64.

    Enum values may be integers or names and int64 values strings or numbers (protojson reads
    both); unknown fields are ignored, as the spec requires of receivers.
    """
    name = type(request).__name__
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpDecodeError(f"body: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise OtlpDecodeError(f"body: a JSON object ({name}) is required")
    _hex_ids_to_base64(data, containers)
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body: {exc}") from exc
    return request


_SPAN_CONTAINERS = ("resourceSpans", "scopeSpans", "spans")
_LOG_CONTAINERS = ("resourceLogs", "scopeLogs", "logRecords")


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    return _parse_protobuf(body, ExportTraceServiceRequest())


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    return _parse_json(body, ExportTraceServiceRequest(), _SPAN_CONTAINERS)


def decode_logs_protobuf(body: bytes) -> ExportLogsServiceRequest:
    return _parse_protobuf(body, ExportLogsServiceRequest())


def decode_logs_json(body: bytes) -> ExportLogsServiceRequest:
    return _parse_json(body, ExportLogsServiceRequest(), _LOG_CONTAINERS)


# Both spellings: protojson accepts the original field names as well as lowerCamelCase.
_ID_FIELDS = {
    "traceId": 16,
    "spanId": 8,
    "parentSpanId": 8,
    "trace_id": 16,
    "span_id": 8,
    "parent_span_id": 8,
}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _hex_ids_to_base64(data: dict[str, Any], containers: tuple[str, str, str]) -> None:
    """Rewrite hex ids in place into the base64 protojson expects.

    An id that is neither hex nor base64 of the right size becomes empty, which the mapping
    rejects for that item alone (partial success) rather than failing the whole request.
    """
    outer, middle, inner = containers
    for resource in _dicts(data.get(outer, data.get(_snake(outer)))):
        for scope in _dicts(resource.get(middle, resource.get(_snake(middle)))):
            for item in _dicts(scope.get(inner, scope.get(_snake(inner)))):
                _fix_ids(item)
                for link in _dicts(item.get("links")):
                    _fix_ids(link)


def _fix_ids(obj: dict[str, Any]) -> None:
    for key, size in _ID_FIELDS.items():
        value = obj.get(key)
        if isinstance(value, str):
            obj[key] = base64.b64encode(_id_bytes(value, size)).decode()


def _id_bytes(value: str, size: int) -> bytes:
    if value == "":
        return b""
    if len(value) == 2 * size:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    # Tolerated: protobuf's own JSON mapping (MessageToJson) writes ids as base64.
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""
    return raw if len(raw) == size else b""


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# --- answers --------------------------------------------------------------------------------


def encode_response(*, rejected: int, message: str, as_json: bool, logs: bool = False) -> bytes:
    """Export{Trace,Logs}ServiceResponse; partial_success only when something was rejected."""
    response: ExportTraceServiceResponse | ExportLogsServiceResponse
    if logs:
        response = ExportLogsServiceResponse()
        if rejected or message:
            response.partial_success.rejected_log_records = rejected
            response.partial_success.error_message = message
    else:
        response = ExportTraceServiceResponse()
        if rejected or message:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
    if as_json:
        return json_format.MessageToJson(response, indent=None).encode()
    return bytes(response.SerializeToString())


def encode_status(*, code: int, message: str, as_json: bool) -> bytes:
    """A google.rpc.Status, the body of every OTLP/HTTP error answer.

    Hand-encoded (field 1 int32 code, field 2 string message) so the server does not need
    googleapis-common-protos for two fields.
    """
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def summarize_rejections(rejections: list[SpanRejection], *, noun: str = "span") -> str:
    shown = "; ".join(str(r) for r in rejections[:MAX_ERRORS_IN_MESSAGE])
    more = len(rejections) - MAX_ERRORS_IN_MESSAGE
    suffix = f"; and {more} more" if more > 0 else ""
    return f"{len(rejections)} {noun}(s) rejected: {shown}{suffix}"
