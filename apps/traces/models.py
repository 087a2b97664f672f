"""LLM calls (spans) and feedback: the two tables everything else reads.

``Call`` is built for tens of millions of rows. The table is partitioned by month of
``start_time`` (``apps/traces/partitions.py`` creates partitions ahead and drops expired ones),
so retention drops whole partitions and recent reads touch one or two. PostgreSQL wants the
partition key in every unique index, so the table's own primary key is (project_id, id,
start_time); the client's id stays unique per project whatever its timestamp through
``CallId``, a small unpartitioned table that a statement trigger fills on every insert into
calls (a re-sent event is stored once, and one tenant cannot probe another's ids). To Django the
key is (project_id, id), which is what the database guarantees. Rows are appended, then updated
once by the follow-up worker; (project, start_time) serves the dashboards. Nothing references a
call by foreign key: feedback, vectors and signals join on (project_id, call id), so late
feedback needs no fix-up.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Project


class CallStatus(models.TextChoices):
    OK = "ok"
    ERROR = "error"


class CallKind(models.TextChoices):
    LLM = "llm"
    SPAN = "span"
    TOOL = "tool"
    CHAIN = "chain"
    RETRIEVAL = "retrieval"
    EMBEDDING = "embedding"
    AGENT = "agent"


# The calls LLM metrics count (volume, cost, latency, errors, drift, embeddings, review, alerts):
# model calls. Other kinds (HTTP/database/framework spans, chains, tools, agents) are stored for
# the trace tree only. OTLP spans carrying gen_ai.* are mapped to kind llm (ingest.otlp.mapping).
LLM_KINDS: tuple[str, ...] = (CallKind.LLM.value, CallKind.EMBEDDING.value)


def is_llm(kind: str) -> bool:
    """Whether a call of ``kind`` counts in LLM metrics (see ``LLM_KINDS``)."""
    return kind in LLM_KINDS


class EmbedStatus(models.IntegerChoices):
    PENDING = 0
    DONE = 1
    SKIPPED = 2  # sampled out by the embedding budget
    NOT_APPLICABLE = 3  # nothing to embed (no prompt)


class Call(models.Model):
    # The database's primary key is (project_id, id, start_time) (see the module docstring);
    # (project_id, id) is unique through CallId.
    pk = models.CompositePrimaryKey("project_id", "id")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    id = models.UUIDField(default=uuid.uuid4)
    trace_id = models.CharField(max_length=64, blank=True, default="")
    parent_id = models.UUIDField(null=True, blank=True)
    session_id = models.CharField(max_length=255, blank=True, default="")
    end_user_id = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=16, choices=CallKind.choices, default=CallKind.LLM)
    provider = models.CharField(max_length=64, blank=True, default="")
    model = models.CharField(max_length=255, blank=True, default="")
    prompt = models.TextField(blank=True, default="")
    messages = models.JSONField(null=True, blank=True)
    response = models.TextField(blank=True, default="")
    input_tokens = models.IntegerField(null=True, blank=True)
    output_tokens = models.IntegerField(null=True, blank=True)
    total_tokens = models.IntegerField(null=True, blank=True)
    cached_tokens = models.IntegerField(null=True, blank=True)
    reasoning_tokens = models.IntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)
    # "client": sent by the app (wins); "computed": from the price table; "": unknown model.
    cost_source = models.CharField(max_length=16, blank=True, default="")
    latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=CallStatus.choices, default=CallStatus.OK)
    error = models.TextField(blank=True, default="")
    error_type = models.CharField(max_length=255, blank=True, default="")
    release = models.CharField(max_length=128, blank=True, default="")
    environment = models.CharField(max_length=64, blank=True, default="")
    # The prompt template this call rendered (see PromptVersion); "" when the app did not say.
    # db_default too: raw inserts (the ingest COPY path, maintenance SQL) may leave them out.
    prompt_name = models.CharField(max_length=255, blank=True, default="", db_default="")
    prompt_version = models.CharField(max_length=64, blank=True, default="", db_default="")
    tags = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Fields cut to the ingest limit (e.g. ["prompt"]).
    truncated = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    # Written once by the ingest follow-up worker.
    processed_at = models.DateTimeField(null=True, blank=True)
    embed_status = models.SmallIntegerField(
        choices=EmbedStatus.choices, default=EmbedStatus.PENDING
    )
    refusal = models.BooleanField(null=True, blank=True)
    injection = models.FloatField(null=True, blank=True)
    toxicity = models.FloatField(null=True, blank=True)
    pii = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    flagged = models.BooleanField(default=False)
    signals = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "-start_time"], name="call_project_time"),
            BrinIndex(fields=["start_time"], name="call_start_brin", autosummarize=True),
            models.Index(fields=["project", "trace_id"], name="call_project_trace"),
            models.Index(
                fields=["received_at"],
                name="call_unprocessed",
                condition=Q(processed_at__isnull=True),
            ),
            # The embed backlog (health, lag, the sweeper): small, so the index stays small.
            models.Index(
                fields=["received_at"],
                name="call_embed_pending",
                condition=Q(embed_status=EmbedStatus.PENDING),
            ),
            GinIndex(fields=["tags"], name="call_tags_gin"),
            # Sessions and prompt versions are read per project; most calls carry neither.
            models.Index(
                fields=["project", "session_id", "start_time"],
                name="call_project_session",
                condition=~Q(session_id=""),
            ),
            models.Index(
                fields=["project", "prompt_name", "prompt_version", "start_time"],
                name="call_project_prompt",
                condition=~Q(prompt_name=""),
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)


class CallId(models.Model):
    """Every stored call's (project, id) and start time: the dedupe key of the partitioned
    calls table, and where to find a call's partition from its id. Filled only by the
    ``traces_call_ids`` trigger on inserts into calls; rows go when their call is dropped by
    retention. Narrow (about 60 bytes a row), so its index stays in memory."""

    pk = models.CompositePrimaryKey("project_id", "id")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    id = models.UUIDField()
    start_time = models.DateTimeField()

    class Meta:
        db_table = "traces_call_id"
        indexes = [models.Index(fields=["project", "start_time"], name="call_id_project_time")]

    def __str__(self) -> str:
        return str(self.id)


class PromptVersion(models.Model):
    """One version of a prompt template of a project (the registry).

    A version is named by the app (``"v3"``) or, when it gives none, by the first 12 hex digits
    of the template's SHA-256, so the SDK knows the name offline and registering the same text
    twice is one version. Calls link to it by (``prompt_name``, ``prompt_version``), not by
    foreign key: a call may arrive before its template is registered, or without one."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=64)
    template = models.TextField()
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name", "version"], name="promptversion_key"
            ),
            models.UniqueConstraint(
                fields=["project", "name", "content_hash"], name="promptversion_content"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class FeedbackSource(models.TextChoices):
    END_USER = "end_user"
    REVIEWER = "reviewer"


class Feedback(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    # The client's event id (dedupe) or a server id for reviewer labels.
    event_id = models.UUIDField(default=uuid.uuid4)
    call_id = models.UUIDField()
    source = models.CharField(
        max_length=16, choices=FeedbackSource.choices, default=FeedbackSource.END_USER
    )
    score = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=128, blank=True, default="")
    labels = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    comment = models.TextField(blank=True, default="")
    user_id = models.CharField(max_length=255, blank=True, default="")
    author = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "event_id"], name="feedback_project_event_unique"
            )
        ]
        indexes = [models.Index(fields=["project", "call_id"], name="feedback_project_call")]

    def __str__(self) -> str:
        return f"{self.source}:{self.call_id}"

    @property
    def is_negative(self) -> bool:
        return is_negative_feedback(score=self.score, label=self.label)


