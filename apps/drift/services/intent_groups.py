"""Acting on the new-intent groups a drift check found: their calls, a name, a review sample;
and "check now".

A check stores each group's size and five example calls, not its members (a window can hold
thousands). The members are recomputed the way the detector chose them: calls of the check's
window farther from every baseline intent centroid than the check's distance threshold, each
given to the group whose centre (the mean of its examples) is nearest. On the window the check
tested this returns the group; on a window larger than the tested sample it returns the
group's calls beyond the sample too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.core.errors import ApplicationError, NotFound
from apps.drift import enqueue
from apps.drift.models import CheckStatus, DriftCheck, IntentCluster, IntentGroupName
from apps.drift.services.baselines import NAME_CARRY_SIMILARITY
from apps.drift.services.monitors import drift_monitor_ensure
from apps.embeddings.models import CallEmbedding, EmbeddingKind
from apps.embeddings.selectors import embedding_sample
from apps.quality.services import review_request_create

REVIEW_SAMPLE = 20


@dataclass(frozen=True)
class GroupRef:
    check: DriftCheck
    index: int

    @property
    def group(self) -> dict[str, Any]:
        return dict(self.check.new_intents[self.index])


def intent_group_get(*, project: Project, check_id: int, index: int) -> GroupRef:
    check = (
        DriftCheck.objects.select_related("baseline")
        .defer("baseline__state")
        .filter(project=project, pk=check_id, status=CheckStatus.TESTED)
        .first()
    )
    if check is None or not 0 <= index < len(check.new_intents or []):
        raise NotFound("new intent group: not found")
    return GroupRef(check=check, index=index)


def _example_ids(group: dict[str, Any]) -> list[uuid.UUID]:
    return [uuid.UUID(str(i)) for i in group.get("example_call_ids", [])]


def _centres(
    vectors_by_call: dict[uuid.UUID, npt.NDArray[np.float64]], groups: list[dict[str, Any]]
) -> list[npt.NDArray[np.float64] | None]:
    out: list[npt.NDArray[np.float64] | None] = []
    for group in groups:
        rows = [vectors_by_call[i] for i in _example_ids(group) if i in vectors_by_call]
        out.append(np.mean(rows, axis=0) if rows else None)
    return out


def intent_group_call_ids(*, ref: GroupRef) -> list[uuid.UUID]:
    """The group's calls, nearest its centre first (its examples lead)."""
    check, groups = ref.check, list(ref.check.new_intents)
    examples = _example_ids(groups[ref.index])
    baseline = check.baseline
    if baseline is None:
        return examples
    sample = embedding_sample(
        project_id=check.project_id,
        provider_key=baseline.provider_key,
        start=check.window_start,
        end=check.window_end,
    )
    if not len(sample):
        return examples
    vectors = sample.vectors.astype(np.float64)
    by_call = {call_id: vectors[i] for i, call_id in enumerate(sample.call_ids)}
    far = np.ones(len(vectors), dtype=bool)
    centroids = [
        np.asarray(c, dtype=np.float64)
        for c in IntentCluster.objects.filter(baseline=baseline).values_list("centroid", flat=True)
    ]
    threshold = (check.results.get("new_intent") or {}).get("details", {}).get("distance_threshold")
    if centroids and threshold is not None:
        nearest = np.min(
            np.linalg.norm(vectors[:, None, :] - np.stack(centroids)[None, :, :], axis=2), axis=1
        )
        far = nearest > float(threshold)
    centres = _centres(by_call, groups)
    mine = centres[ref.index]
    if mine is None:
        return examples
    known = [(g, c) for g, c in enumerate(centres) if c is not None]
    distances = np.stack([np.linalg.norm(vectors - c[None, :], axis=1) for _, c in known], axis=1)
    chosen = np.asarray([known[int(j)][0] for j in np.argmin(distances, axis=1)]) == ref.index
    rows = np.flatnonzero(far & chosen)
    own = distances[:, [g for g, _ in known].index(ref.index)]
    ordered = [sample.call_ids[int(i)] for i in rows[np.argsort(own[rows], kind="stable")]]
    rest = [i for i in ordered if i not in set(examples)]
    return [*examples, *rest]


# --- Names -------------------------------------------------------------------------------------


