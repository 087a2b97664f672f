"""Glue between stored calls and the pure quality code (pricing, safety signals); review
requests (calls someone asked reviewers to label)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from django.contrib.auth.models import AbstractBaseUser

from apps.accounts.models import Project
from apps.core.errors import ApplicationError
from apps.quality.models import PriceOverride as PriceOverrideRow
from apps.quality.models import ReviewRequest, SafetySettings
from apps.quality.pricing import PriceOverride, compute_cost
from apps.quality.safety import compute_signals
from apps.quality.scorers import learned
from apps.traces.models import Call
from apps.traces.text import last_user_message


def price_overrides_for_project(*, project_id: int) -> list[PriceOverride]:
    return [
        PriceOverride(
            pattern=row.model_pattern,
            input=row.input_per_mtok,
            output=row.output_per_mtok,
            cached_input=row.cached_input_per_mtok,
            reasoning=row.reasoning_per_mtok,
        )
        for row in PriceOverrideRow.objects.filter(project_id=project_id)
    ]


def call_cost(*, call: Call, overrides: Sequence[PriceOverride]) -> float | None:
    if not call.model or (call.input_tokens is None and call.output_tokens is None):
        return None
    breakdown = compute_cost(
        model=call.model,
        input_tokens=call.input_tokens,
        output_tokens=call.output_tokens,
        cached_tokens=call.cached_tokens,
        reasoning_tokens=call.reasoning_tokens,
        at=call.start_time,
        overrides=overrides,
    )
    return None if breakdown is None else float(breakdown.total)


def call_cost_decide(*, call: Call, overrides: Sequence[PriceOverride]) -> tuple[float | None, str]:
    """(cost_usd, cost_source) of a stored call: the one rule for native and OTLP calls alike.

    A client's cost is kept when it is positive, or when the model has no price; otherwise the
    price table prices the tokens ("computed"). A zero from the client is no price: OpenLIT, for
    one, sends ``gen_ai.usage.cost = 0`` when it could not fetch its own price list.
    """
    client = call.cost_usd
    if client is not None and client > 0:
        return client, call.cost_source or "client"
    computed = call_cost(call=call, overrides=overrides)
    if computed is not None:
        return computed, "computed"
    return client, call.cost_source if client is not None else ""


# The fields of a stored call that :func:`call_signals` reads (for ``.only()``).
SIGNAL_FIELDS = ("project_id", "id", "prompt", "messages", "response", "model", "metadata",
                 "status", "kind")  # fmt: skip


def call_signals(
    *,
    call: Call,
    prompt_embedding: npt.NDArray[np.float32] | None = None,
    response_embedding: npt.NDArray[np.float32] | None = None,
    provider_key: str | None = None,
    safety_fpr: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The signals of a stored call: the one place that maps a call onto ``compute_signals``.

    The ingest worker calls it without vectors (heuristics); the embed worker again with the
    prompt's and response's vectors and their ``provider_key`` (learned probes), and the
    project's operating points ``safety_fpr`` (:func:`apps.quality.selectors.
    safety_fpr_for_project`, looked up once per batch).
    """
    return compute_signals(
        prompt=call.prompt or last_user_message(call.messages),
        response=call.response,
        call={
            "model": call.model,
            "metadata": call.metadata,
            "status": call.status,
            "kind": call.kind,
            "messages": call.messages,
        },
        prompt_embedding=prompt_embedding,
        response_embedding=response_embedding,
        provider_key=provider_key,
        safety_fpr=safety_fpr,
    )


# --- Review requests ---------------------------------------------------------------------------


def review_request_create(
    *,
    project_id: int,
    call_ids: Sequence[uuid.UUID | str],
    batch: str,
    requested_by: AbstractBaseUser | None = None,
) -> int:
    """Ask reviewers to label these calls (the review queue's "Requested" mode, by ``batch``).
    Calls of other projects are ignored; a call already requested in the batch is not repeated.
    Returns how many calls were newly queued."""
    batch = " ".join(batch.split())[:200]
    if not batch:
        raise ApplicationError("batch: required", field="batch")
    ids = list(
        Call.objects.filter(project_id=project_id, id__in=[str(i) for i in call_ids]).values_list(
            "id", flat=True
        )
    )
    before = ReviewRequest.objects.filter(project_id=project_id, batch=batch).count()
    ReviewRequest.objects.bulk_create(
        [
            ReviewRequest(
                project_id=project_id,
                call_id=call_id,
                batch=batch,
                requested_by_id=requested_by.pk if requested_by else None,
            )
            for call_id in ids
        ],
        ignore_conflicts=True,
    )
    return ReviewRequest.objects.filter(project_id=project_id, batch=batch).count() - before


def safety_settings_set(*, project: Project, **fprs: float | None) -> SafetySettings:
    """Set a project's benign FPR per learned signal (``injection_fpr=0.005``, ...).

    A value must be one of :data:`~apps.quality.scorers.learned.FPR_CHOICES` (points the probe
    files carry measured figures for), or None to go back to the default; a signal not named is
    left as it is. Applies to calls scored from now on (the embed worker reads it per batch).
    """
    fields = [f"{signal}_fpr" for signal in learned.SIGNALS]
    unknown = sorted(set(fprs) - set(fields))
    if unknown:
        raise ApplicationError(f"unknown setting: {', '.join(unknown)}", field=unknown[0])
    allowed = ", ".join(f"{c:g}" for c in learned.FPR_CHOICES)
    for name, value in fprs.items():
        if value is not None and not any(
            abs(float(value) - c) < 1e-12 for c in learned.FPR_CHOICES
        ):
            raise ApplicationError(f"{name}: must be one of {allowed} (or null)", field=name)
    row, _ = SafetySettings.objects.get_or_create(project=project)
    if fprs:
        for name, value in fprs.items():
            setattr(row, name, None if value is None else float(value))
        row.save(update_fields=[*fprs, "updated_at"])
    return row