NEGATIVE_LABELS = frozenset({"bad", "negative", "thumbs_down", "wrong", "unhelpful", "incorrect"})


def is_negative_feedback(*, score: float | None, label: str) -> bool:
    """Scores are on [0, 1] (thumbs-down 0, thumbs-up 1): below 0.5 is negative; so is a label
    such as "bad"."""
    if score is not None and score < NEGATIVE_SCORE_BELOW:
        return True
    return label.strip().lower() in NEGATIVE_LABELS


NEGATIVE_SCORE_BELOW = 0.5
# A score at or above this counts as an injection/toxicity positive (the scorers' own cut-off);
# metrics, rollups and badges all count with it.
SIGNAL_CUTOFF = 0.5


# --- Rollups -------------------------------------------------------------------------------------
# Dashboards and metric alerts read these, never a scan of raw calls. A rollup row is a pure
# function of the raw rows of its bucket (recomputed, never incremented), so replays, late calls
# and late feedback cannot double-count: see apps/traces/rollups.py.


class RollupGrain(models.IntegerChoices):
    MINUTE = 60
    HOUR = 3600


class RollupLevel(models.IntegerChoices):
    """How far the dimensions are rolled up: a read without filters merges one row per bucket
    instead of one per model x release x environment (the latency merge is the read's cost)."""

    FULL = 0  # model x release x environment
    MODEL = 1  # per model; release and environment are ""
    PROJECT = 2  # the whole project; all three are ""


class CallRollup(models.Model):
    """Aggregates of one project's calls per time bucket x model x release x environment.

    Feedback counts belong to the bucket of the call they are about (not the time they arrived),
    so every column can be filtered by the call's model/release/environment without a join.
    Latency is a log-bucketed histogram (DDSketch-style index ``ceil(log_gamma(ms))``) kept
    sparse: ``latency_bins[i]`` holds ``latency_counts[i]`` calls.
    """

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    grain = models.IntegerField(choices=RollupGrain.choices)
    bucket = models.DateTimeField()
    level = models.SmallIntegerField(choices=RollupLevel.choices, default=RollupLevel.FULL)
    model = models.CharField(max_length=255, blank=True, default="")
    release = models.CharField(max_length=128, blank=True, default="")
    environment = models.CharField(max_length=64, blank=True, default="")
    calls = models.IntegerField(default=0)
    errors = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)
    flagged = models.IntegerField(default=0)
    refusal = models.IntegerField(default=0)
    injection = models.IntegerField(default=0)
    toxicity = models.IntegerField(default=0)
    pii = models.IntegerField(default=0)
    feedback_count = models.IntegerField(default=0)
    feedback_negative = models.IntegerField(default=0)
    end_user_scored = models.IntegerField(default=0)
    end_user_score_sum = models.FloatField(default=0.0)
    reviewer_scored = models.IntegerField(default=0)
    reviewer_score_sum = models.FloatField(default=0.0)
    latency_bins = ArrayField(models.IntegerField(), default=list, blank=True)
    latency_counts = ArrayField(models.IntegerField(), default=list, blank=True)

    class Meta:
        constraints = [
            # Also the read index: (project, grain, bucket range).
            models.UniqueConstraint(
                fields=["project", "grain", "bucket", "level", "model", "release", "environment"],
                name="callrollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.grain}:{self.bucket.isoformat()}"


class RollupDirty(models.Model):
    """A minute of a project whose rollups must be recomputed (calls processed or feedback
    arrived since the last flush). ``version`` grows on every mark, so a flush only clears the
    marks it has seen."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, related_name="+")
    minute = models.DateTimeField()
    version = models.BigIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "minute"], name="rollupdirty_key"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.minute.isoformat()}"
