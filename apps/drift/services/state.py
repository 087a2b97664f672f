"""The stored state of a baseline: the blob codec, the detector object it holds, and the provider
key a baseline must match (never mixing vector spaces).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from apps.drift import detectors
from apps.drift.models import (
    Baseline,
)
from apps.embeddings.models import CallEmbedding


def state_encode(state: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode("utf-8"), 3)


def state_decode(blob: bytes | memoryview | None) -> dict[str, Any]:
    if blob is None:
        raise ValueError("baseline has no state")
    loaded: dict[str, Any] = json.loads(zlib.decompress(bytes(blob)))
    return loaded


def baseline_model(*, baseline: Baseline) -> detectors.Baseline:
    """The detector object of a stored baseline."""
    return detectors.Baseline.from_state(state_decode(baseline.state)["detector"])


def current_provider_key(*, project_id: int) -> str | None:
    """The key of the project's newest vectors: what a check compares against the baseline."""
    return (
        CallEmbedding.objects.filter(project_id=project_id)
        .order_by("-created_at")
        .values_list("provider_key", flat=True)
        .first()
    )
