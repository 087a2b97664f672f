"""Evaluators on live traffic: LLM connections, evaluators, their jobs, judge calls and scores.

Nothing here references ``traces.Call`` by foreign key (the calls table is partitioned); scores
and jobs join on (project_id, call_id) like feedback and vectors do. Judge calls live in
:class:`JudgeCall`, never in the calls table, so they are never counted in the project's own
volume, cost, latency, drift or review queue.

Exactly-once scoring rests on :class:`EvalJob`: its ``key`` is a hash of (evaluator, evaluator
version, call) under a unique constraint. Selection inserts jobs with ``ON CONFLICT DO NOTHING``
(a replayed follow-up or a second backfill enqueues nothing new), and a worker claims a job by a
conditional UPDATE ``queued -> running`` BEFORE calling the judge, so a redelivered message finds
the job taken and sends nothing. A worker killed between the claim and the answer leaves the job
``running``: it is never retried (at most once: a judge call may have been paid for).
"""

from __future__ import annotations

import hashlib
import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from apps.accounts.models import Project


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI-compatible"
    ANTHROPIC = "anthropic", "Anthropic"


class LLMConnection(models.Model):
    """Where a judge runs. The API key is encrypted at rest and never returned."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    base_url = models.CharField(max_length=2048)
    api_key_encrypted = models.TextField()
    api_key_hint = models.CharField(max_length=16, blank=True, default="")  # "…abcd"
    default_model = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="llmconnection_project_name")
        ]

    def __str__(self) -> str:
        return self.name


class EvaluatorKind(models.TextChoices):
    LLM_JUDGE = "llm_judge", "LLM judge"
    EMBEDDING = "embedding", "Embedding (local)"
    PYTHON = "python", "Python scorer (local)"


class ScoreType(models.TextChoices):
    NUMERIC = "numeric", "Numeric (0..1)"
    BOOLEAN = "boolean", "Pass / fail"
    CATEGORICAL = "categorical", "Categorical"


class EvaluatorStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class Evaluator(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=EvaluatorKind.choices)
    # llm_judge: the connection and model (blank model: the connection's default).
    connection = models.ForeignKey(
        LLMConnection, null=True, blank=True, on_delete=models.PROTECT, related_name="evaluators"
    )
    model = models.CharField(max_length=255, blank=True, default="")
    # The built-in template it started from ("" when written from scratch).
    template = models.CharField(max_length=64, blank=True, default="")
    instruction = models.TextField(blank=True, default="")  # the judge's system message
    prompt_template = models.TextField(blank=True, default="")  # the user message, {{vars}}
    # embedding / python: the registered scorer's name.
    scorer = models.CharField(max_length=64, blank=True, default="")
    score_type = models.CharField(max_length=16, choices=ScoreType.choices)
    labels = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # {"model": [..], "release": [..], "environment": [..], "name": [..], "tags": [..],
    #  "kind": [..]}; every key optional; kind defaults to ["llm"].
    filters = models.JSONField(default=dict, blank=True)
    sampling_rate = models.FloatField(default=1.0)
    daily_budget_usd = models.FloatField(null=True, blank=True)
    status = models.CharField(
        max_length=8, choices=EvaluatorStatus.choices, default=EvaluatorStatus.ACTIVE
    )
    paused_reason = models.TextField(blank=True, default="")
    # Set for budget pauses: the evaluator resumes by itself at this time (next UTC midnight).
    paused_until = models.DateTimeField(null=True, blank=True)
    # Bumped when what decides a score changes (prompt, model, scorer, score type, labels).
    version = models.IntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="evaluator_project_name")
        ]

    def __str__(self) -> str:
        return self.name


def job_key(*, evaluator_id: int, version: int, call_id: uuid.UUID | str) -> str:
    """The deterministic id of the job that scores ``call_id`` with this evaluator version."""
    raw = f"{evaluator_id}:{version}:{uuid.UUID(str(call_id))}".encode()
    return hashlib.sha256(raw).hexdigest()


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    RETRY = "retry"  # waiting for a retry (429, 5xx, timeout)
    DONE = "done"
    ERROR = "error"  # no score: malformed answer, permanent error, retries exhausted
    DROPPED = "dropped"  # evaluator paused, deleted or changed version before it ran


class EvalJob(models.Model):
    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=64)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    evaluator = models.ForeignKey(Evaluator, on_delete=models.CASCADE, related_name="jobs")
    evaluator_version = models.IntegerField()
    call_id = models.UUIDField()
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.IntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="evaljob_key_unique")]
        indexes = [models.Index(fields=["evaluator", "status"], name="evaljob_evaluator_status")]

    def __str__(self) -> str:
        return self.key


class JudgeCallStatus(models.TextChoices):
    OK = "ok"
    ERROR = "error"


class JudgeCall(models.Model):
    """One request to a judge model: what it cost and what it answered."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    evaluator = models.ForeignKey(Evaluator, on_delete=models.CASCADE, related_name="judge_calls")
    job = models.ForeignKey(
        EvalJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="judge_calls"
    )
    provider = models.CharField(max_length=16)
    model = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=JudgeCallStatus.choices)
    http_status = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    latency_ms = models.FloatField()
    input_tokens = models.IntegerField(null=True, blank=True)
    output_tokens = models.IntegerField(null=True, blank=True)
    cached_tokens = models.IntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)  # None: the model has no price
    raw_answer = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["evaluator", "created_at"], name="judgecall_evaluator_time"),
            models.Index(fields=["project", "created_at"], name="judgecall_project_time"),
        ]

    def __str__(self) -> str:
        return f"{self.evaluator_id}:{self.pk}"


class Score(models.Model):
    """One evaluator's verdict on one call (the latest evaluator version that scored it)."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    evaluator = models.ForeignKey(Evaluator, on_delete=models.CASCADE, related_name="scores")
    call_id = models.UUIDField()
    # The call's start time, so score series and alert windows need no join with calls.
    call_start_time = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)  # numeric 0..1; boolean 1.0 / 0.0
    label = models.CharField(max_length=64, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    passed = models.BooleanField(null=True, blank=True)  # for failure rates; None: categorical
    cost_usd = models.FloatField(null=True, blank=True)
    judge_call = models.ForeignKey(
        JudgeCall, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evaluator_version = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluator", "call_id"], name="score_evaluator_call")
        ]
        indexes = [
            models.Index(fields=["project", "call_id"], name="score_project_call"),
            models.Index(fields=["evaluator", "call_start_time"], name="score_evaluator_time"),
        ]

    def __str__(self) -> str:
        return f"{self.evaluator_id}:{self.call_id}"
