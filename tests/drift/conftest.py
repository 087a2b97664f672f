"""Shared drift fixtures: the interval-aligned ``now`` and a baseline fitted on a week of three
intents (``BASE_MIX``), as the streaming tests use them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import Project
from apps.drift.models import Baseline
from apps.drift.services import baselines, windows
from tests.drift.factories import BASE_MIX, seed_calls


@pytest.fixture
def now() -> Any:
    return windows.floor_to_interval(timezone.now(), 60)


@pytest.fixture
def fitted(project: Project, now: Any) -> Baseline:
    seed_calls(project, BASE_MIX, start=now - timedelta(days=7), end=now - timedelta(days=1))
    return baselines.baseline_fit(
        project=project, start=now - timedelta(days=8), end=now - timedelta(days=1), k=3
    )
