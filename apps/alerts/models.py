"""Alert rules, incidents with their history, channels and the notification log.

Deduplication lives in the database, not in a cache:

* one open (pending or firing) incident per rule and group: a partial unique constraint;
* one notification per incident event and channel: a unique constraint, and the row is claimed
  by a conditional UPDATE before anything is sent (see ``services.notification_deliver``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ChannelKind(models.TextChoices):
    SLACK = "slack", "Slack incoming webhook"
    WEBHOOK = "webhook", "JSON webhook (HMAC-signed)"


class Channel(models.Model):
    """Where notifications go. The URL (a bearer secret for Slack) is encrypted at rest."""

    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="alert_channels"
    )
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    name = models.CharField(max_length=200)
    url_encrypted = models.TextField()
    # What UI and API show instead of the URL: scheme, host and the last 4 characters.
    url_masked = models.CharField(max_length=300)
    secret_encrypted = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # No message to this channel before this time: the transport's minimum interval after each
    # send (Slack: 1 s), Retry-After after a 429 (Slack's limit is per webhook, not per message).
    paused_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class RuleKind(models.TextChoices):
    METRIC = "metric", "Metric threshold"
    BUDGET = "budget", "Cost budget per end user"
    EMBEDDING_DRIFT = "embedding_drift", "Embedding drift"
    INTENT_SHIFT = "intent_shift", "Intent share shift"
    NEW_INTENT = "new_intent", "New intent"
    REGRESSION = "regression", "Quality regression"
    PROMPT_REGRESSION = "prompt_regression", "A new prompt version regressed"
    SCORE = "score", "Evaluator score"


class Metric(models.TextChoices):
    COST = "cost", "Cost (USD) in the window"
    ERROR_RATE = "error_rate", "Error rate"
    LATENCY_P95 = "latency_p95", "p95 latency (ms)"
    NEGATIVE_FEEDBACK_RATE = "negative_feedback_rate", "Negative feedback rate"
    SAFETY_FLAG_RATE = "safety_flag_rate", "Safety-flagged call rate"
    TOKENS = "tokens", "Total tokens in the window"
    CALLS = "calls", "Number of calls in the window"


class Operator(models.TextChoices):
    GT = ">", ">"
    GTE = ">=", ">="
    LT = "<", "<"
    LTE = "<=", "<="


class EvalState(models.TextChoices):
    IDLE = "idle", "Idle"
    RUNNING = "running", "Queued or running"


class AlertRule(models.Model):
    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=RuleKind.choices, default=RuleKind.METRIC)
    metric = models.CharField(max_length=32, choices=Metric.choices, blank=True, default="")
    operator = models.CharField(max_length=2, choices=Operator.choices, default=Operator.GT)
    threshold = models.FloatField(null=True, blank=True)  # warning level
    critical_threshold = models.FloatField(null=True, blank=True)
    window_s = models.PositiveIntegerField(default=300)
    min_samples = models.PositiveIntegerField(default=1)
    # Exact-match filters on calls: model, release, environment, provider, name, end_user_id.
    filters = models.JSONField(default=dict, blank=True)
    group_by = models.JSONField(default=list, blank=True)  # subset of GROUP_BY_FIELDS
    # Detector options for drift/regression rules (e.g. {"alpha": 0.01}).
    params = models.JSONField(default=dict, blank=True)
    # How long the condition must hold before firing (Alertmanager's "for"); 0 fires at once.
    pending_s = models.PositiveIntegerField(default=0)
    # No new "firing" message for a rule and group within this long of the previous one.
    cooldown_s = models.PositiveIntegerField(default=0)
    # Repeat a firing, unacknowledged incident this often; 0 never (Alertmanager: 4 h).
    renotify_s = models.PositiveIntegerField(default=4 * 3600)
    check_interval_s = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)
    channels = models.ManyToManyField(Channel, blank=True, related_name="rules")

    next_check_at = models.DateTimeField(null=True, blank=True)
    eval_state = models.CharField(max_length=16, choices=EvalState.choices, default=EvalState.IDLE)
    eval_started_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_check_at"], name="alerts_rule_due_idx", condition=Q(enabled=True)
            ),
            models.Index(fields=["project", "enabled"]),
        ]

    def __str__(self) -> str:
        return self.name


class IncidentState(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class Severity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


OPEN_STATES = (IncidentState.PENDING, IncidentState.FIRING)


class Incident(models.Model):
    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="incidents")
    # Canonical JSON of the group labels ("" when the rule has no group-by).
    group_key = models.CharField(max_length=500, blank=True, default="")
    group = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=IncidentState.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    sample_count = models.PositiveIntegerField(default=0)
    summary = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)  # examples, p-value, detector output
    started_at = models.DateTimeField()  # condition first seen
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    muted_until = models.DateTimeField(null=True, blank=True)
    # Whether a "firing" message went out: a resolve message is only sent after one.
    notified = models.BooleanField(default=False)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "group_key"],
                condition=Q(state__in=["pending", "firing"]),
                name="alerts_one_open_incident_per_rule_group",
            )
        ]
        indexes = [
            models.Index(fields=["project", "state", "-started_at"]),
            models.Index(fields=["rule", "group_key", "-resolved_at"]),
        ]

    def __str__(self) -> str:
        return f"incident {self.pk} ({self.state})"


class EventKind(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    ESCALATED = "escalated", "Escalated to critical"
    RENOTIFY = "renotify", "Still firing"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cleared before firing"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    MUTED = "muted", "Muted"
    SUPPRESSED = "suppressed", "Notification suppressed"


# The events that produce a message to the rule's channels.
NOTIFYING_EVENTS = frozenset(
    {EventKind.FIRING, EventKind.ESCALATED, EventKind.RENOTIFY, EventKind.RESOLVED}
)


class IncidentEvent(models.Model):
    """The history of an incident; append-only."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True, default="")
    value = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} of incident {self.incident_id}"


class NotificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    RETRY = "retry", "Waiting to retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    # A worker died after the request went out: it may or may not have arrived. Not resent
    # (at-most-once), see services.notification_deliver.
    UNKNOWN = "unknown", "Outcome unknown"
    SKIPPED = "skipped", "Skipped"


class Notification(models.Model):
    """One message to one channel, and every attempt at sending it."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey(
        IncidentEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    # "<event id>:<channel id>" or "test:<uuid>"; the unique key that makes delivery idempotent.
    dedupe_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    # Set (and committed) just before the HTTP request; a stale "sending" row without it died
    # before anything went out and is safe to send again.
    send_started_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Every attempt, oldest first (the last 20): {attempt, at, outcome, http_status, error}.
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"]),
            models.Index(
                fields=["status", "next_attempt_at"],
                name="alerts_notif_pending_idx",
                condition=Q(status__in=["queued", "retry", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"notification {self.dedupe_key} ({self.status})"
