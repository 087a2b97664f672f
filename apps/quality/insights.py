"""Cost insights (pure functions of call columns; the selectors feed them).

* :func:`duplicate_prompts`: prompts sent more than once, identical after normalisation, with
  the money a response cache keyed on (model, prompt) would have saved.
* :func:`routing_suggestions`: intents where a cheaper model's negative-feedback rate is *not
  worse* than the current model's by more than a margin (a one-sided non-inferiority test), so
  those intents could be routed to the cheaper model.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from apps.quality.regression.stats import benjamini_hochberg

_SPACES = re.compile(r"\s+")


def normalise_prompt(prompt: str) -> str:
    """The form under which two prompts count as the same request: Unicode NFKC, case-folded,
    whitespace collapsed, trailing punctuation and spaces dropped. Conservative on purpose: a
    cache must never serve an answer to a different question."""
    text = unicodedata.normalize("NFKC", prompt).casefold()
    return _SPACES.sub(" ", text).strip().rstrip(" .!?")


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Calls whose prompt (and model, when given) is the same after normalisation."""

    key: str
    example_prompt: str
    model: str
    count: int
    total_cost: float
    avoidable_cost: float
    call_ids: tuple[str, ...]


def duplicate_prompts(
    prompts: Sequence[str],
    costs: Sequence[float | None],
    *,
    models: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    min_count: int = 2,
    limit: int = 50,
    max_ids: int = 10,
) -> list[DuplicateGroup]:
    """Groups of repeated prompts, most avoidable cost first.

    ``avoidable_cost`` is the cost of every call of the group but the first (the cache miss);
    unknown costs count as 0. Calls are grouped by model as well when ``models`` is given, since
    a cache is per model.
    """
    if len(costs) != len(prompts) or (models is not None and len(models) != len(prompts)):
        raise ValueError("prompts, costs and models must have the same length")
    groups: dict[str, list[int]] = {}
    for index, prompt in enumerate(prompts):
        normalised = normalise_prompt(prompt or "")
        if not normalised:
            continue
        model = models[index] if models is not None else ""
        key = hashlib.sha256(f"{model}\x00{normalised}".encode()).hexdigest()[:16]
        groups.setdefault(key, []).append(index)
    found: list[DuplicateGroup] = []
    for key, members in groups.items():
        if len(members) < min_count:
            continue
        member_costs = [_cost(costs[i]) for i in members]
        found.append(
            DuplicateGroup(
                key=key,
                example_prompt=prompts[members[0]],
                model=models[members[0]] if models is not None else "",
                count=len(members),
                total_cost=sum(member_costs),
                avoidable_cost=sum(member_costs[1:]),
                call_ids=tuple(str(ids[i]) for i in members[:max_ids]) if ids is not None else (),
            )
        )
    found.sort(key=lambda group: (-group.avoidable_cost, -group.count))
    return found[:limit]


def _cost(value: float | None) -> float:
    if value is None or not math.isfinite(value):
        return 0.0
    return float(value)


@dataclass(frozen=True, slots=True)
class RoutingSuggestion:
    """Route ``intent`` from ``current_model`` to ``cheaper_model``: feedback not worse by more
    than ``margin`` (non-inferiority p-value ``p_value``, BH ``q_value``), cheaper per call."""

    intent: str
    current_model: str
    cheaper_model: str
    n_current: int
    n_cheaper: int
    negative_rate_current: float
    negative_rate_cheaper: float
    difference: float
    ci_high: float
    margin: float
    p_value: float
    q_value: float
    cost_per_call_current: float
    cost_per_call_cheaper: float
    monthly_saving_estimate: float
    summary: str


def non_inferiority_test(
    x_new: int, n_new: int, x_ref: int, n_ref: int, margin: float
) -> tuple[float, float, float]:
    """One-sided test of ``H0: p_new - p_ref >= margin`` (new is worse by the margin or more)
    against ``H1: p_new - p_ref < margin``, for rates where higher is worse.

    Wald statistic on add-half rates (keeps the variance positive at 0 events). Returns
    ``(p_value, difference, upper bound of the one-sided 95% interval)``.
    """
    p_new, p_ref = x_new / n_new, x_ref / n_ref
    a_new, a_ref = (x_new + 0.5) / (n_new + 1), (x_ref + 0.5) / (n_ref + 1)
    se = math.sqrt(a_new * (1 - a_new) / n_new + a_ref * (1 - a_ref) / n_ref)
    difference = p_new - p_ref
    z = (difference - margin) / se
    return float(stats.norm.cdf(z)), difference, difference + float(stats.norm.isf(0.05)) * se


