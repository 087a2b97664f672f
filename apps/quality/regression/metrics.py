"""The metric catalogue and the types of a comparison: what each metric is, its bad direction
and minimum practical effect, the per-call samples, and the result rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from apps.quality.regression.stats import Alternative, FloatArray, Worse

Kind = Literal["rate", "continuous"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How to test one metric.

    ``min_effect`` is the smallest change that counts: an absolute difference for rates (0.01 =
    one percentage point), a relative change for continuous metrics (0.05 = 5%).
    """

    name: str
    kind: Kind
    worse: Worse = "higher"
    min_effect: float = 0.0
    label: str = ""
    unit: str = ""
    quantile: float | None = None

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")


DEFAULT_METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("negative_feedback", "rate", "higher", 0.01, "negative feedback rate"),
        MetricSpec("refusal", "rate", "higher", 0.01, "refusal rate"),
        MetricSpec("error", "rate", "higher", 0.005, "error rate"),
        MetricSpec("flagged", "rate", "higher", 0.005, "safety flag rate"),
        MetricSpec("injection", "rate", "higher", 0.005, "injection rate"),
        MetricSpec("pii", "rate", "higher", 0.005, "PII rate"),
        MetricSpec("empty", "rate", "higher", 0.005, "empty answer rate"),
        MetricSpec("truncated", "rate", "higher", 0.01, "truncation rate"),
        MetricSpec("json_invalid", "rate", "higher", 0.01, "invalid JSON rate"),
        MetricSpec("latency_ms", "continuous", "higher", 0.05, "latency", "ms", 0.95),
        MetricSpec("ttft_ms", "continuous", "higher", 0.05, "time to first token", "ms", 0.95),
        MetricSpec("cost_usd", "continuous", "higher", 0.05, "cost per call", "USD", 0.95),
        MetricSpec("input_tokens", "continuous", "higher", 0.05, "input tokens"),
        MetricSpec("output_tokens", "continuous", "higher", 0.05, "output tokens"),
        MetricSpec("total_tokens", "continuous", "higher", 0.05, "total tokens"),
        MetricSpec("response_chars", "continuous", "either", 0.1, "response length", "chars"),
    )
}


@dataclass(frozen=True)
class MetricSample:
    """One window (or release) of calls, columnar.

    ``values`` maps a metric name to one value per call: 0/1 for rates, a number for continuous
    metrics, NaN where the call has no value (no feedback yet, no cost). ``ids`` (optional) names
    the calls, for example links; ``strata`` (optional) is the intent label of each call.
    """

    values: Mapping[str, npt.ArrayLike]
    ids: Sequence[str] | None = None
    strata: npt.ArrayLike | None = None
    label: str = ""

    def __post_init__(self) -> None:
        lengths = {name: len(np.asarray(v, dtype=float)) for name, v in self.values.items()}
        if self.ids is not None:
            lengths["ids"] = len(self.ids)
        if self.strata is not None:
            lengths["strata"] = len(np.asarray(self.strata))
        if len(set(lengths.values())) > 1:
            raise ValueError(f"MetricSample columns differ in length: {lengths}")

    @classmethod
    def from_records(
        cls,
        records: Sequence[Mapping[str, Any]],
        metrics: Sequence[str],
        *,
        id_key: str | None = "id",
        stratum_key: str | None = None,
        label: str = "",
    ) -> MetricSample:
        """Build from row dicts (e.g. selector ``.values()``); None becomes NaN, bools 0/1."""
        values = {
            name: np.array([as_number(row.get(name)) for row in records], dtype=float)
            for name in metrics
        }
        ids = [str(row.get(id_key)) for row in records] if id_key else None
        strata = None
        if stratum_key:
            strata = np.array([str(row.get(stratum_key)) for row in records], dtype=object)
        return cls(values=values, ids=ids, strata=strata, label=label)

    def column(self, name: str) -> FloatArray:
        return np.asarray(self.values[name], dtype=float)

    def size(self) -> int:
        for column in self.values.values():
            return len(np.asarray(column, dtype=float))
        return 0


def as_number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


Verdict = Literal[
    "regressed",
    "improved",
    "changed",
    "no change",
    "worse",
    "better",
    "no significant difference",
    "insufficient data",
]


@dataclass(frozen=True)
class RegressionResult:
    """The comparison of one metric (or one quantile of it) between two samples.

    ``effect`` is ``current - baseline`` for rates (``effect_kind="difference"``) and
    ``current / baseline`` for continuous metrics (``"ratio"``), with a ``1 - alpha`` confidence
    interval. ``score`` is ``-log10(p_value)`` (0 when untested).
    """

    metric: str
    kind: Literal["rate", "continuous", "quantile"]
    test: str
    n_baseline: int
    n_current: int
    baseline_value: float | None
    current_value: float | None
    effect: float | None
    effect_kind: Literal["difference", "ratio"]
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    q_value: float | None
    score: float
    regressed: bool
    improved: bool
    significant: bool
    verdict: Verdict
    stratified: bool
    strata_compared: int
    coverage: float
    summary: str
    example_ids: tuple[str, ...] = ()
    worse: Worse = "higher"
    min_effect: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    alpha: float
    alternative: Alternative
    stratify: bool
    min_n_rate: int
    min_n_continuous: int
    min_n_quantile: int
    n_boot: int
    seed: int
    max_examples: int
    mode: Literal["window", "release"]
