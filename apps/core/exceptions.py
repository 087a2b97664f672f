"""API defaults: one error shape for every 4xx, ``{"error": ..., "field": ...}``.

A database that is down or restarting is the server's trouble, not the client's, and it passes:
it answers 503 with ``Retry-After`` (which the SDK honours) instead of a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying while the database is unavailable.
DATABASE_RETRY_AFTER_S = 5


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"error": exc.message}
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=exc.status_code)
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc)
        return Response(
            {"error": "the database is unavailable; retry later"},
            status=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        # Name the first offending field in a sentence; keep the details for clients.
        field, messages = next(iter(response.data.items()))
        first = messages[0] if isinstance(messages, list) and messages else messages
        response.data = {"error": f"{field}: {first}", "field": field, "details": response.data}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"])}
    return response