def routing_suggestions(
    *,
    intents: Sequence[str],
    models: Sequence[str],
    negative_feedback: Sequence[float | None],
    costs: Sequence[float | None],
    margin: float = 0.02,
    alpha: float = 0.05,
    min_n: int = 100,
    calls_per_month: dict[str, float] | None = None,
) -> list[RoutingSuggestion]:
    """For each intent, each (more expensive, cheaper) pair of models serving it: suggest the
    cheaper one when its negative-feedback rate is non-inferior within ``margin``.

    ``negative_feedback`` is 1 (negative), 0 (positive/neutral) or None/NaN (no feedback); only
    calls with feedback enter the test, all calls with a cost enter the cost per call. Both
    models need ``min_n`` calls with feedback in the intent. p-values are BH-adjusted across all
    pairs tested. ``calls_per_month`` (intent -> volume on the expensive model) turns the price
    gap into a saving estimate; without it the estimate uses the calls seen.
    """
    n = len(intents)
    if not (len(models) == len(negative_feedback) == len(costs) == n):
        raise ValueError("intents, models, negative_feedback and costs must have the same length")
    intent_arr = np.asarray(intents, dtype=object)
    model_arr = np.asarray(models, dtype=object)
    feedback = np.array([math.nan if v is None else float(v) for v in negative_feedback])
    cost = np.array([math.nan if v is None else float(v) for v in costs])
    candidates: list[tuple[str, str, str, int, int, float, float, float, float, float, float]] = []
    for intent in sorted(set(intent_arr.tolist()), key=str):
        in_intent = intent_arr == intent
        per_model: dict[str, tuple[int, int, float, int]] = {}
        for model in sorted(set(model_arr[in_intent].tolist()), key=str):
            mask = in_intent & (model_arr == model)
            rated = mask & np.isfinite(feedback)
            priced = mask & np.isfinite(cost)
            if rated.sum() < min_n or priced.sum() == 0:
                continue
            per_model[model] = (
                int((feedback[rated] > 0).sum()),
                int(rated.sum()),
                float(cost[priced].mean()),
                int(mask.sum()),
            )
        for expensive, (x_ref, n_ref, cost_ref, volume) in per_model.items():
            for cheaper, (x_new, n_new, cost_new, _) in per_model.items():
                if cost_new >= cost_ref:
                    continue
                p, difference, upper = non_inferiority_test(x_new, n_new, x_ref, n_ref, margin)
                month = (calls_per_month or {}).get(str(intent), float(volume))
                candidates.append(
                    (str(intent), expensive, cheaper, n_ref, n_new, x_ref / n_ref, x_new / n_new,
                     difference, upper, p, (cost_ref - cost_new) * month)
                )  # fmt: skip
    q_values = benjamini_hochberg([c[9] for c in candidates])
    suggestions = []
    for candidate, q in zip(candidates, q_values, strict=True):
        intent, expensive, cheaper, n_ref, n_new, r_ref, r_new, diff, upper, p, saving = candidate
        if q > alpha:
            continue
        cost_ref = _mean_cost(cost, intent_arr, model_arr, intent, expensive)
        cost_new = _mean_cost(cost, intent_arr, model_arr, intent, cheaper)
        suggestions.append(
            RoutingSuggestion(
                intent=intent, current_model=expensive, cheaper_model=cheaper, n_current=n_ref,
                n_cheaper=n_new, negative_rate_current=r_ref, negative_rate_cheaper=r_new,
                difference=diff, ci_high=upper, margin=margin, p_value=p, q_value=float(q),
                cost_per_call_current=cost_ref, cost_per_call_cheaper=cost_new,
                monthly_saving_estimate=saving,
                summary=(
                    f"Intent {intent!r}: {cheaper} has {r_new:.1%} negative feedback vs "
                    f"{r_ref:.1%} on {expensive} (difference {diff * 100:+.1f} pp, upper 95% "
                    f"bound {upper * 100:+.1f} pp < margin {margin * 100:.1f} pp; q={q:.4f}) "
                    f"at {cost_new / cost_ref:.0%} of the cost per call."
                ),
            )
        )  # fmt: skip
    suggestions.sort(key=lambda s: -s.monthly_saving_estimate)
    return suggestions


def _mean_cost(
    cost: np.ndarray, intents: np.ndarray, models: np.ndarray, intent: str, model: str
) -> float:
    mask = (intents == intent) & (models == model) & np.isfinite(cost)
    return float(cost[mask].mean())
