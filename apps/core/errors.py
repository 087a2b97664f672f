"""Errors that services raise and the API layer turns into 4xx answers."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request that cannot be served as asked; the message is safe to show the caller."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status_code is not None:
            self.status_code = status_code


class NotFound(ApplicationError):
    status_code = 404


class PermissionDenied(ApplicationError):
    status_code = 403


class TooManyRequests(ApplicationError):
    """A rate limit; ``retry_after`` (seconds) goes into the ``Retry-After`` header."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
