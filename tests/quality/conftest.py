"""Fixtures shared by the safety tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.quality import scorers
from apps.quality.scorers import learned


@pytest.fixture
def fresh_scorers() -> Iterator[None]:
    """The built-in scorers registered and the learned probes reloaded from their files, before
    and after the test (a test that patches a probe or a registry leaves nothing behind)."""
    scorers.register_builtins()
    learned.reset_cache()
    yield
    learned.reset_cache()
