"""Reads of the evaluators app. Every read takes the project first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.utils import timezone

from apps.accounts.models import Project
from apps.core.errors import NotFound
from apps.evaluators.models import EvalJob, Evaluator, JobStatus, JudgeCall, LLMConnection, Score


def connection_list(*, project: Project) -> QuerySet[LLMConnection]:
    return LLMConnection.objects.filter(project=project).order_by("name")


def connection_get(*, project: Project, connection_id: int | str) -> LLMConnection:
    try:
        pk = int(connection_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("connection: not found") from exc
    conn = LLMConnection.objects.filter(project=project, pk=pk).first()
    if conn is None:
        raise NotFound("connection: not found")
    return conn


def evaluator_list(*, project: Project) -> QuerySet[Evaluator]:
    return Evaluator.objects.filter(project=project).select_related("connection").order_by("name")


def evaluator_get(*, project: Project, evaluator_id: int | str) -> Evaluator:
    try:
        pk = int(evaluator_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("evaluator: not found") from exc
    evaluator = (
        Evaluator.objects.filter(project=project, pk=pk).select_related("connection").first()
    )
    if evaluator is None:
        raise NotFound("evaluator: not found")
    return evaluator


def scores_for_call(*, project: Project, call_id: uuid.UUID | str) -> list[dict[str, Any]]:
    rows = (
        Score.objects.filter(project=project, call_id=call_id)
        .select_related("evaluator", "judge_call")
        .order_by("evaluator__name")
    )
    return [
        {
            "evaluator": s.evaluator.name,
            "value": s.value,
            "label": s.label,
            "reason": s.reason,
            "passed": s.passed,
            "evaluator_version": s.evaluator_version,
            "cost_usd": s.cost_usd,
            "judge_call": None
            if s.judge_call is None
            else {
                "id": s.judge_call.pk,
                "model": s.judge_call.model,
                "latency_ms": s.judge_call.latency_ms,
                "input_tokens": s.judge_call.input_tokens,
                "output_tokens": s.judge_call.output_tokens,
                "cost_usd": s.judge_call.cost_usd,
            },
        }
        for s in rows
    ]


def register_call_detail_scores() -> None:
    """Adds ``scores`` to ``GET /api/v1/calls/<id>`` through traces' hook (traces is below)."""
    from apps.traces.apis import register_call_detail_section

    def public(project: Project, call_id: uuid.UUID) -> list[dict[str, Any]]:
        return [
            {k: row[k] for k in ("evaluator", "value", "label", "reason")}
            for row in scores_for_call(project=project, call_id=call_id)
        ]

    register_call_detail_section("scores", public)


@dataclass(frozen=True)
class EvaluatorSummary:
    evaluator: Evaluator
    spend_today_usd: float
    scored_24h: int
    mean_24h: float | None
    pass_rate_24h: float | None
    queued: int
    errors_24h: int


def evaluator_summaries(*, project: Project) -> list[EvaluatorSummary]:
    now = timezone.now()
    day = datetime(now.year, now.month, now.day, tzinfo=now.tzinfo)
    since = now - timedelta(hours=24)
    evaluators = list(evaluator_list(project=project))
    ids = [e.pk for e in evaluators]
    spend = dict(
        JudgeCall.objects.filter(evaluator_id__in=ids, created_at__gte=day)
        .values_list("evaluator_id")
        .annotate(total=Sum("cost_usd"))
        .values_list("evaluator_id", "total")
    )
    stats = {
        row["evaluator_id"]: row
        for row in Score.objects.filter(evaluator_id__in=ids, created_at__gte=since)
        .values("evaluator_id")
        .annotate(
            n=Count("id"),
            mean=Avg("value"),
            n_passed=Count("id", filter=Q(passed=True)),
            n_judged=Count("id", filter=Q(passed__isnull=False)),
        )
    }
    jobs = {
        row["evaluator_id"]: row
        for row in EvalJob.objects.filter(evaluator_id__in=ids)
        .values("evaluator_id")
        .annotate(
            queued=Count("id", filter=Q(status__in=[JobStatus.QUEUED, JobStatus.RETRY])),
            errors=Count("id", filter=Q(status=JobStatus.ERROR, updated_at__gte=since)),
        )
    }
    out = []
    for e in evaluators:
        s = stats.get(e.pk, {})
        j = jobs.get(e.pk, {})
        judged = s.get("n_judged") or 0
        out.append(
            EvaluatorSummary(
                evaluator=e,
                spend_today_usd=float(spend.get(e.pk) or 0.0),
                scored_24h=int(s.get("n") or 0),
                mean_24h=s.get("mean"),
                pass_rate_24h=(s["n_passed"] / judged) if judged else None,
                queued=int(j.get("queued") or 0),
                errors_24h=int(j.get("errors") or 0),
            )
        )
    return out


