"""Sign-in throttling per username and per client address, on the UI login and the admin's.

Failed sign-ins are counted in Redis (shared by every web process) in a fixed window of
``LOGIN_LOCKOUT_SECONDS``: at ``LOGIN_MAX_FAILURES_PER_USER`` failures for one username, or
``LOGIN_MAX_FAILURES_PER_IP`` from one address, every further attempt in the window, even with
the right password, is answered 429 with a message saying when to retry. A successful sign-in
clears its username's count. The username is hashed in the key (no credentials in Redis).

Fails open when Redis is unreachable (logged): a Redis outage must not lock everyone out.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape

logger = logging.getLogger(__name__)

PREFIX = "driftline:login-fail:"
LOGIN_PATHS = ("/login/", "/admin/login/")


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=0.5, socket_connect_timeout=0.5
    )


def _keys(username: str, address: str) -> tuple[str, str]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"{PREFIX}user:{digest}", f"{PREFIX}ip:{address}"


def _address(request: HttpRequest | None) -> str:
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


def lockout_remaining(*, username: str, address: str) -> int:
    """Seconds until this username or address may try again; 0 when not locked."""
    user_key, ip_key = _keys(username, address)
    try:
        pipe = _client().pipeline()
        for key in (user_key, ip_key):
            pipe.get(key)
            pipe.ttl(key)
        user_count, user_ttl, ip_count, ip_ttl = pipe.execute()
    except redis.RedisError:
        logger.warning("login throttle unavailable; allowing the attempt", exc_info=True)
        return 0
    remaining = 0
    if int(user_count or 0) >= settings.LOGIN_MAX_FAILURES_PER_USER:
        remaining = max(remaining, int(user_ttl or 0), 1)
    if address and int(ip_count or 0) >= settings.LOGIN_MAX_FAILURES_PER_IP:
        remaining = max(remaining, int(ip_ttl or 0), 1)
    return remaining


def failure_record(*, username: str, address: str) -> None:
    window = settings.LOGIN_LOCKOUT_SECONDS
    try:
        pipe = _client().pipeline()
        for key in _keys(username, address)[: 2 if address else 1]:
            pipe.set(key, 0, ex=window, nx=True)
            pipe.incr(key)
        pipe.execute()
    except redis.RedisError:
        logger.warning("login throttle unavailable; failure not counted", exc_info=True)


def success_record(*, username: str) -> None:
    try:
        _client().delete(_keys(username, "")[0])
    except redis.RedisError:
        logger.warning("login throttle unavailable", exc_info=True)


def _on_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    failure_record(username=str(credentials.get("username", "")), address=_address(request))


def _on_logged_in(sender: Any, request: Any, user: Any, **_: Any) -> None:
    success_record(username=user.get_username())


class LoginThrottleMiddleware:
    """Answers 429 to a sign-in POST while its username or address is locked out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        user_login_failed.connect(_on_failed, dispatch_uid="login_throttle.failed")
        user_logged_in.connect(_on_logged_in, dispatch_uid="login_throttle.logged_in")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in LOGIN_PATHS:
            remaining = lockout_remaining(
                username=str(request.POST.get("username", "")), address=_address(request)
            )
            if remaining:
                return _locked(remaining)
        return self.get_response(request)


def _locked(remaining: int) -> HttpResponse:
    minutes = max(1, (remaining + 59) // 60)
    message = (
        "Too many failed sign-in attempts for this account or from this address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )
    body = (
        "<!doctype html><html><head><title>Sign-in locked</title></head><body>"
        f'<main><h1>Sign-in locked</h1><p role="alert">{escape(message)}</p>'
        '<p><a href="/login/">Back to sign-in</a></p></main></body></html>'
    )
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(remaining)
    return response
