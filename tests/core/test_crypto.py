"""Secrets at rest (apps/core/crypto.py)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from apps.core import crypto


def test_round_trip_and_ciphertext_hides_plaintext(settings):
    settings.DRIFTLINE_ENCRYPTION_KEY = ""
    url = "https://hooks.slack.com/services/T000/B000/secret-token"
    token = crypto.encrypt_str(url)
    assert "secret-token" not in token
    assert token != crypto.encrypt_str(url)  # random IV
    assert crypto.decrypt_str(token) == url


def test_key_derived_from_secret_key_when_unset(settings):
    settings.DRIFTLINE_ENCRYPTION_KEY = ""
    token = crypto.encrypt_str("x")
    settings.SECRET_KEY = "another-secret-key"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_str(token)


def test_configured_key_and_rotation(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DRIFTLINE_ENCRYPTION_KEY = old
    token = crypto.encrypt_str("secret")
    settings.DRIFTLINE_ENCRYPTION_KEY = f"{new},{old}"  # new key first, old still decrypts
    assert crypto.decrypt_str(token) == "secret"
    rotated = crypto.rotate_str(token)
    settings.DRIFTLINE_ENCRYPTION_KEY = new
    assert crypto.decrypt_str(rotated) == "secret"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_str(token)


def test_tampered_token_is_refused(settings):
    settings.DRIFTLINE_ENCRYPTION_KEY = ""
    token = crypto.encrypt_str("secret")
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_str(tampered)


def test_bad_configured_key_is_a_clear_error(settings):
    settings.DRIFTLINE_ENCRYPTION_KEY = "not-a-fernet-key"
    with pytest.raises(ValueError, match="DRIFTLINE_ENCRYPTION_KEY"):
        crypto.encrypt_str("x")