def _example_vectors(
    *, project_id: int, groups: list[dict[str, Any]]
) -> dict[uuid.UUID, npt.NDArray[np.float64]]:
    ids = [i for g in groups for i in _example_ids(g)]
    rows = CallEmbedding.objects.filter(
        project_id=project_id, call_id__in=ids, kind=EmbeddingKind.PROMPT
    ).values_list("call_id", "vector")
    return {call_id: np.asarray(vector, dtype=np.float64) for call_id, vector in rows}


def _cosine(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator else 0.0


def intent_group_names(*, project: Project, groups: list[dict[str, Any]]) -> list[str]:
    """The name given to each group (or to the same group in an earlier check), else ""."""
    named = list(IntentGroupName.objects.filter(project=project).order_by("-updated_at"))
    if not named or not groups:
        return ["" for _ in groups]
    centres = _centres(_example_vectors(project_id=project.pk, groups=groups), groups)
    out = []
    for centre in centres:
        best = ""
        if centre is not None:
            scored = [(_cosine(centre, np.asarray(n.centroid)), n.name) for n in named]
            similarity, name = max(scored, key=lambda pair: pair[0])
            best = name if similarity >= NAME_CARRY_SIMILARITY else ""
        out.append(best)
    return out


def intent_group_name(*, project: Project, ref: GroupRef, name: str) -> str:
    """Name the group; a name at (nearly) the same place is replaced, "" removes it."""
    name = " ".join(name.split())
    if len(name) > 200:
        raise ApplicationError("name: at most 200 characters", field="name")
    groups = [ref.group]
    (centre,) = _centres(_example_vectors(project_id=project.pk, groups=groups), groups)
    if centre is None:
        raise ApplicationError("group: its example calls have no embeddings any more")
    with transaction.atomic():
        same = [
            n.pk
            for n in IntentGroupName.objects.select_for_update().filter(project=project)
            if _cosine(centre, np.asarray(n.centroid)) >= NAME_CARRY_SIMILARITY
        ]
        IntentGroupName.objects.filter(pk__in=same).delete()
        if name:
            IntentGroupName.objects.create(
                project=project,
                name=name,
                centroid=centre.astype(np.float32),
                provider_key=ref.check.baseline.provider_key if ref.check.baseline else "",
                named_on=ref.check,
                updated_at=timezone.now(),
            )
    return name


# --- Review ------------------------------------------------------------------------------------


def intent_group_review_batch(*, ref: GroupRef, name: str = "") -> str:
    label = name or ref.group.get("label") or f"group {ref.index + 1}"
    return f"new intent: {label} (check {ref.check.pk})"[:200]


def intent_group_send_to_review(
    *,
    project: Project,
    ref: GroupRef,
    size: int = REVIEW_SAMPLE,
    requested_by: AbstractBaseUser | None = None,
    seed: int = 0,
) -> tuple[str, int]:
    """Queue a sample of the group (its examples, then a uniform draw of the rest) for review.
    Returns the review batch and how many calls were newly queued."""
    if not 1 <= size <= 200:
        raise ApplicationError("size: between 1 and 200", field="size")
    members = intent_group_call_ids(ref=ref)
    examples = [i for i in _example_ids(ref.group) if i in set(members)][:size]
    rest = [i for i in members if i not in set(examples)]
    room = size - len(examples)
    if room > 0 and rest:
        picks = np.random.default_rng(seed).choice(len(rest), min(room, len(rest)), replace=False)
        examples += [rest[int(i)] for i in np.sort(picks)]
    (name,) = intent_group_names(project=project, groups=[ref.group])
    batch = intent_group_review_batch(ref=ref, name=name)
    queued = review_request_create(
        project_id=project.pk, call_ids=examples, batch=batch, requested_by=requested_by
    )
    return batch, queued


# --- Check now ---------------------------------------------------------------------------------


def drift_check_request(*, project: Project) -> int:
    """Queue the drift check of the project's current window on the drift worker (by task name);
    a window already checked keeps its stored result. Returns the monitor id."""
    monitor = drift_monitor_ensure(project=project)
    transaction.on_commit(lambda: enqueue.drift_check(monitor.pk))
    return monitor.pk
