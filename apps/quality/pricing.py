"""Cost of a call from a bundled price table (``apps/quality/data/prices.json``).

Prices are USD per million tokens per model-name pattern, with the date each price took effect.
:func:`compute_cost` picks the most specific pattern that matches the model (most literal
characters; an exact name beats any glob), then that pattern's entry in effect at the call's
start time; a project's :class:`PriceOverride` entries win over the table.

Token conventions differ by provider, and the table records them per provider (``conventions``):

* OpenAI (and DeepSeek, Gemini, OpenAI-compatible hosts): ``input_tokens`` *includes* the cached
  tokens (``usage.prompt_tokens_details.cached_tokens``), so the uncached part is
  ``input_tokens - cached_tokens``.
* Anthropic: ``input_tokens`` *excludes* cache reads (``cache_read_input_tokens``) and cache writes
  (``cache_creation_input_tokens``); those are added on top, at their own prices.
* Reasoning: OpenAI and Anthropic count reasoning/thinking tokens inside ``output_tokens``; Gemini
  reports ``thoughtsTokenCount`` apart from ``candidatesTokenCount``. Reasoning tokens are billed
  at the entry's ``reasoning`` price, or the output price when it has none (every current
  provider), and never twice.

Callers pass the counts as the provider reported them; the ingest mapping must not re-add or
subtract cached tokens itself.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).resolve().parent / "data" / "prices.json"
_PER_TOKEN = 1e-6  # prices are per million tokens
_DEFAULT_CONVENTION = {"input_includes_cached": True, "output_includes_reasoning": True}


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A project's own price for models matching ``pattern`` (glob, or ``re:`` + regex).

    Overrides win over the bundled table whenever one matches and is in effect; among several,
    the most specific pattern wins. ``None`` prices fall back as in the table: cached input and
    cache writes at the input price, reasoning at the output price.
    """

    pattern: str
    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None
    effective_from: date | None = None
    input_includes_cached: bool = True
    output_includes_reasoning: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One row of the price table (or an override), prices in USD per million tokens."""

    pattern: str
    provider: str
    effective_from: date
    input: float
    output: float
    cached_input: float | None
    cache_write: float | None
    reasoning: float | None
    input_includes_cached: bool
    output_includes_reasoning: bool
    source: str
    note: str = ""
    override: bool = False


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Cost of one call in USD, by token class, with the price entry that was used."""

    model: str
    pattern: str
    provider: str
    effective_from: date
    input_cost: float
    cached_input_cost: float
    cache_write_cost: float
    output_cost: float
    reasoning_cost: float
    total: float
    source: str
    override: bool
    currency: str = "USD"


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key of a pattern: exact names first, then by number of literal characters."""
    if pattern.startswith("re:"):
        body = pattern[3:]
        return (0, len(re.sub(r"\\.|[.*+?^$()\[\]{}|]", "", body)))
    literal = len(re.sub(r"[*?\[\]]", "", pattern))
    exact = not any(char in pattern for char in "*?[")
    return (1 if exact else 0, literal)


def pattern_matches(pattern: str, model: str) -> bool:
    """Whether ``model`` (lower-cased) matches ``pattern`` (glob, or ``re:`` regex, full match)."""
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], model, re.IGNORECASE) is not None
    return fnmatch.fnmatchcase(model, pattern.lower())


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@cache
def price_table(path: Path = PRICES_PATH) -> tuple[PriceEntry, ...]:
    """The bundled table, parsed once per process."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    conventions: dict[str, dict[str, Any]] = raw.get("conventions", {})
    entries = []
    for row in raw["models"]:
        convention = {**_DEFAULT_CONVENTION, **conventions.get(row.get("provider", ""), {})}
        entries.append(
            PriceEntry(
                pattern=str(row["pattern"]),
                provider=str(row.get("provider", "")),
                effective_from=_date(row["effective_from"]),
                input=float(row["input"]),
                output=float(row["output"]),
                cached_input=_optional_float(row.get("cached_input")),
                cache_write=_optional_float(row.get("cache_write")),
                reasoning=_optional_float(row.get("reasoning")),
                input_includes_cached=bool(convention["input_includes_cached"]),
                output_includes_reasoning=bool(convention["output_includes_reasoning"]),
                source=str(row.get("source", "")),
                note=str(row.get("note", "")),
            )
        )
    return tuple(entries)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _from_override(override: PriceOverride) -> PriceEntry:
    return PriceEntry(
        pattern=override.pattern,
        provider="override",
        effective_from=override.effective_from or date.min,
        input=override.input,
        output=override.output,
        cached_input=override.cached_input,
        cache_write=override.cache_write,
        reasoning=override.reasoning,
        input_includes_cached=override.input_includes_cached,
        output_includes_reasoning=override.output_includes_reasoning,
        source="project override",
        note=override.note,
        override=True,
    )


