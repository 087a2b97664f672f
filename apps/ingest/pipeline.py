"""The follow-up of stored calls: cost, quality/safety signals, the embedding decision.

Runs in the ``ingest`` queue. Every step is cheap (well under a millisecond a call); the
expensive part, embedding, is only decided here and done by the ``embed`` queue.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from celery import current_app
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.embeddings.budget import embedding_decide
from apps.queues import EMBED, EVALUATE
from apps.traces.models import Call, EmbedStatus, Feedback, is_llm
from apps.traces.rollups import rollup_add_calls, rollup_add_feedback

logger = logging.getLogger(__name__)

EMBED_TASK = "apps.embeddings.tasks.embed_calls"
EMBED_CHUNK = 64
# Evaluators pick their jobs on their own queue (one message per batch, by name).
EVALUATE_SELECT_TASK = "apps.evaluators.tasks.select_calls"


def _score(call: Call, overrides: Any) -> dict[str, Any]:
    """Cost (quality's rule: a positive client cost wins) and the signals of one call."""
    from apps.quality.services import call_cost_decide, call_signals

    cost, source = call_cost_decide(call=call, overrides=overrides)
    return {"cost_usd": cost, "cost_source": source, "signals": call_signals(call=call)}


_FIELDS = (
    "project_id",
    "id",
    "model",
    "prompt",
    "response",
    "messages",
    "metadata",
    "status",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_source",
    "start_time",
    "kind",
    "error",
)


def run_follow_up(*, project_id: int, call_ids: list[str]) -> int:
    """Never dies on one row: a call that cannot be loaded, scored or written is marked as
    processed with ``signals.follow_up_error`` (so the sweeper stops re-queuing it) and the rest
    of the chunk goes on."""
    from apps.quality.services import price_overrides_for_project

    poison = _outside_window(project_id, call_ids)
    calls = _load(project_id, [i for i in call_ids if i not in poison], poison)
    if not calls:
        _mark_poison(project_id, poison)
        return 0
    overrides = price_overrides_for_project(project_id=project_id)
    with_feedback = set(
        Feedback.objects.filter(
            project_id=project_id, call_id__in=[c.id for c in calls]
        ).values_list("call_id", flat=True)
    )
    rows = []
    for call in calls:
        try:
            rows.append(_row(project_id, call, overrides, with_feedback))
        except Exception as exc:  # one bad row must not cost the chunk; its reason is kept
            logger.exception("follow-up of call %s failed; marked and skipped", call.id)
            poison[str(call.id)] = f"{type(exc).__name__}: {exc}"
    updated = _apply_all(project_id, rows, poison)
    _mark_poison(project_id, poison)
    to_embed = [r[0] for r in rows if r[0] in updated and r[-1] == EmbedStatus.PENDING]
    embed_enqueue(project_id=project_id, call_ids=to_embed)
    if updated:
        current_app.send_task(
            EVALUATE_SELECT_TASK,
            args=[project_id, [str(i) for i in updated]],
            queue=EVALUATE,
            expires=6 * 3600,
        )
    return len(updated)


def _row(project_id: int, call: Call, overrides: Any, with_feedback: set[Any]) -> tuple[Any, ...]:
    scored = _score(call, overrides)
    signals = scored["signals"]
    # Only LLM calls are embedded (drift, similar calls): other spans are trace context.
    has_text = is_llm(call.kind) and bool(call.prompt or call.messages)
    embed = embedding_decide(
        project_id=project_id,
        has_text=has_text,
        must=call.status == "error" or bool(signals.get("flagged")) or call.id in with_feedback,
    )
    return (
        call.id,
        scored["cost_usd"],
        scored["cost_source"],
        signals.get("refusal"),
        signals.get("injection"),
        signals.get("toxicity"),
        json.dumps(list(signals.get("pii") or [])),
        bool(signals.get("flagged")),
        json.dumps(signals, default=str),
        int(embed),
    )


def _outside_window(project_id: int, call_ids: list[str]) -> dict[str, str]:
    """Calls stored before the edge checked timestamps (year 10000, 1 BC...): never processed,
    found without loading them (loading is what used to fail)."""
    from apps.ingest.sanitize import EARLIEST, FUTURE_SLACK

    latest = timezone.now() + 2 * FUTURE_SLACK
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text FROM traces_call WHERE project_id = %s AND id = ANY(%s::uuid[]) "
            "AND processed_at IS NULL AND (start_time < %s OR start_time > %s)",
            [project_id, call_ids, EARLIEST, latest],
        )
        return {
            row[0]: "start_time: outside 2000-01-01 .. now + 1 day" for row in cursor.fetchall()
        }


