"""Cost insights: duplicate prompts a cache would have served, and routing suggestions from a
non-inferiority test."""

from __future__ import annotations

import numpy as np
import pytest

from apps.quality.insights import (
    duplicate_prompts,
    non_inferiority_test,
    normalise_prompt,
    routing_suggestions,
)


def test_normalisation_is_conservative() -> None:
    assert normalise_prompt("  What is   the WEATHER in Paris? ") == "what is the weather in paris"
    assert normalise_prompt("\uff57\uff48\uff41\uff54") == "what"  # full-width forms (NFKC)
    assert normalise_prompt("weather in Paris") != normalise_prompt("weather in London")


def test_duplicates_with_their_avoidable_cost() -> None:
    prompts = [
        "What is the weather in Paris?",
        "what is the weather in paris",
        "What is the  weather in Paris?!",
        "Book a table for two",
        "book a table for two.",
        "Unique question",
    ]
    costs = [0.01, 0.01, 0.01, 0.002, None, 0.5]
    groups = duplicate_prompts(prompts, costs, ids=[f"c{i}" for i in range(6)])
    assert [group.count for group in groups] == [3, 2]
    weather = groups[0]
    assert weather.avoidable_cost == pytest.approx(0.02)
    assert weather.total_cost == pytest.approx(0.03)
    assert weather.call_ids == ("c0", "c1", "c2")
    assert groups[1].avoidable_cost == 0.0  # unknown cost counts as 0


def test_a_cache_is_per_model() -> None:
    prompts = ["Hello there"] * 4
    groups = duplicate_prompts(
        prompts, [1.0] * 4, models=["gpt-4o", "gpt-4o", "gpt-4o-mini", "claude-3-5-haiku"]
    )
    assert len(groups) == 1
    assert groups[0].model == "gpt-4o"
    assert groups[0].avoidable_cost == 1.0


def test_non_inferiority_test_directions() -> None:
    # Same rate, large samples: clearly within a 2 pp margin.
    p_value, difference, upper = non_inferiority_test(300, 3000, 300, 3000, margin=0.02)
    assert difference == 0.0
    assert upper < 0.02
    assert p_value < 0.05
    # Worse by 5 pp: not non-inferior.
    p_worse, _, _ = non_inferiority_test(150, 1000, 100, 1000, margin=0.02)
    assert p_worse > 0.5


def test_routing_suggests_cheaper_model_only_where_feedback_holds() -> None:
    rng = np.random.default_rng(0)
    rows = []
    # Intent "faq": the mini model is as good; intent "code": it is clearly worse.
    for intent, mini_negative in (("faq", 0.08), ("code", 0.25)):
        for model, negative, cost in (
            ("gpt-4o", 0.08, 0.010),
            ("gpt-4o-mini", mini_negative, 0.0006),
        ):
            for _ in range(4000):
                rows.append((intent, model, float(rng.random() < negative), cost))
    intents, models, feedback, costs = zip(*rows, strict=True)
    suggestions = routing_suggestions(
        intents=intents, models=models, negative_feedback=feedback, costs=costs, margin=0.02
    )
    assert [(s.intent, s.current_model, s.cheaper_model) for s in suggestions] == [
        ("faq", "gpt-4o", "gpt-4o-mini")
    ]
    suggestion = suggestions[0]
    assert suggestion.ci_high < 0.02
    assert suggestion.monthly_saving_estimate == pytest.approx((0.010 - 0.0006) * 4000)
    assert "gpt-4o-mini" in suggestion.summary


def test_routing_needs_enough_feedback() -> None:
    suggestions = routing_suggestions(
        intents=["faq"] * 40,
        models=["big"] * 20 + ["small"] * 20,
        negative_feedback=[0.0] * 40,
        costs=[1.0] * 20 + [0.1] * 20,
        min_n=100,
    )
    assert suggestions == []
