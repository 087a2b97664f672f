"""Model threads: a prefork worker's processes split the cores; a setting overrides."""

from __future__ import annotations

import pytest
from celery.signals import worker_init, worker_process_init

from apps.celery import PROCESSES_ENV
from apps.embeddings.providers import available_cores, model_threads


class Controller:
    """What the signal's sender carries that matters here: the pool's size."""

    def __init__(self, concurrency: object) -> None:
        self.concurrency = concurrency


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv(PROCESSES_ENV, "1")  # restored after the test, whatever the signal sets
    monkeypatch.delenv(PROCESSES_ENV)
    monkeypatch.setattr("apps.embeddings.providers.available_cores", lambda: 4)
    return monkeypatch


def test_alone_a_process_takes_every_core(env) -> None:
    assert model_threads() == 4
    assert model_threads(3) == 3  # DRIFTLINE_EMBEDDING_THREADS wins


def test_the_children_of_a_prefork_pool_share_the_cores(env) -> None:
    """The worker's signals, as Celery sends them: the controller before the pool starts, then
    each forked child's init."""
    worker_init.send(sender=Controller(2))
    worker_process_init.send(sender=None)
    assert model_threads() == 2
    env.setenv(PROCESSES_ENV, "8")
    assert model_threads() == 1  # never below one
    assert model_threads(2) == 2
    env.setenv(PROCESSES_ENV, "many")
    assert model_threads() == 4


def test_a_pool_of_unknown_size_leaves_the_process_alone(env) -> None:
    worker_init.send(sender=Controller("auto"))
    worker_process_init.send(sender=None)
    assert model_threads() == 4
    assert available_cores() >= 1
