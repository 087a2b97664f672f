"""Secrets at rest (webhook URLs, signing secrets): Fernet, AES-128-CBC + HMAC-SHA256.

The key is ``settings.DRIFTLINE_ENCRYPTION_KEY`` (urlsafe base64 of 32 bytes, as
``Fernet.generate_key()`` prints it). Several keys may be given, comma-separated: the first
encrypts, all decrypt, so a key can be rotated without losing existing rows. When the setting is
empty a key is derived from ``SECRET_KEY`` with HKDF-SHA256, so a laptop needs no extra setting;
production should set its own key, because rotating SECRET_KEY then makes old rows unreadable.
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_HKDF_INFO = b"driftline/secrets-at-rest/v1"
_HKDF_SALT = b"driftline"


class DecryptionError(Exception):
    """A stored secret cannot be read with the configured keys."""


def derive_key(secret: str) -> bytes:
    """A Fernet key derived from an arbitrary secret string (HKDF-SHA256)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


@cache
def _fernet_for(configured: str, secret_key: str) -> MultiFernet:
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    if not keys:
        keys = [derive_key(secret_key).decode("ascii")]
    try:
        return MultiFernet([Fernet(k.encode("ascii")) for k in keys])
    except (ValueError, UnicodeError) as exc:
        raise ValueError(
            "DRIFTLINE_ENCRYPTION_KEY must be urlsafe base64 of 32 bytes "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from exc


def _fernet() -> MultiFernet:
    # Keyed on the settings' values so override_settings in tests takes effect.
    return _fernet_for(
        str(getattr(settings, "DRIFTLINE_ENCRYPTION_KEY", "") or ""), str(settings.SECRET_KEY)
    )


def encrypt_str(plaintext: str) -> str:
    """Encrypt ``plaintext``; the token is ASCII, fit for a TextField."""
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_str(token: str) -> str:
    """Decrypt a token from :func:`encrypt_str`; :class:`DecryptionError` when it cannot."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("secret cannot be decrypted with the configured key(s)") from exc


def rotate_str(token: str) -> str:
    """Re-encrypt a token under the first (newest) key."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("secret cannot be decrypted with the configured key(s)") from exc
