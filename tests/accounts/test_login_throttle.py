"""Sign-in throttling on the UI login and /admin/login/, against real Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from apps.accounts.login_throttle import PREFIX

PASSWORD = "correct horse battery staple"


def _login(client: Client, path: str, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_username_even_for_the_right_one(
    alice: Any, bob: Any, path: str
) -> None:
    alice.is_staff = alice.is_superuser = True
    alice.save(update_fields=["is_staff", "is_superuser"])
    client = Client()
    for _ in range(5):
        assert _login(client, path, "alice", "wrong").status_code == 200
    locked = _login(client, path, "alice", PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content
    assert int(locked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    # The same username from another address is locked too; another user is not.
    assert _login(Client(), path, "ALICE", PASSWORD, ip="10.0.0.2").status_code == 429
    other = _login(Client(), path, "bob", PASSWORD, ip="10.0.0.2")
    assert other.status_code == (302 if path == "/login/" else 200)  # bob is not staff


@pytest.mark.django_db
def test_many_usernames_from_one_address_lock_the_address(alice: Any) -> None:
    client = Client()
    for i in range(20):
        _login(client, "/login/", f"user{i}", "wrong", ip="10.9.9.9")
    assert _login(client, "/login/", "alice", PASSWORD, ip="10.9.9.9").status_code == 429
    assert _login(Client(), "/login/", "alice", PASSWORD, ip="10.9.9.8").status_code == 302


@pytest.mark.django_db
def test_a_success_clears_the_count_and_the_lock_ends_with_its_window(alice: Any) -> None:
    client = Client()
    for _ in range(4):
        _login(client, "/login/", "alice", "wrong")
    assert _login(client, "/login/", "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):  # counted from zero again: not locked after 4 more
        _login(client, "/login/", "alice", "wrong")
    assert _login(client, "/login/", "alice", PASSWORD).status_code == 302
    client = Client()
    for _ in range(5):
        _login(client, "/login/", "alice", "wrong", ip="10.1.1.1")
    assert _login(client, "/login/", "alice", PASSWORD, ip="10.1.1.1").status_code == 429
    # The window (15 minutes) ends: shortened here rather than waited for.
    redis_client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in redis_client.scan_iter(f"{PREFIX}*"):
        assert 0 < redis_client.ttl(key) <= settings.LOGIN_LOCKOUT_SECONDS
        redis_client.expire(key, 1)
    time.sleep(1.5)
    assert _login(client, "/login/", "alice", PASSWORD, ip="10.1.1.1").status_code == 302