def judge_calls_recent(
    *, project: Project, evaluator: Evaluator, limit: int = 20
) -> list[JudgeCall]:
    return list(
        JudgeCall.objects.filter(project=project, evaluator=evaluator).order_by("-created_at")[
            :limit
        ]
    )


def jobs_recent_errors(*, project: Project, evaluator: Evaluator, limit: int = 10) -> list[EvalJob]:
    return list(
        EvalJob.objects.filter(
            project=project, evaluator=evaluator, status=JobStatus.ERROR
        ).order_by("-updated_at")[:limit]
    )


# --- the alert metric ----------------------------------------------------------------------------

ScoreAggregate = Literal["mean", "failure_rate"]
SCORE_METRIC_PREFIX = "score:"


@dataclass(frozen=True)
class ScoreMetric:
    value: float | None  # None: no score in the window
    count: int


def score_metric(
    *,
    project: Project | int,
    evaluator_name: str,
    start: datetime,
    end: datetime,
    aggregate: ScoreAggregate = "mean",
    model: str | None = None,
    release: str | None = None,
) -> ScoreMetric:
    """The ``score:<evaluator name>`` alert metric over the calls that started in
    [start, end): the mean value, or the share of failed verdicts (value < 0.5 or a failed
    pass/fail). ``model`` / ``release`` narrow it through the calls they score."""
    project_id = project if isinstance(project, int) else project.pk
    qs = Score.objects.filter(
        project_id=project_id,
        evaluator__name=evaluator_name,
        call_start_time__gte=start,
        call_start_time__lt=end,
    )
    if model or release:
        from apps.traces.models import Call

        calls = Call.objects.filter(
            project_id=project_id, start_time__gte=start, start_time__lt=end
        )
        if model:
            calls = calls.filter(model=model)
        if release:
            calls = calls.filter(release=release)
        qs = qs.filter(call_id__in=calls.values("id"))
    if aggregate == "mean":
        row = qs.filter(value__isnull=False).aggregate(n=Count("id"), mean=Avg("value"))
        return ScoreMetric(row["mean"], int(row["n"] or 0))
    row = qs.filter(passed__isnull=False).aggregate(
        n=Count("id"), failed=Count("id", filter=Q(passed=False))
    )
    n = int(row["n"] or 0)
    return ScoreMetric((row["failed"] / n) if n else None, n)


def score_series(
    *, project: Project, start: datetime, end: datetime, bucket: str = "hour"
) -> list[dict[str, Any]]:
    """Each evaluator's mean per time bucket (the overview's small chart)."""
    from django.db.models.functions import TruncDay, TruncHour

    trunc = TruncHour if bucket == "hour" else TruncDay
    return list(
        Score.objects.filter(project=project, call_start_time__gte=start, call_start_time__lt=end)
        .annotate(bucket=trunc("call_start_time"))
        .values("evaluator__name", "bucket")
        .annotate(mean=Avg("value"), n=Count("id"))
        .order_by("evaluator__name", "bucket")
    )