def _load(project_id: int, call_ids: list[str], poison: dict[str, str]) -> list[Call]:
    base = Call.objects.filter(project_id=project_id, processed_at__isnull=True)
    try:
        with transaction.atomic():
            return list(base.filter(id__in=call_ids).only(*_FIELDS))
    except DatabaseError:
        logger.warning("follow-up chunk of project %s did not load; row by row", project_id)
    calls: list[Call] = []
    for call_id in call_ids:
        try:
            with transaction.atomic():
                calls.extend(base.filter(id=call_id).only(*_FIELDS))
        except DatabaseError as exc:
            poison[str(call_id)] = f"{type(exc).__name__}: {exc}"
    return calls


def _apply_all(
    project_id: int, rows: list[tuple[Any, ...]], poison: dict[str, str]
) -> set[uuid.UUID]:
    # The update and the rollup mark commit together: a processed call's minute is always
    # marked for a recompute (the reconcile job covers only a worker killed before commit).
    if not rows:
        return set()
    try:
        with transaction.atomic():
            updated = _apply(project_id, rows)
            rollup_add_calls(project_id=project_id, call_ids=updated)
        return updated
    except DatabaseError:
        logger.warning("follow-up update of project %s failed; row by row", project_id)
    updated = set()
    for row in rows:
        try:
            with transaction.atomic():
                done = _apply(project_id, [row])
                rollup_add_calls(project_id=project_id, call_ids=done)
            updated |= done
        except DatabaseError as exc:
            poison[str(row[0])] = f"{type(exc).__name__}: {exc}"
    return updated


def _mark_poison(project_id: int, poison: dict[str, str]) -> None:
    if not poison:
        return
    logger.warning("follow-up skipped %d call(s) of project %s", len(poison), project_id)
    ids, reasons = list(poison), [reason[:500] for reason in poison.values()]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE traces_call AS c SET processed_at = now(), embed_status = %s, "
            "signals = jsonb_build_object('follow_up_error', u.reason) "
            "FROM unnest(%s::uuid[], %s::text[]) AS u(id, reason) "
            "WHERE c.project_id = %s AND c.id = u.id AND c.processed_at IS NULL",
            [int(EmbedStatus.NOT_APPLICABLE), ids, reasons, project_id],
        )


def _apply(project_id: int, rows: list[tuple[Any, ...]]) -> set[uuid.UUID]:
    columns = (
        "id, cost_usd, cost_source, refusal, injection, toxicity, pii, flagged, signals, "
        "embed_status"
    )
    # Identifiers are constants of this module; every value is a bound parameter.
    sql = (
        "UPDATE traces_call AS c SET"  # noqa: S608
        " cost_usd = u.cost_usd, cost_source = u.cost_source, "
        "refusal = u.refusal, injection = u.injection, toxicity = u.toxicity, "
        "pii = ARRAY(SELECT jsonb_array_elements_text(u.pii)), flagged = u.flagged, "
        "signals = u.signals, embed_status = u.embed_status, processed_at = %s "
        "FROM unnest(%s::uuid[], %s::float8[], %s::text[], %s::bool[], %s::float8[], %s::float8[], "
        f"%s::jsonb[], %s::bool[], %s::jsonb[], %s::smallint[]) AS u({columns}) "
        "WHERE c.project_id = %s AND c.id = u.id AND c.processed_at IS NULL RETURNING c.id"
    )
    params: list[Any] = [
        timezone.now(),
        *[list(col) for col in zip(*rows, strict=True)],
        project_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def embed_enqueue(*, project_id: int, call_ids: list[uuid.UUID]) -> None:
    # By name: the embed worker may run elsewhere with the model loaded; this process need not
    # import it.
    for start in range(0, len(call_ids), EMBED_CHUNK):
        chunk = [str(i) for i in call_ids[start : start + EMBED_CHUNK]]
        current_app.send_task(EMBED_TASK, args=[project_id, chunk], queue=EMBED, expires=6 * 3600)


def run_feedback_follow_up(*, project_id: int, call_ids: list[str]) -> int:
    """A call that gets feedback is always embedded, even when the budget had skipped it; its
    minute's feedback counts are recomputed by the next rollup flush."""
    rollup_add_feedback(project_id=project_id, call_ids=call_ids)
    ids = list(
        Call.objects.filter(
            project_id=project_id, id__in=call_ids, embed_status=EmbedStatus.SKIPPED
        ).values_list("id", flat=True)
    )
    if ids:
        Call.objects.filter(
            project_id=project_id, id__in=ids, embed_status=EmbedStatus.SKIPPED
        ).update(embed_status=EmbedStatus.PENDING)
        embed_enqueue(project_id=project_id, call_ids=ids)
    return len(ids)
