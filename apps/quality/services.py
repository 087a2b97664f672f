"""Glue between stored calls and the pure quality code (pricing, signals)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.quality.models import PriceOverride as PriceOverrideRow
from apps.quality.pricing import PriceOverride, compute_cost
from apps.quality.signals import compute_signals
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


def call_signals(*, call: Call) -> dict[str, Any]:
    prompt = call.prompt or last_user_message(call.messages)
    return compute_signals(
        prompt=prompt,
        response=call.response,
        call={
            "model": call.model,
            "metadata": call.metadata,
            "status": call.status,
            "kind": call.kind,
            "messages": call.messages,
        },
    )
