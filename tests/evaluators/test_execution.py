"""The job runner on the real database against a fake provider: exactly-once, retries, pauses,
spend caps, and judge calls kept out of the app's own calls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.core.crypto import decrypt_str
from apps.core.errors import ApplicationError
from apps.evaluators import services, tasks
from apps.evaluators.models import (
    EvalJob,
    EvaluatorStatus,
    JobStatus,
    JudgeCall,
    LLMConnection,
    Score,
    job_key,
)
from apps.traces.models import Call
from tests.evaluators.conftest import anthropic_connection, judge, make_call, openai_connection
from tests.evaluators.fakes import FakeLLM, anthropic_answer, error_answer, openai_answer

pytestmark = pytest.mark.django_db


def _jobs(evaluator: Any, calls: list[Call]) -> list[int]:
    services._jobs_insert_and_enqueue(
        evaluator.project_id, [(evaluator.pk, evaluator.version, c.id) for c in calls]
    )
    return list(
        EvalJob.objects.filter(evaluator=evaluator).order_by("id").values_list("id", flat=True)
    )


def test_connection_key_encrypted_and_private_url_refused(
    project: Any, llm: FakeLLM, settings: Any
) -> None:
    settings.DRIFTLINE_LLM_ALLOW_PRIVATE = False
    with pytest.raises(ApplicationError) as refused:
        openai_connection(project, llm)
    assert refused.value.field == "base_url"
    assert "DRIFTLINE_LLM_ALLOW_PRIVATE" in refused.value.message
    settings.DRIFTLINE_LLM_ALLOW_PRIVATE = True
    conn = openai_connection(project, llm, api_key="sk-live-abcdefghijklmnop")
    stored = LLMConnection.objects.get(pk=conn.pk)
    assert "sk-live" not in stored.api_key_encrypted
    assert decrypt_str(stored.api_key_encrypted) == "sk-live-abcdefghijklmnop"
    assert stored.api_key_hint == "…mnop"


def test_score_recorded_with_cost_and_judge_call(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, openai_connection(project, llm))
    call = make_call(project, metadata={"reference": "x"})
    [job_id] = _jobs(ev, [call])
    llm.answer(
        openai_answer(
            {"reason": "Answers the question.", "score": 0.8},
            prompt_tokens=1000,
            completion_tokens=100,
        )
    )
    assert services.evaluation_run(job_id=job_id).status == "done"
    score = Score.objects.get(evaluator=ev, call_id=call.id)
    assert (score.value, score.reason, score.passed, score.evaluator_version) == (
        0.8,
        "Answers the question.",
        True,
        1,
    )
    jc = score.judge_call
    assert jc is not None
    assert (jc.input_tokens, jc.output_tokens) == (1000, 100)
    # gpt-4o-mini: $0.15 / M input, $0.60 / M output.
    assert jc.cost_usd == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)
    assert score.cost_usd == jc.cost_usd
    assert '"score": 0.8' in jc.raw_answer
    # The user message carries the call; the instruction is the system message.
    body = llm.requests[0].json()
    assert "How do I reset my password?" in body["messages"][1]["content"]
    assert body["messages"][0]["role"] == "system"
    # The judge call is not a call of the project.
    assert Call.objects.filter(project=project).count() == 1


def test_redelivered_job_never_calls_the_judge_twice(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, openai_connection(project, llm))
    call = make_call(project)
    [job_id] = _jobs(ev, [call])
    # The key computed in SQL is the documented one.
    assert EvalJob.objects.get(pk=job_id).key == job_key(
        evaluator_id=ev.pk, version=ev.version, call_id=call.id
    )
    llm.answer(openai_answer({"reason": "fine", "score": 1.0}))
    assert tasks.evaluate.apply(args=[job_id]).get() == "done"
    # The broker delivers the same message again (worker lost its ack), and a replayed
    # follow-up selects the same call again.
    assert tasks.evaluate.apply(args=[job_id]).get() == "skipped"
    assert services._jobs_insert_and_enqueue(project.pk, [(ev.pk, ev.version, call.id)]) == 0
    assert len(llm.requests) == 1
    assert JudgeCall.objects.filter(evaluator=ev).count() == 1
    assert Score.objects.filter(evaluator=ev).count() == 1


def test_429_retries_after_retry_after_then_scores(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, openai_connection(project, llm))
    [job_id] = _jobs(ev, [make_call(project)])
    llm.answer(
        error_answer(429, "slow down", {"Retry-After": "3"}),
        openai_answer({"reason": "ok", "score": 0.6}),
    )
    outcome = services.evaluation_run(job_id=job_id)
    assert (outcome.status, outcome.retry_after) == ("retry", 3.0)
    assert tasks.backoff_s(retries=0, retry_after=outcome.retry_after) == 3.0
    assert EvalJob.objects.get(pk=job_id).status == JobStatus.RETRY
    # The retry (same job) claims it again and scores.
    assert services.evaluation_run(job_id=job_id).status == "done"
    job = EvalJob.objects.get(pk=job_id)
    assert (job.status, job.attempts) == (JobStatus.DONE, 2)
    assert Score.objects.get(evaluator=ev).value == 0.6
    # The last allowed attempt turns a transient error into a job error.
    [second] = [j for j in _jobs(ev, [make_call(project)]) if j != job_id]
    llm.answer(error_answer(503, "down"))
    assert services.evaluation_run(job_id=second, last_attempt=True).status == "error"


def test_401_pauses_the_evaluator_and_drops_queued_jobs(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, openai_connection(project, llm))
    job_ids = _jobs(ev, [make_call(project) for _ in range(4)])
    llm.answer(error_answer(401, "Incorrect API key provided: sk-test"))
    assert services.evaluation_run(job_id=job_ids[0]).status == "error"
    ev.refresh_from_db()
    assert ev.status == EvaluatorStatus.PAUSED
    assert "401" in ev.paused_reason
    assert set(EvalJob.objects.filter(pk__in=job_ids[1:]).values_list("status", flat=True)) == {
        JobStatus.DROPPED
    }
    for job_id in job_ids[1:]:
        assert services.evaluation_run(job_id=job_id).status == "skipped"
    assert len(llm.requests) == 1
    assert (
        services.evaluations_select(project_id=project.pk, call_ids=[str(make_call(project).id)])
        == 0
    )
    # Resuming (after fixing the key) makes it select again.
    services.evaluator_update(evaluator=ev, status="active")
    ev.refresh_from_db()
    assert ev.paused_reason == ""
    assert (
        services.evaluations_select(project_id=project.pk, call_ids=[str(make_call(project).id)])
        == 1
    )


def test_malformed_answer_is_an_error_not_a_score(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, openai_connection(project, llm))
    [job_id] = _jobs(ev, [make_call(project)])
    llm.answer(openai_answer("I think it is a 7/10"))
    assert services.evaluation_run(job_id=job_id).status == "error"
    assert not Score.objects.filter(evaluator=ev).exists()
    jc = JudgeCall.objects.get(evaluator=ev)
    assert jc.status == "error"
    assert jc.error.startswith("malformed")
    assert jc.cost_usd
    assert jc.cost_usd > 0
    assert EvalJob.objects.get(pk=job_id).status == JobStatus.ERROR
    ev.refresh_from_db()
    assert ev.status == EvaluatorStatus.ACTIVE  # a bad answer does not pause


def test_spend_cap_pauses_until_next_utc_day_and_stops_sending(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    # Each answer costs 100,000 x $0.15/M + 10,000 x $0.60/M = $0.021.
    ev = judge(project, openai_connection(project, llm), daily_budget_usd=0.05)
    job_ids = _jobs(ev, [make_call(project) for _ in range(6)])
    for _ in range(6):
        llm.answer(
            openai_answer(
                {"reason": "ok", "score": 1.0}, prompt_tokens=100_000, completion_tokens=10_000
            )
        )
    statuses = [services.evaluation_run(job_id=j).status for j in job_ids]
    # $0.021, $0.042, $0.063 >= $0.05: the third request reached the cap; nothing after it.
    assert statuses[:3] == ["done", "done", "done"]
    assert len(llm.requests) == 3
    ev.refresh_from_db()
    assert ev.status == EvaluatorStatus.PAUSED
    assert "daily budget reached" in ev.paused_reason
    midnight = (timezone.now() + timedelta(days=1)).date()
    assert ev.paused_until is not None
    assert ev.paused_until.date() == midnight
    assert ev.paused_until.hour == 0
    with pytest.raises(ApplicationError):
        services.evaluator_backfill(
            evaluator=ev, start=timezone.now() - timedelta(days=1), end=timezone.now()
        )
    # The next UTC day it resumes by itself.
    assert services.evaluators_resume_due(project_id=project.pk, now=ev.paused_until) == 1


def test_project_budget_also_caps(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int], settings: Any
) -> None:
    settings.DRIFTLINE_EVALUATOR_PROJECT_DAILY_BUDGET_USD = 0.01
    ev = judge(project, openai_connection(project, llm))
    job_ids = _jobs(ev, [make_call(project) for _ in range(3)])
    llm.answer(openai_answer({"reason": "ok", "score": 1.0}, prompt_tokens=100_000))
    assert services.evaluation_run(job_id=job_ids[0]).status == "done"
    assert services.evaluation_run(job_id=job_ids[1]).status == "skipped"  # dropped at pause
    ev.refresh_from_db()
    assert "project daily evaluator budget" in ev.paused_reason
    assert len(llm.requests) == 1


def test_anthropic_judge_end_to_end(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, anthropic_connection(project, llm), name="tox", template="toxicity")
    [job_id] = _jobs(ev, [make_call(project)])
    llm.answer(
        anthropic_answer({"reason": "Polite.", "pass": True}, input_tokens=2000, output_tokens=50)
    )
    assert services.evaluation_run(job_id=job_id).status == "done"
    score = Score.objects.get(evaluator=ev)
    assert (score.value, score.label, score.passed) == (1.0, "pass", True)
    assert score.judge_call is not None
    assert score.judge_call.cost_usd == pytest.approx(2000 * 0.8e-6 + 50 * 4e-6)


def test_missing_variable_fails_the_job_without_asking(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, openai_connection(project, llm), name="ground", template="groundedness")
    [job_id] = _jobs(ev, [make_call(project)])
    outcome = services.evaluation_run(job_id=job_id)
    assert outcome.status == "error"
    assert "{{context}}" in outcome.message
    assert llm.requests == []


def test_context_from_retrieval_spans(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    ev = judge(project, openai_connection(project, llm), name="ground", template="groundedness")
    call = make_call(project, trace_id="t1")
    make_call(
        project, trace_id="t1", kind="retrieval", response="Passwords are reset under Security."
    )
    [job_id] = _jobs(ev, [call])
    llm.answer(openai_answer({"reason": "supported", "score": 1.0}))
    assert services.evaluation_run(job_id=job_id).status == "done"
    assert "Passwords are reset under Security." in llm.requests[0].json()["messages"][1]["content"]


def test_selection_filters_sampling_and_version(
    project: Any, llm: FakeLLM, allow_private: None, no_enqueue: list[int]
) -> None:
    conn = openai_connection(project, llm)
    ev = judge(project, conn, filters={"model": ["gpt-4o-mini"], "environment": "prod"})
    half = judge(project, conn, name="half", sampling_rate=0.5)
    wanted = make_call(project, environment="prod")
    other_model = make_call(project, environment="prod", model="gpt-4o")
    tool_span = make_call(project, environment="prod", kind="tool")  # LLM calls only by default
    many = [make_call(project) for _ in range(200)]
    ids = [str(c.id) for c in [wanted, other_model, tool_span, *many]]
    services.evaluations_select(project_id=project.pk, call_ids=ids)
    assert list(EvalJob.objects.filter(evaluator=ev).values_list("call_id", flat=True)) == [
        wanted.id
    ]
    sampled = EvalJob.objects.filter(evaluator=half).count()
    assert 60 < sampled < 140  # ~half of 201 LLM calls
    # Deterministic: selecting again adds nothing.
    services._forget_active(project.pk)
    assert services.evaluations_select(project_id=project.pk, call_ids=ids) == 0
    # A new prompt is a new version: the same call is scored again, old queued jobs dropped.
    services.evaluator_update(evaluator=half, prompt_template="Rate: {{response}}")
    half.refresh_from_db()
    assert half.version == 2
    assert not EvalJob.objects.filter(
        evaluator=half, status=JobStatus.QUEUED, evaluator_version=1
    ).exists()
    services.evaluator_update(evaluator=half, sampling_rate=0.4)  # not versioned
    half.refresh_from_db()
    assert half.version == 2


def test_language_mismatch_local_scorer(project: Any, no_enqueue: list[int]) -> None:
    ev = services.evaluator_create(
        project=project, name="lang", kind="python", scorer="language_mismatch"
    )
    same = make_call(
        project,
        prompt="Where is the train station please?",
        response="The station is on the left of the town hall.",
    )
    mismatch = make_call(
        project,
        prompt="Où est la gare, s'il vous plaît ?",
        response="The station is on the left of the town hall, and it is not far.",
    )
    for job_id in _jobs(ev, [same, mismatch]):
        assert services.evaluation_run(job_id=job_id).status == "done"
    scores = {s.call_id: s for s in Score.objects.filter(evaluator=ev)}
    assert scores[same.id].passed is True
    assert scores[mismatch.id].passed is False
    assert "fr" in scores[mismatch.id].reason
    assert scores[mismatch.id].judge_call is None
    assert scores[mismatch.id].cost_usd == 0.0


def test_answer_relevance_embedding_scorer(project: Any, no_enqueue: list[int]) -> None:
    ev = services.evaluator_create(
        project=project, name="rel", kind="embedding", scorer="answer_relevance"
    )
    on_topic = make_call(
        project,
        prompt="How do I reset my password?",
        response="To reset your password, open Settings > Security and click Reset password.",
    )
    off_topic = make_call(
        project,
        prompt="How do I reset my password?",
        response="Bananas are a good source of potassium.",
    )
    for job_id in _jobs(ev, [on_topic, off_topic]):
        assert services.evaluation_run(job_id=job_id).status == "done"
    scores = {s.call_id: s.value for s in Score.objects.filter(evaluator=ev)}
    assert scores[on_topic.id] is not None
    assert scores[off_topic.id] is not None
    assert scores[on_topic.id] > 0.6 > 0.2 > scores[off_topic.id]


def test_preview_saves_nothing(project: Any, llm: FakeLLM, allow_private: None) -> None:
    conn = openai_connection(project, llm)
    for i in range(3):
        make_call(project, prompt=f"question {i}")
    ev = services.evaluator_build(
        project=project, name="draft", template="helpfulness", connection=conn
    )
    llm.answer(*[openai_answer({"reason": f"r{i}", "score": 0.5}) for i in range(3)])
    rows = services.evaluator_preview(evaluator=ev, limit=5)
    assert [r["reason"] for r in rows] == ["r0", "r1", "r2"]
    assert all(r["value"] == 0.5 for r in rows)
    assert ev.pk is None
    assert not JudgeCall.objects.exists()
    assert not Score.objects.exists()
