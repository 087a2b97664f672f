"""Shared fixtures: real PostgreSQL+pgvector and Redis (started by ``make test``), the fixed cast
(alice owner, bob member, rita reviewer, charlie outsider), project keys, and a real Celery
worker process on the test database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from rest_framework.test import APIClient

from apps.accounts.models import Organization, Project, Role
from apps.accounts.services import api_key_create, membership_set

ROOT = Path(__file__).resolve().parent.parent


@receiver(connection_created)
def _lose_deadlocks_to_the_worker(connection: Any, **_: Any) -> None:
    """The live Celery worker may still be finishing an earlier test's follow-up (an update of
    calls and a rollup mark in one transaction) while the next transactional test's flush
    TRUNCATEs every table, in an order of its own. PostgreSQL then aborts whichever waited
    ``deadlock_timeout`` first; with a longer one here, that is the worker's task (which
    retries), not the flush that would error the test."""
    with connection.cursor() as cursor:
        cursor.execute("SET deadlock_timeout = '10s'")


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> None:
    """Rate-limit buckets and queues left by an earlier run must not leak into this one."""
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1).flushdb()


@pytest.fixture(autouse=True)
def _clear_login_throttle() -> None:
    """Failed sign-ins of one test must not lock out the next (same user names, 127.0.0.1)."""
    import redis

    from apps.accounts.login_throttle import PREFIX

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1)
        keys = list(client.scan_iter(f"{PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def organization(db: None) -> Organization:
    return Organization.objects.create(name="Acme", slug="acme")


@pytest.fixture
def project(organization: Organization) -> Project:
    return Project.objects.create(organization=organization, name="Support bot", slug="support-bot")


@pytest.fixture
def other_project(db: None) -> Project:
    """Another tenant entirely: nothing of it may be visible from ``project``."""
    other_org = Organization.objects.create(name="Globex", slug="globex")
    return Project.objects.create(organization=other_org, name="Globex bot", slug="globex-bot")


def _user(username: str) -> object:
    from django.contrib.auth.models import User

    return User.objects.create_user(
        username, f"{username}@example.com", "correct horse battery staple"
    )


@pytest.fixture
def alice(organization: Organization) -> object:
    user = _user("alice")
    membership_set(user=user, organization=organization, role=Role.OWNER)  # type: ignore[arg-type]
    return user


@pytest.fixture
def bob(organization: Organization) -> object:
    user = _user("bob")
    membership_set(user=user, organization=organization, role=Role.MEMBER)  # type: ignore[arg-type]
    return user


@pytest.fixture
def reviewer_user(organization: Organization) -> object:
    user = _user("rita")
    membership_set(user=user, organization=organization, role=Role.REVIEWER)  # type: ignore[arg-type]
    return user


@pytest.fixture
def charlie(other_project: Project) -> object:
    """A member of the other organization only."""
    user = _user("charlie")
    membership_set(user=user, organization=other_project.organization, role=Role.OWNER)  # type: ignore[arg-type]
    return user


@pytest.fixture
def ingest_key(project: Project) -> str:
    return api_key_create(project=project, name="sdk", scopes=["ingest"]).raw


@pytest.fixture
def read_key(project: Project) -> str:
    return api_key_create(project=project, name="reader", scopes=["read"]).raw


@pytest.fixture
def admin_key(project: Project) -> str:
    return api_key_create(project=project, name="admin", scopes=["admin"]).raw


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def _test_database_url() -> str:
    """DATABASE_URL pointing at pytest-django's test database (``test_<name>``)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    name = settings.DATABASES["default"]["NAME"]
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def run_worker(
    queues: str, *, log_name: str, node: str | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` process on ``queues``, on the test database and Redis.

    Its log goes to ``.driftline/test/<log_name>``; it is stopped when the block ends.
    """
    worker_env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DRIFTLINE_ENV": "test",
        "DATABASE_TEST_NAME": settings.DATABASES["default"]["NAME"],
        **(env or {}),
    }
    log_path = ROOT / ".driftline" / "test" / log_name
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "celery", "-A", "apps", "worker", "-Q", queues]
    command += ["--pool", "solo", "-l", "INFO"] + (["-n", node] if node else [])
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while b"ready" not in log_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"celery worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None, django_db_blocker: object
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` on every queue, connected to the test database and Redis.

    Tests using it need ``transactional_db`` so the worker sees their rows.
    """
    # The tests' fake Slack listens on 127.0.0.1.
    private = {"DRIFTLINE_WEBHOOK_ALLOW_PRIVATE": "1"}
    with run_worker("default,ingest,embed,drift,alerts", log_name="worker.log", env=private) as p:
        yield p


def wait_for(predicate: object, *, timeout: float = 60.0, interval: float = 0.2) -> bool:
    """Poll ``predicate()`` until true; for results produced by a worker process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return bool(predicate())  # type: ignore[operator]
