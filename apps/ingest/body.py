"""Reading a request body safely: size-capped before parsing, gzip decompressed with a cap."""

from __future__ import annotations

import zlib

from django.conf import settings
from django.http import HttpRequest

from apps.core.errors import ApplicationError

_CHUNK = 64 * 1024


class PayloadTooLarge(ApplicationError):
    status_code = 413


class UnsupportedMediaType(ApplicationError):
    status_code = 415


def read_body(request: HttpRequest, *, limit: int | None = None) -> bytes:
    """The request body, decompressed when ``Content-Encoding: gzip``; 413 past ``limit`` bytes.

    The limit applies to the bytes on the wire and again to the decompressed bytes, so a gzip
    bomb is stopped after ``limit`` bytes of output, never fully inflated.
    """
    limit = limit or settings.INGEST_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: {int(declared)} bytes is over the limit of {limit}")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"body: over the limit of {limit} bytes")
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding: {encoding!r} is not supported (use gzip)")
    # wbits 47 accepts both gzip and zlib headers.
    inflater = zlib.decompressobj(wbits=47)
    try:
        out = inflater.decompress(raw, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"body: decompresses to over the limit of {limit} bytes")
        out += inflater.flush()
    except zlib.error as exc:
        raise ApplicationError(f"body: invalid {encoding} data ({exc})") from exc
    if len(out) > limit:
        raise PayloadTooLarge(f"body: decompresses to over the limit of {limit} bytes")
    return out
