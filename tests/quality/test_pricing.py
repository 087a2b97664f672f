"""Price table lookups: specificity, effective dates, overrides and token conventions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from apps.quality.pricing import (
    PRICES_PATH,
    PriceOverride,
    compute_cost,
    find_price,
    price_table,
    specificity,
)

AT = datetime(2025, 7, 1, tzinfo=UTC)


def test_table_is_complete_and_documented() -> None:
    raw = json.loads(PRICES_PATH.read_text())
    assert len(price_table()) == len(raw["models"]) > 80
    for row in raw["models"]:
        assert row["source"].startswith("https://"), row
        date.fromisoformat(row["effective_from"])
        assert row["input"] >= 0
        assert row["output"] >= 0
    providers = {row["provider"] for row in raw["models"]}
    assert {"openai", "anthropic", "google", "mistral", "together", "deepseek"} <= providers


@pytest.mark.parametrize(
    ("model", "pattern"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini*"),
        ("gpt-4o", "gpt-4o"),
        ("gpt-4.1-mini", "gpt-4.1-mini*"),
        ("claude-3-5-haiku-20241022", "*claude-3-5-haiku*"),
        ("claude-opus-4-1-20250805", "*claude-opus-4-1*"),
        ("claude-opus-4-20250514", "*claude-opus-4*"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "*claude-3-5-sonnet*"),
        ("models/gemini-2.5-flash-lite", "*gemini-2.5-flash-lite*"),
        ("gemini-2.5-flash", "*gemini-2.5-flash*"),
        ("openai/gpt-4o-mini", "gpt-4o-mini*"),
        ("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "*llama-3.1-70b*"),
    ],
)
def test_most_specific_pattern_wins(model: str, pattern: str) -> None:
    price = find_price(model, AT)
    assert price is not None
    assert price.pattern == pattern


def test_specificity_orders_exact_before_globs() -> None:
    assert specificity("gpt-4o") > specificity("gpt-4o-mini*")
    assert specificity("gpt-4o-mini*") > specificity("gpt-4o*")
    assert specificity("*claude-sonnet-4-5*") > specificity("*claude-sonnet-4*")


def test_unknown_model_has_no_cost() -> None:
    assert compute_cost(model="my-finetune-v3", input_tokens=10, output_tokens=10, at=AT) is None
    assert compute_cost(model="", input_tokens=10, output_tokens=10, at=AT) is None


def test_price_in_effect_at_the_call_time() -> None:
    # gpt-4o: $5/$15 until the alias moved on 2024-10-02, then $2.50/$10.
    before = compute_cost(
        model="gpt-4o", input_tokens=1_000_000, output_tokens=0, at=datetime(2024, 9, 1, tzinfo=UTC)
    )
    after = compute_cost(
        model="gpt-4o",
        input_tokens=1_000_000,
        output_tokens=0,
        at=datetime(2024, 11, 1, tzinfo=UTC),
    )
    assert before is not None
    assert after is not None
    assert before.total == pytest.approx(5.0)
    assert after.total == pytest.approx(2.5)
    # o3 was cut by 80% on 2025-06-10.
    o3_may = compute_cost(
        model="o3", input_tokens=0, output_tokens=1_000_000, at=datetime(2025, 5, 1, tzinfo=UTC)
    )
    o3_july = compute_cost(model="o3", input_tokens=0, output_tokens=1_000_000, at=AT)
    assert o3_may is not None
    assert o3_july is not None
    assert o3_may.total == pytest.approx(40.0)
    assert o3_july.total == pytest.approx(8.0)


def test_openai_input_includes_cached_tokens() -> None:
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million.
    cost = compute_cost(
        model="gpt-4o-mini",
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cached_tokens=400_000,
        at=AT,
    )
    assert cost is not None
    assert cost.input_cost == pytest.approx(0.6 * 0.15)
    assert cost.cached_input_cost == pytest.approx(0.4 * 0.075)
    assert cost.output_cost == pytest.approx(0.60)
    assert cost.total == pytest.approx(0.09 + 0.03 + 0.60)


def test_anthropic_cache_reads_and_writes_are_on_top_of_input() -> None:
    # claude-3-5-sonnet: $3 input, $0.30 cache read, $3.75 cache write, $15 output.
    cost = compute_cost(
        model="claude-3-5-sonnet-20241022",
        input_tokens=1_000_000,
        output_tokens=0,
        cached_tokens=2_000_000,
        cache_write_tokens=1_000_000,
        at=AT,
    )
    assert cost is not None
    assert cost.input_cost == pytest.approx(3.0)
    assert cost.cached_input_cost == pytest.approx(0.60)
    assert cost.cache_write_cost == pytest.approx(3.75)


def test_reasoning_tokens_are_billed_once_at_the_output_price() -> None:
    # OpenAI counts reasoning inside output_tokens: 1M output of which 800k reasoning = $4.40.
    openai = compute_cost(
        model="o4-mini", input_tokens=0, output_tokens=1_000_000, reasoning_tokens=800_000, at=AT
    )
    assert openai is not None
    assert openai.reasoning_cost == pytest.approx(0.8 * 4.40)
    assert openai.total == pytest.approx(4.40)
    # Gemini reports thoughts apart from the candidates: both are billed.
    gemini = compute_cost(
        model="gemini-2.5-flash",
        input_tokens=0,
        output_tokens=1_000_000,
        reasoning_tokens=1_000_000,
        at=AT,
    )
    assert gemini is not None
    assert gemini.total == pytest.approx(2 * 2.50)


def test_override_wins_over_the_table_and_has_its_own_dates() -> None:
    overrides = [
        PriceOverride(pattern="gpt-4o*", input=1.0, output=2.0, effective_from=date(2025, 6, 1)),
        PriceOverride(pattern="my-finetune-*", input=0.5, output=0.5, cached_input=0.1),
    ]
    # Less specific than the table's "gpt-4o-mini*", but an override wins whenever it matches.
    cost = compute_cost(
        model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0, at=AT, overrides=overrides
    )
    assert cost is not None
    assert cost.override
    assert cost.total == pytest.approx(1.0)
    # Before the override took effect, the table applies.
    early = compute_cost(
        model="gpt-4o-mini",
        input_tokens=1_000_000,
        output_tokens=0,
        at=datetime(2025, 1, 1, tzinfo=UTC),
        overrides=overrides,
    )
    assert early is not None
    assert not early.override
    assert early.total == pytest.approx(0.15)
    own = compute_cost(
        model="my-finetune-v3",
        input_tokens=1_000_000,
        output_tokens=0,
        cached_tokens=500_000,
        at=AT,
        overrides=overrides,
    )
    assert own is not None
    assert own.total == pytest.approx(0.5 * 0.5 + 0.5 * 0.1)


def test_regex_override_and_naive_datetime() -> None:
    overrides = [PriceOverride(pattern=r"re:acme-(small|large)-\d+", input=2.0, output=4.0)]
    cost = compute_cost(
        model="acme-large-2",
        input_tokens=500_000,
        output_tokens=500_000,
        at=datetime(2025, 1, 1),  # naive: read as UTC
        overrides=overrides,
    )
    assert cost is not None
    assert cost.total == pytest.approx(3.0)
    assert (
        compute_cost(
            model="acme-huge-2", input_tokens=1, output_tokens=1, at=AT, overrides=overrides
        )
        is None
    )


def test_missing_counts_are_zero_and_cached_never_exceeds_input() -> None:
    cost = compute_cost(
        model="gpt-4o-mini", input_tokens=None, output_tokens=None, cached_tokens=50, at=AT
    )
    assert cost is not None
    assert cost.total == 0.0
