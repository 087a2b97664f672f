"""Baselines, their intent clusters, drift monitors and the checks they store.

The drift loop follows PostHog's alert checks: beat picks monitors due by ``next_check_at``,
each check runs as its own task after claiming the monitor with a conditional UPDATE of
``running_since`` (a second copy finds it claimed and skips), and a janitor clears claims held
too long by a dead worker. A check is keyed by (monitor, window_end), so a re-delivered task
finds its result stored and does not duplicate it.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pgvector.django import VectorField

from apps.accounts.models import Project
from apps.embeddings.models import DIMENSION


class BaselineStatus(models.TextChoices):
    FITTING = "fitting"
    READY = "ready"
    FAILED = "failed"


class Baseline(models.Model):
    """What normal traffic looks like: a reference sample, intent clusters, calibrations.

    Either a trailing window (refit daily, follows slow change) or pinned (a release or a
    date range the team chose; kept until unpinned). The active baseline is the newest
    ready pinned one, else the newest ready trailing one.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    provider_key = models.CharField(max_length=200, blank=True, default="")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    release = models.CharField(max_length=128, blank=True, default="")
    pinned = models.BooleanField(default=False)
    status = models.CharField(
        max_length=8, choices=BaselineStatus.choices, default=BaselineStatus.FITTING
    )
    error = models.TextField(blank=True, default="")
    false_alarm_rate = models.FloatField(default=0.01)
    sample_size = models.IntegerField(default=0)
    # ``detectors.Baseline.to_state()`` as zlib-compressed JSON: a few MB with the float16
    # reference sample, so kept out of jsonb (never filtered on, read whole) and deferred by
    # selectors that list baselines.
    state = models.BinaryField(null=True, blank=True)
    # Small facts for lists and the UI: k, silhouette, reference shares.
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    fitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["project", "pinned", "-fitted_at"],
                name="baseline_active",
                condition=Q(status="ready"),
            )
        ]

    def __str__(self) -> str:
        return f"baseline {self.pk} ({self.status})"


class IntentCluster(models.Model):
    """One intent of a baseline; reviewers name it, the auto label is the c-TF-IDF terms."""

    baseline = models.ForeignKey(Baseline, on_delete=models.CASCADE, related_name="clusters")
    # Denormalised so a rename checks tenancy without a join.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    index = models.IntegerField()
    centroid = VectorField(dimensions=DIMENSION)
    size = models.IntegerField()
    share = models.FloatField()
    label = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    example_call_ids = ArrayField(models.UUIDField(), default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["baseline", "index"], name="intentcluster_baseline_index"
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.label or f"intent {self.index}"


class DriftMonitor(models.Model):
    """One per project (created on its first embedded calls): when and how to check."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True)
    window_hours = models.IntegerField(default=24)
    interval_minutes = models.IntegerField(default=60)
    # Windows are tested on a uniform sample of at most this many calls (see services).
    max_window = models.IntegerField(default=500)
    next_check_at = models.DateTimeField(default=timezone.now)
    running_since = models.DateTimeField(null=True, blank=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    # The streaming (MEWMA) detector: its state, the baseline it was fit on, and the
    # created_at of the last vector fed to it.
    stream_state = models.JSONField(null=True, blank=True)
    stream_baseline = models.ForeignKey(
        Baseline, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stream_cursor = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_check_at"], name="driftmonitor_due", condition=Q(enabled=True)
            )
        ]

    def __str__(self) -> str:
        return f"drift monitor of project {self.project_id}"


class CheckStatus(models.TextChoices):
    TESTED = "tested"
    TOO_FEW = "too_few"  # fewer calls in the window than a test needs
    NO_BASELINE = "no_baseline"  # not enough history to fit one
    NEEDS_REFIT = "needs_refit"  # the baseline's vectors come from another provider/model
    FAILED = "failed"


class DriftCheck(models.Model):
    monitor = models.ForeignKey(DriftMonitor, on_delete=models.CASCADE, related_name="checks")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    baseline = models.ForeignKey(
        Baseline, null=True, blank=True, on_delete=models.SET_NULL, related_name="checks"
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=12, choices=CheckStatus.choices)
    n = models.IntegerField(default=0)  # embedded calls in the window
    tested_n = models.IntegerField(default=0)  # the sample actually tested
    drifted = models.BooleanField(default=False)
    score = models.FloatField(null=True, blank=True)  # -log10 of the combined p-value
    p_value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)  # the false-alarm rate p is held to
    summary = models.TextField(blank=True, default="")
    # Per detector: {name: {drifted, score, threshold, p_value, summary, details}}.
    results = models.JSONField(default=dict, blank=True)
    # [{cluster_id, index, name, baseline_share, window_share, z, moved}] for every cluster.
    intent_shares = models.JSONField(default=list, blank=True)
    # [{size, share, label, example_call_ids, example_texts, nearest_cluster_id}].
    new_intents = models.JSONField(default=list, blank=True)
    example_call_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    # The streaming detector's update for the vectors that arrived since the last check.
    stream = models.JSONField(default=dict, blank=True)
    # Calls far from every baseline call (k-NN distance above the calibrated threshold):
    # {n, flagged, share, expected_share, p_value, drifted, threshold, example_call_ids}.
    # Reported beside the window test, not folded into ``drifted``: it answers "is there
    # traffic unlike anything normal" (jailbreaks, another language), a per-call question.
    out_of_domain = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["monitor", "window_end"], name="driftcheck_monitor_window"
            )
        ]
        indexes = [models.Index(fields=["project", "-window_end"], name="driftcheck_project_time")]

    def __str__(self) -> str:
        return f"drift check {self.pk} ({self.status})"


class IntentGroupName(models.Model):
    """A name someone gave a new-intent group, kept at the group's centre (the mean of its
    example vectors) so that the same group found by a later check shows the same name."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    centroid = VectorField(dimensions=DIMENSION)
    provider_key = models.CharField(max_length=200, blank=True, default="")
    named_on = models.ForeignKey(
        DriftCheck, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name