def _candidates(model: str) -> list[str]:
    # "openai/gpt-4o", "models/gemini-1.5-pro" and "azure/gpt-4o" name the same priced model.
    name = model.strip().lower()
    names = [name]
    if "/" in name:
        names.append(name.rsplit("/", 1)[1])
    return names


def _pick(entries: Iterable[PriceEntry], model: str, day: date) -> PriceEntry | None:
    names = _candidates(model)
    matching = [e for e in entries if any(pattern_matches(e.pattern, n) for n in names)]
    if not matching:
        return None
    # Most specific pattern first; within it, the latest price in effect on ``day``. A call
    # older than every entry of that pattern is priced with the pattern's earliest entry.
    best = max(specificity(e.pattern) for e in matching)
    same = sorted(
        (e for e in matching if specificity(e.pattern) == best),
        key=lambda e: (e.pattern, e.effective_from),
    )
    by_pattern: dict[str, list[PriceEntry]] = {}
    for entry in same:
        by_pattern.setdefault(entry.pattern, []).append(entry)
    chosen: PriceEntry | None = None
    for rows in by_pattern.values():
        in_effect = [e for e in rows if e.effective_from <= day] or rows[:1]
        candidate = in_effect[-1]
        if chosen is None or candidate.effective_from > chosen.effective_from:
            chosen = candidate
    return chosen


def find_price(
    model: str, at: datetime, overrides: Sequence[PriceOverride] = ()
) -> PriceEntry | None:
    """The price entry for ``model`` at ``at``: a matching override in effect, else the table."""
    day = (at.astimezone(UTC) if at.tzinfo else at).date()
    active = [_from_override(o) for o in overrides if (o.effective_from or date.min) <= day]
    return _pick(active, model, day) or _pick(price_table(), model, day)


def compute_cost(
    *,
    model: str,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    at: datetime,
    overrides: Sequence[PriceOverride] = (),
    cache_write_tokens: int | None = None,
) -> CostBreakdown | None:
    """Cost of one call in USD, or None when the model has no price.

    Token counts are as the provider reported them (see the module docstring for which counts
    include which); ``cache_write_tokens`` is Anthropic's ``cache_creation_input_tokens``.
    Missing counts are zero.
    """
    if not model:
        return None
    price = find_price(model, at, overrides)
    if price is None:
        return None
    n_input = max(int(input_tokens or 0), 0)
    n_output = max(int(output_tokens or 0), 0)
    n_cached = max(int(cached_tokens or 0), 0)
    n_reasoning = max(int(reasoning_tokens or 0), 0)
    n_write = max(int(cache_write_tokens or 0), 0)
    if price.input_includes_cached:
        n_cached = min(n_cached, n_input)
        n_uncached = n_input - n_cached
    else:
        n_uncached = n_input
    if price.output_includes_reasoning:
        n_reasoning = min(n_reasoning, n_output)
        n_visible = n_output - n_reasoning
    else:
        n_visible = n_output
    input_cost = n_uncached * price.input * _PER_TOKEN
    cached_cost = n_cached * _or(price.cached_input, price.input) * _PER_TOKEN
    write_cost = n_write * _or(price.cache_write, price.input) * _PER_TOKEN
    output_cost = n_visible * price.output * _PER_TOKEN
    reasoning_cost = n_reasoning * _or(price.reasoning, price.output) * _PER_TOKEN
    total = input_cost + cached_cost + write_cost + output_cost + reasoning_cost
    return CostBreakdown(
        model=model,
        pattern=price.pattern,
        provider=price.provider,
        effective_from=price.effective_from,
        input_cost=input_cost,
        cached_input_cost=cached_cost,
        cache_write_cost=write_cost,
        output_cost=output_cost,
        reasoning_cost=reasoning_cost,
        total=total,
        source=price.source,
        override=price.override,
    )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
