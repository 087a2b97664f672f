"""DRF authentication by project API key: ``Authorization: Bearer dl_<prefix>_<secret>``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.models import ApiKey
from apps.accounts.selectors import api_key_authenticate

# last_used_at is written at most this often per key, so the ingest path stays read-only.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyPrincipal:
    """The ``request.user`` of a key-authenticated request: the project's key, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.pk = None
        self.id = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != "bearer":
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("Authorization: the Bearer key is empty")
        return self.authenticate_key(raw)

    def authenticate_key(self, raw: str) -> tuple[Any, ApiKey]:
        """The principal of a raw key, whatever header carried it."""
        api_key = api_key_authenticate(raw=raw)
        if api_key is None:
            # Never echo the key: it may be a real secret of someone else's.
            raise exceptions.AuthenticationFailed("Authorization: unknown or revoked API key")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return self.keyword
