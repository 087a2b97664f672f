"""Writes of the evaluators app: connections, evaluators, selection, the job runner, backfill.

The job runner's guarantees (see also :mod:`apps.evaluators.models`):

* **Never scored or paid twice.** Jobs are inserted under a unique deterministic key and claimed
  by a conditional UPDATE before the judge is called; a redelivered message claims nothing.
* **Spend caps.** Before each judge request the evaluator's and the project's spend of the UTC
  day (the sum of their judge calls' costs) is compared with the caps; at a cap the evaluator
  pauses until the next UTC midnight and nothing is sent. Concurrent workers can each have one
  request in flight when the cap is reached, so the overshoot is at most one request per worker.
* **Judges that pause themselves.** 401/403, an unknown model or a refused base URL pause the
  evaluator with the reason and drop its queued jobs.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.accounts.models import Project
from apps.core.crypto import decrypt_str, encrypt_str
from apps.core.errors import ApplicationError
from apps.evaluators import enqueue
from apps.evaluators.judges.base import JudgeRequest, ScoreSpec, client_for
from apps.evaluators.library import TEMPLATES
from apps.evaluators.local import SCORERS, LocalScorerError
from apps.evaluators.models import (
    EvalJob,
    Evaluator,
    EvaluatorKind,
    EvaluatorStatus,
    JobStatus,
    JudgeCall,
    JudgeCallStatus,
    LLMConnection,
    Provider,
    Score,
    ScoreType,
    job_key,
)
from apps.evaluators.render import CallView, check_template, render
from apps.lib import http
from apps.traces.models import Call

logger = logging.getLogger(__name__)

FILTER_KEYS = ("model", "release", "environment", "name", "tags", "kind")
DEFAULT_KINDS = ("llm",)
PREVIEW_MAX = 20
BACKFILL_MAX = 100_000
# What decides a score: changing one of these starts a new evaluator version.
VERSIONED_FIELDS = (
    "connection_id",
    "model",
    "instruction",
    "prompt_template",
    "scorer",
    "score_type",
    "labels",
)


def _allow_private() -> bool:
    return bool(getattr(settings, "DRIFTLINE_LLM_ALLOW_PRIVATE", False))


def _no_nul(value: Any, field: str) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ApplicationError(f"{field}: NUL characters are not allowed", field=field)


# --- connections ---------------------------------------------------------------------------------


def connection_create(
    *,
    project: Project,
    name: str,
    provider: str,
    base_url: str,
    api_key: str,
    default_model: str,
) -> LLMConnection:
    for field, value in (
        ("name", name),
        ("base_url", base_url),
        ("api_key", api_key),
        ("default_model", default_model),
    ):
        _no_nul(value, field)
        if not str(value).strip():
            raise ApplicationError(f"{field}: required", field=field)
    if provider not in Provider.values:
        raise ApplicationError(f"provider: one of {Provider.values}", field="provider")
    base_url = base_url.strip()
    try:
        http.resolve_target(base_url, allow_private=_allow_private())
    except http.UnsafeURLError as exc:
        hint = "" if _allow_private() else " (set DRIFTLINE_LLM_ALLOW_PRIVATE=1 for a local judge)"
        raise ApplicationError(f"base_url: {exc}{hint}", field="base_url") from exc
    except http.HttpRequestError as exc:
        raise ApplicationError(f"base_url: {exc}", field="base_url") from exc
    try:
        with transaction.atomic():
            return LLMConnection.objects.create(
                project=project,
                name=name.strip(),
                provider=provider,
                base_url=base_url,
                api_key_encrypted=encrypt_str(api_key),
                api_key_hint=f"…{api_key[-4:]}" if len(api_key) >= 12 else "…",
                default_model=default_model.strip(),
            )
    except IntegrityError as exc:
        raise ApplicationError("name: a connection with this name exists", field="name") from exc


def connection_delete(*, connection: LLMConnection) -> None:
    if Evaluator.objects.filter(connection=connection).exists():
        raise ApplicationError(
            "connection: used by evaluators; delete or change them first",
            field="connection",
            status_code=409,
        )
    connection.delete()


# --- evaluators ----------------------------------------------------------------------------------


def _clean_filters(raw: Any) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApplicationError("filters: must be an object", field="filters")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key not in FILTER_KEYS:
            raise ApplicationError(
                f"filters: unknown key {str(key)[:40]!r} (allowed: {', '.join(FILTER_KEYS)})",
                field="filters",
            )
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApplicationError(f"filters: {key} must be a string or a list", field="filters")
        values = [v.strip() for v in values if v.strip()]
        if len(values) > 50 or any(len(v) > 255 for v in values):
            raise ApplicationError(
                f"filters: {key} has too many or too long values", field="filters"
            )
        for v in values:
            _no_nul(v, "filters")
        if values:
            out[key] = values
    return out


def _validate(
    project: Project, data: dict[str, Any], *, current: Evaluator | None
) -> dict[str, Any]:
    """Complete and check evaluator fields; ``data`` holds only what the caller gave."""
    for field, value in data.items():
        _no_nul(value, field)
    merged: dict[str, Any] = {}
    if current is not None:
        for f in (
            "name",
            "kind",
            "connection",
            "model",
            "template",
            "instruction",
            "prompt_template",
            "scorer",
            "score_type",
            "labels",
            "filters",
            "sampling_rate",
            "daily_budget_usd",
        ):
            merged[f] = getattr(current, f)
    merged.update(data)
    template_key = data.get("template") or ""
    if template_key:
        template = TEMPLATES.get(template_key)
        if template is None:
            raise ApplicationError(
                f"template: unknown (one of {', '.join(TEMPLATES)})", field="template"
            )
        merged.setdefault("kind", EvaluatorKind.LLM_JUDGE)
        for f in ("instruction", "prompt_template", "score_type"):
            if not data.get(f):
                merged[f] = getattr(template, f)
        if not data.get("labels"):
            merged["labels"] = list(template.labels)
    name = str(merged.get("name") or "").strip()
    if not name or len(name) > 100:
        raise ApplicationError("name: required, at most 100 characters", field="name")
    merged["name"] = name
    kind = merged.get("kind")
    if kind not in EvaluatorKind.values:
        raise ApplicationError(f"kind: one of {EvaluatorKind.values}", field="kind")
    if kind == EvaluatorKind.LLM_JUDGE:
        conn = merged.get("connection")
        if conn is None:
            raise ApplicationError("connection: required for an llm_judge", field="connection")
        if conn.project_id != project.pk:
            raise ApplicationError("connection: not found", field="connection", status_code=404)
        if not str(merged.get("prompt_template") or "").strip():
            raise ApplicationError(
                "prompt_template: required for an llm_judge", field="prompt_template"
            )
        if not str(merged.get("instruction") or "").strip():
            raise ApplicationError("instruction: required for an llm_judge", field="instruction")
        problem = check_template(merged["prompt_template"])
        if problem:
            raise ApplicationError(f"prompt_template: {problem}", field="prompt_template")
        merged["scorer"] = ""
        merged["model"] = str(merged.get("model") or "").strip()
    else:
        scorer = SCORERS.get(str(merged.get("scorer") or ""))
        if scorer is None or scorer.kind != kind:
            names = [s.name for s in SCORERS.values() if s.kind == kind]
            raise ApplicationError(f"scorer: one of {names} for kind {kind}", field="scorer")
        merged["score_type"] = scorer.score_type
        merged["connection"] = None
        merged["model"] = ""
    score_type = merged.get("score_type")
    if score_type not in ScoreType.values:
        raise ApplicationError(f"score_type: one of {ScoreType.values}", field="score_type")
    labels = [str(label).strip() for label in merged.get("labels") or [] if str(label).strip()]
    if score_type == ScoreType.CATEGORICAL:
        if not 2 <= len(labels) <= 20 or any(len(label) > 64 for label in labels):
            raise ApplicationError(
                "labels: 2 to 20 labels of at most 64 characters", field="labels"
            )
        if len(set(labels)) != len(labels):
            raise ApplicationError("labels: must be distinct", field="labels")
        for label in labels:
            _no_nul(label, "labels")
    else:
        labels = []
    merged["labels"] = labels
    rate = merged.get("sampling_rate")
    rate = 1.0 if rate is None else rate
    if not isinstance(rate, int | float) or not 0.0 <= float(rate) <= 1.0:
        raise ApplicationError("sampling_rate: a number from 0 to 1", field="sampling_rate")
    merged["sampling_rate"] = float(rate)
    budget = merged.get("daily_budget_usd")
    if budget is not None and (not isinstance(budget, int | float) or budget < 0):
        raise ApplicationError("daily_budget_usd: a non-negative number", field="daily_budget_usd")
    merged["filters"] = _clean_filters(merged.get("filters"))
    merged["template"] = str(merged.get("template") or "")
    return merged


def evaluator_create(*, project: Project, **data: Any) -> Evaluator:
    fields = _validate(project, data, current=None)
    try:
        with transaction.atomic():
            evaluator = Evaluator.objects.create(project=project, **fields)
    except IntegrityError as exc:
        raise ApplicationError("name: an evaluator with this name exists", field="name") from exc
    _forget_active(project.pk)
    return evaluator


def evaluator_build(*, project: Project, **data: Any) -> Evaluator:
    """An unsaved evaluator (for a preview before saving)."""
    fields = _validate(project, data, current=None)
    return Evaluator(project=project, **fields)


def evaluator_update(*, evaluator: Evaluator, **data: Any) -> Evaluator:
    status = data.pop("status", None)
    fields = _validate(evaluator.project, data, current=evaluator) if data else {}
    before = {f: getattr(evaluator, f) for f in VERSIONED_FIELDS}
    for name, value in fields.items():
        setattr(evaluator, name, value)
    changed = [f for f in VERSIONED_FIELDS if getattr(evaluator, f) != before[f]]
    if changed:
        evaluator.version += 1
    if status is not None:
        if status not in EvaluatorStatus.values:
            raise ApplicationError(f"status: one of {EvaluatorStatus.values}", field="status")
        if status == EvaluatorStatus.ACTIVE:
            evaluator.paused_reason, evaluator.paused_until = "", None
        elif evaluator.status != EvaluatorStatus.PAUSED:
            evaluator.paused_reason, evaluator.paused_until = "paused by a user", None
        evaluator.status = status
    evaluator.updated_at = timezone.now()
    try:
        with transaction.atomic():
            evaluator.save()
    except IntegrityError as exc:
        raise ApplicationError("name: an evaluator with this name exists", field="name") from exc
    if changed or evaluator.status == EvaluatorStatus.PAUSED:
        jobs_drop_queued(evaluator_id=evaluator.pk, reason="evaluator changed or paused")
    _forget_active(evaluator.project_id)
    return evaluator


def evaluator_delete(*, evaluator: Evaluator) -> None:
    project_id = evaluator.project_id
    evaluator.delete()
    _forget_active(project_id)


def evaluator_pause(*, evaluator_id: int, reason: str, until: datetime | None = None) -> bool:
    """Pause (if active) with ``reason``; drop the queued jobs. True when this call paused it."""
    now = timezone.now()
    paused = Evaluator.objects.filter(pk=evaluator_id, status=EvaluatorStatus.ACTIVE).update(
        status=EvaluatorStatus.PAUSED,
        paused_reason=reason[:2000],
        paused_until=until,
        updated_at=now,
    )
    jobs_drop_queued(evaluator_id=evaluator_id, reason=f"evaluator paused: {reason}"[:2000])
    project_id = (
        Evaluator.objects.filter(pk=evaluator_id).values_list("project_id", flat=True).first()
    )
    if project_id is not None:
        _forget_active(project_id)
    if paused:
        logger.warning("evaluator %s paused: %s", evaluator_id, reason)
    return bool(paused)


def evaluators_resume_due(*, project_id: int, now: datetime | None = None) -> int:
    """Budget pauses end at the next UTC midnight (``paused_until``)."""
    now = now or timezone.now()
    return Evaluator.objects.filter(
        project_id=project_id, status=EvaluatorStatus.PAUSED, paused_until__lte=now
    ).update(status=EvaluatorStatus.ACTIVE, paused_reason="", paused_until=None, updated_at=now)


def jobs_drop_queued(*, evaluator_id: int, reason: str) -> int:
    return EvalJob.objects.filter(
        evaluator_id=evaluator_id, status__in=[JobStatus.QUEUED, JobStatus.RETRY]
    ).update(status=JobStatus.DROPPED, error=reason, updated_at=timezone.now())


# --- selection -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveEvaluator:
    id: int
    version: int
    sampling_rate: float
    filters: dict[str, frozenset[str]]


_ACTIVE_TTL_S = 10.0
_active_cache: dict[int, tuple[float, tuple[ActiveEvaluator, ...]]] = {}


def _forget_active(project_id: int) -> None:
    _active_cache.pop(project_id, None)


def active_evaluators(*, project_id: int) -> tuple[ActiveEvaluator, ...]:
    """The project's active evaluators, cached per process for a few seconds (selection runs
    for every processed batch; a change shows within ``_ACTIVE_TTL_S``)."""
    hit = _active_cache.get(project_id)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    evaluators_resume_due(project_id=project_id)
    rows = Evaluator.objects.filter(
        project_id=project_id, status=EvaluatorStatus.ACTIVE
    ).values_list("id", "version", "sampling_rate", "filters")
    active = tuple(
        ActiveEvaluator(
            id=pk,
            version=version,
            sampling_rate=rate,
            filters={k: frozenset(v) for k, v in (filters or {}).items()},
        )
        for pk, version, rate, filters in rows
    )
    _active_cache[project_id] = (now + _ACTIVE_TTL_S, active)
    return active


def sampled(*, evaluator_id: int, call_id: uuid.UUID, rate: float) -> bool:
    """Deterministic sampling: the same call is in or out for an evaluator on every replay."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(f"{evaluator_id}:{call_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def matches(evaluator: ActiveEvaluator, call: Any) -> bool:
    f = evaluator.filters
    if call.kind not in f.get("kind", DEFAULT_KINDS):
        return False
    for key in ("model", "release", "environment", "name"):
        allowed = f.get(key)
        if allowed is not None and getattr(call, key) not in allowed:
            return False
    tags = f.get("tags")
    return tags is None or not tags.isdisjoint(call.tags or ())


@dataclass(frozen=True, slots=True)
class _CallRow:
    id: uuid.UUID
    kind: str
    model: str
    release: str
    environment: str
    name: str
    tags: list[str]


def _array_literal(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of ids/numbers (no quoting needed): one bound parameter
    instead of one per element, which is most of the cost of a 500-id query."""
    return "{" + ",".join(str(v) for v in values) + "}"


def evaluations_select(*, project_id: int, call_ids: Sequence[str | uuid.UUID]) -> int:
    """Create and enqueue the jobs of these (processed) calls; returns how many were new."""
    evaluators = active_evaluators(project_id=project_id)
    if not evaluators or not call_ids:
        return 0
    ids = _array_literal(uuid.UUID(str(c)) for c in call_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, kind, model, release, environment, name, tags FROM traces_call "
            "WHERE project_id = %s AND id = ANY(%s::uuid[])",
            [project_id, ids],
        )
        calls = [_CallRow(*row) for row in cursor.fetchall()]
    wanted: list[tuple[int, int, uuid.UUID]] = []
    for call in calls:
        for ev in evaluators:
            if matches(ev, call) and sampled(
                evaluator_id=ev.id, call_id=call.id, rate=ev.sampling_rate
            ):
                wanted.append((ev.id, ev.version, call.id))
    return _jobs_insert_and_enqueue(project_id, wanted)


def _jobs_insert_and_enqueue(project_id: int, wanted: list[tuple[int, int, uuid.UUID]]) -> int:
    """Insert jobs under their deterministic keys; only the new ones are enqueued.

    The key is computed in SQL exactly as :func:`~apps.evaluators.models.job_key` does
    (sha256 of ``"<evaluator>:<version>:<call uuid>"``, hex)."""
    if not wanted:
        return 0
    now = timezone.now()
    sql = (
        "INSERT INTO evaluators_evaljob "
        "(key, project_id, evaluator_id, evaluator_version, call_id, status, attempts, error, "
        "created_at, updated_at) "
        "SELECT encode(sha256(convert_to(u.evaluator_id || ':' || u.version || ':' || u.call_id, "
        "'UTF8')), 'hex'), %s, u.evaluator_id, u.version, u.call_id, 'queued', 0, '', %s, %s "
        "FROM unnest(%s::bigint[], %s::int[], %s::uuid[]) AS u(evaluator_id, version, call_id) "
        "ON CONFLICT (key) DO NOTHING RETURNING id"
    )
    params: list[Any] = [
        project_id,
        now,
        now,
        _array_literal(w[0] for w in wanted),
        _array_literal(w[1] for w in wanted),
        _array_literal(w[2] for w in wanted),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    if ids:
        transaction.on_commit(lambda: enqueue.evaluate_jobs(job_ids=ids))
    return len(ids)


# --- running a job -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    status: str  # "skipped" | "done" | "error" | "dropped" | "retry"
    message: str = ""
    retry_after: float | None = None


def _next_utc_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day_start(now: datetime) -> datetime:
    day = now.astimezone(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def spend_today(*, evaluator_id: int | None = None, project_id: int | None = None) -> float:
    qs = JudgeCall.objects.filter(created_at__gte=_day_start(timezone.now()))
    if evaluator_id is not None:
        qs = qs.filter(evaluator_id=evaluator_id)
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    return float(qs.aggregate(total=Sum("cost_usd"))["total"] or 0.0)


def budget_exceeded(*, evaluator: Evaluator) -> str | None:
    """Why no judge request may be sent today, or None."""
    if evaluator.daily_budget_usd is not None:
        spent = spend_today(evaluator_id=evaluator.pk)
        if spent >= evaluator.daily_budget_usd:
            return (
                f"daily budget reached (${spent:.4f} of ${evaluator.daily_budget_usd:.4f}); "
                "resumes at 00:00 UTC"
            )
    cap = float(getattr(settings, "DRIFTLINE_EVALUATOR_PROJECT_DAILY_BUDGET_USD", 0.0) or 0.0)
    if cap > 0:
        spent = spend_today(project_id=evaluator.project_id)
        if spent >= cap:
            return (
                f"project daily evaluator budget reached (${spent:.4f} of ${cap:.4f}); "
                "resumes at 00:00 UTC"
            )
    return None


def _claim(job_id: int) -> EvalJob | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE evaluators_evaljob SET status = 'running', attempts = attempts + 1, "
            "updated_at = %s WHERE id = %s AND status IN ('queued', 'retry') RETURNING id",
            [timezone.now(), job_id],
        )
        claimed = cursor.fetchone()
    if claimed is None:
        return None
    return EvalJob.objects.get(pk=job_id)


def _finish(job: EvalJob, status: str, error: str = "") -> None:
    EvalJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=status, error=error[:2000], updated_at=timezone.now()
    )


def call_view(call: Call) -> CallView:
    project_id, trace_id, own_id = call.project_id, call.trace_id, call.id

    def retrieval_context() -> str:
        if not trace_id:
            return ""
        texts = (
            Call.objects.filter(project_id=project_id, trace_id=trace_id, kind="retrieval")
            .exclude(id=own_id)
            .order_by("start_time")
            .values_list("response", flat=True)[:20]
        )
        return "\n\n".join(t for t in texts if t)

    return CallView(
        prompt=call.prompt,
        messages=call.messages,
        response=call.response,
        metadata=call.metadata if isinstance(call.metadata, dict) else {},
        context_loader=retrieval_context,
    )


def judge_request(*, evaluator: Evaluator, view: CallView) -> tuple[JudgeRequest, tuple[str, ...]]:
    conn = evaluator.connection
    if conn is None:
        raise ApplicationError("connection: the evaluator has none", field="connection")
    rendered = render(evaluator.prompt_template, view)
    request = JudgeRequest(
        base_url=conn.base_url,
        api_key=decrypt_str(conn.api_key_encrypted),
        model=evaluator.model or conn.default_model,
        system=evaluator.instruction,
        user=rendered.text,
        spec=ScoreSpec(evaluator.score_type, tuple(evaluator.labels)),  # type: ignore[arg-type]
        timeout=float(getattr(settings, "DRIFTLINE_JUDGE_TIMEOUT_S", 30.0)),
        allow_private=_allow_private(),
    )
    return request, rendered.missing


def _cost(model: str, usage: Any) -> float | None:
    from apps.quality.pricing import compute_cost

    if usage.input_tokens is None and usage.output_tokens is None:
        return None
    breakdown = compute_cost(
        model=model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        at=timezone.now(),
    )
    return None if breakdown is None else breakdown.total


def evaluation_run(*, job_id: int, last_attempt: bool = False) -> RunOutcome:
    """Run one job: claim it, check the caps, ask the judge (or a local scorer), store the
    score. Safe to call any number of times for the same job."""
    job = _claim(job_id)
    if job is None:
        return RunOutcome("skipped", "job already claimed, finished or dropped")
    evaluator = Evaluator.objects.select_related("connection").filter(pk=job.evaluator_id).first()
    if evaluator is None:
        return RunOutcome("dropped", "evaluator deleted")
    evaluators_resume_due(project_id=evaluator.project_id)
    evaluator.refresh_from_db(fields=["status", "paused_reason", "paused_until", "version"])
    if evaluator.status != EvaluatorStatus.ACTIVE:
        _finish(job, JobStatus.DROPPED, f"evaluator paused: {evaluator.paused_reason}")
        return RunOutcome("dropped", evaluator.paused_reason)
    if evaluator.version != job.evaluator_version:
        _finish(job, JobStatus.DROPPED, "evaluator changed version")
        return RunOutcome("dropped", "evaluator changed version")
    call = Call.objects.filter(project_id=job.project_id, id=job.call_id).first()
    if call is None:
        _finish(job, JobStatus.ERROR, "call not found (deleted by retention?)")
        return RunOutcome("error", "call not found")
    view = call_view(call)
    if evaluator.kind != EvaluatorKind.LLM_JUDGE:
        return _run_local(job, evaluator, call, view)
    return _run_judge(job, evaluator, call, view, last_attempt=last_attempt)


def _run_local(job: EvalJob, evaluator: Evaluator, call: Call, view: CallView) -> RunOutcome:
    scorer = SCORERS.get(evaluator.scorer)
    if scorer is None:
        evaluator_pause(
            evaluator_id=evaluator.pk, reason=f"scorer {evaluator.scorer!r} is not registered"
        )
        _finish(job, JobStatus.ERROR, "scorer not registered")
        return RunOutcome("error", "scorer not registered")
    try:
        verdict = scorer.fn(view)
    except LocalScorerError as exc:
        _finish(job, JobStatus.ERROR, str(exc))
        return RunOutcome("error", str(exc))
    _score_save(
        evaluator=evaluator,
        call=call,
        version=job.evaluator_version,
        value=verdict.value,
        label=verdict.label,
        reason=verdict.reason,
        passed=verdict.passed,
        cost=0.0,
        judge_call=None,
    )
    _finish(job, JobStatus.DONE)
    return RunOutcome("done")


def _run_judge(
    job: EvalJob, evaluator: Evaluator, call: Call, view: CallView, *, last_attempt: bool
) -> RunOutcome:
    over = budget_exceeded(evaluator=evaluator)
    if over:
        evaluator_pause(
            evaluator_id=evaluator.pk, reason=over, until=_next_utc_midnight(timezone.now())
        )
        _finish(job, JobStatus.DROPPED, over)
        return RunOutcome("dropped", over)
    request, missing = judge_request(evaluator=evaluator, view=view)
    if missing:
        message = "empty variable(s): " + ", ".join(f"{{{{{m}}}}}" for m in missing)
        _finish(job, JobStatus.ERROR, message)
        return RunOutcome("error", message)
    outcome = client_for(evaluator.connection.provider).judge(request)  # type: ignore[union-attr]
    cost = _cost(request.model, outcome.usage)
    error = outcome.error
    judge_call = JudgeCall.objects.create(
        project_id=evaluator.project_id,
        evaluator=evaluator,
        job=job,
        provider=evaluator.connection.provider,  # type: ignore[union-attr]
        model=request.model,
        status=JudgeCallStatus.OK if error is None else JudgeCallStatus.ERROR,
        http_status=outcome.http_status,
        error="" if error is None else f"{error.kind}: {error.message}"[:2000],
        latency_ms=outcome.latency_ms,
        input_tokens=outcome.usage.input_tokens,
        output_tokens=outcome.usage.output_tokens,
        cached_tokens=outcome.usage.cached_tokens,
        cost_usd=cost,
        raw_answer=outcome.raw_answer,
    )
    if outcome.verdict is not None:
        v = outcome.verdict
        _score_save(
            evaluator=evaluator,
            call=call,
            version=job.evaluator_version,
            value=v.value,
            label=v.label,
            reason=v.reason,
            passed=v.passed,
            cost=cost,
            judge_call=judge_call,
        )
        _finish(job, JobStatus.DONE)
        result = RunOutcome("done")
    elif error is not None and error.pauses_evaluator:
        evaluator_pause(evaluator_id=evaluator.pk, reason=error.message)
        _finish(job, JobStatus.ERROR, error.message)
        result = RunOutcome("error", error.message)
    elif error is not None and error.kind == "transient" and not last_attempt:
        EvalJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.RETRY, error=error.message[:2000], updated_at=timezone.now()
        )
        result = RunOutcome("retry", error.message, retry_after=error.retry_after)
    else:
        message = error.message if error is not None else "no verdict"
        _finish(job, JobStatus.ERROR, message)
        result = RunOutcome("error", message)
    # Pause as soon as this request reached a cap: the next job sends nothing.
    if cost:
        over = budget_exceeded(evaluator=evaluator)
        if over:
            evaluator_pause(
                evaluator_id=evaluator.pk, reason=over, until=_next_utc_midnight(timezone.now())
            )
    return result


def evaluation_give_up(*, job_id: int, reason: str) -> None:
    EvalJob.objects.filter(pk=job_id, status__in=[JobStatus.RETRY, JobStatus.RUNNING]).update(
        status=JobStatus.ERROR, error=reason[:2000], updated_at=timezone.now()
    )


def _score_save(
    *,
    evaluator: Evaluator,
    call: Call,
    version: int,
    value: float | None,
    label: str,
    reason: str,
    passed: bool | None,
    cost: float | None,
    judge_call: JudgeCall | None,
) -> Score:
    score, _ = Score.objects.update_or_create(
        evaluator=evaluator,
        call_id=call.id,
        defaults={
            "project_id": evaluator.project_id,
            "call_start_time": call.start_time,
            "value": value,
            "label": label,
            "reason": reason,
            "passed": passed,
            "cost_usd": cost,
            "judge_call": judge_call,
            "evaluator_version": version,
            "created_at": timezone.now(),
        },
    )
    return score


# --- preview and backfill ------------------------------------------------------------------------


def matching_calls(*, evaluator: Evaluator) -> QuerySet[Call]:
    f = evaluator.filters or {}
    qs = Call.objects.filter(
        project_id=evaluator.project_id, kind__in=f.get("kind", list(DEFAULT_KINDS))
    )
    for key in ("model", "release", "environment", "name"):
        if key in f:
            qs = qs.filter(**{f"{key}__in": f[key]})
    if "tags" in f:
        qs = qs.filter(tags__overlap=f["tags"])
    return qs


def evaluator_preview(*, evaluator: Evaluator, limit: int = 5) -> list[dict[str, Any]]:
    """Run ``evaluator`` (saved or not) on the last ``limit`` matching calls; nothing is saved.

    Sampling is ignored and paused evaluators preview too (that is how a fix is checked)."""
    limit = max(1, min(int(limit), PREVIEW_MAX))
    calls = list(matching_calls(evaluator=evaluator).order_by("-start_time")[:limit])
    rows: list[dict[str, Any]] = []
    for call in calls:
        view = call_view(call)
        row: dict[str, Any] = {
            "call_id": str(call.id),
            "prompt": view.prompt_text()[:300],
            "response": call.response[:300],
            "value": None,
            "label": "",
            "reason": "",
            "error": "",
            "missing": [],
            "cost_usd": None,
            "latency_ms": None,
        }
        if evaluator.kind == EvaluatorKind.LLM_JUDGE:
            request, missing = judge_request(evaluator=evaluator, view=view)
            row["missing"] = list(missing)
            if missing:
                row["error"] = "empty variable(s): " + ", ".join(f"{{{{{m}}}}}" for m in missing)
                rows.append(row)
                continue
            outcome = client_for(evaluator.connection.provider).judge(request)  # type: ignore[union-attr]
            row["cost_usd"] = _cost(request.model, outcome.usage)
            row["latency_ms"] = round(outcome.latency_ms, 1)
            if outcome.verdict is not None:
                v = outcome.verdict
                row.update(value=v.value, label=v.label, reason=v.reason)
            elif outcome.error is not None:
                row["error"] = f"{outcome.error.kind}: {outcome.error.message}"
                if outcome.error.pauses_evaluator:
                    rows.append(row)
                    break  # the next call would fail the same way
        else:
            scorer = SCORERS[evaluator.scorer]
            try:
                lv = scorer.fn(view)
                row.update(value=lv.value, label=lv.label, reason=lv.reason)
            except LocalScorerError as exc:
                row["error"] = str(exc)
        rows.append(row)
    return rows


def evaluator_backfill(
    *, evaluator: Evaluator, start: datetime, end: datetime, limit: int = 10_000
) -> int:
    """Queue jobs for the matching calls in [start, end) (sampling applies; already scored
    calls of this version are skipped by the job key). Returns how many were queued."""
    if end <= start:
        raise ApplicationError("end: must be after start", field="end")
    if evaluator.status != EvaluatorStatus.ACTIVE:
        raise ApplicationError(
            f"status: the evaluator is paused ({evaluator.paused_reason})",
            field="status",
            status_code=409,
        )
    if evaluator.kind == EvaluatorKind.LLM_JUDGE:
        over = budget_exceeded(evaluator=evaluator)
        if over:
            raise ApplicationError(
                f"daily_budget_usd: {over}", field="daily_budget_usd", status_code=409
            )
    limit = max(1, min(int(limit), BACKFILL_MAX))
    ids = backfill_call_ids(evaluator=evaluator, start=start, end=end, limit=limit)
    queued = 0
    for chunk_start in range(0, len(ids), 1000):
        chunk = ids[chunk_start : chunk_start + 1000]
        with transaction.atomic():
            queued += _jobs_insert_and_enqueue(
                evaluator.project_id, [(evaluator.pk, evaluator.version, c) for c in chunk]
            )
    return queued


def backfill_call_ids(
    *, evaluator: Evaluator, start: datetime, end: datetime, limit: int
) -> list[uuid.UUID]:
    calls = matching_calls(evaluator=evaluator).filter(start_time__gte=start, start_time__lt=end)
    ids = calls.order_by("start_time").values_list("id", flat=True)[:limit]
    return [
        c
        for c in ids
        if sampled(evaluator_id=evaluator.pk, call_id=c, rate=evaluator.sampling_rate)
    ]


def jobs_create(*, evaluator: Evaluator, call_ids: Iterable[uuid.UUID]) -> list[int]:
    """Insert jobs without enqueueing them (the management command runs them inline); returns
    the ids of the new ones."""
    keys = {
        job_key(evaluator_id=evaluator.pk, version=evaluator.version, call_id=c): c
        for c in call_ids
    }
    existing = set(EvalJob.objects.filter(key__in=list(keys)).values_list("key", flat=True))
    new = [
        EvalJob(
            key=k,
            project_id=evaluator.project_id,
            evaluator=evaluator,
            evaluator_version=evaluator.version,
            call_id=c,
        )
        for k, c in keys.items()
        if k not in existing
    ]
    EvalJob.objects.bulk_create(new, ignore_conflicts=True)
    return list(
        EvalJob.objects.filter(key__in=[j.key for j in new], status=JobStatus.QUEUED).values_list(
            "id", flat=True
        )
    )
