"""UI-only writes: reviewer labels, and thin wrappers that check the person's role before
calling the owning app's services (keys, members, projects, price overrides)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import ApiKey, Invitation, Membership, Organization, Project
from apps.accounts.services import (
    CreatedInvitation,
    CreatedKey,
    api_key_create,
    api_key_revoke,
    invitation_create,
    invitation_email_send,
    invitation_revoke,
    membership_set,
    project_create,
)
from apps.core.errors import ApplicationError, NotFound
from apps.dashboard.models import SavedView
from apps.drift.models import Baseline, IntentCluster
from apps.drift.selectors import intent_cluster_get
from apps.drift.services.baselines import baseline_fit_request, baseline_pin, intent_rename
from apps.quality.models import PriceOverride
from apps.traces.models import Call, Feedback, FeedbackSource


@transaction.atomic
def reviewer_label_create(
    *,
    project: Project,
    call_id: uuid.UUID,
    author: User,
    score: float,
    labels: Sequence[str] = (),
    comment: str = "",
) -> Feedback:
    """Store (or replace) this reviewer's label of a call as reviewer feedback, so it feeds the
    quality metrics beside end-user feedback. One label per reviewer and call."""
    if not 0.0 <= score <= 1.0:
        raise ApplicationError("score: between 0 and 1", field="score")
    if not Call.objects.filter(project=project, id=call_id).exists():
        raise NotFound("call: not found")
    values = {
        "score": score,
        "label": "good" if score >= 0.5 else "bad",
        "labels": list(labels)[:10],
        "comment": comment.strip()[:5000],
    }
    existing = (
        Feedback.objects.select_for_update()
        .filter(
            project=project, call_id=call_id, source=FeedbackSource.REVIEWER, author_id=author.pk
        )
        .first()
    )
    if existing is not None:
        for name, value in values.items():
            setattr(existing, name, value)
        existing.save(update_fields=list(values))
        return existing
    return Feedback.objects.create(
        project=project,
        call_id=call_id,
        source=FeedbackSource.REVIEWER,
        author_id=author.pk,
        user_id=author.get_username(),
        **values,
    )


def ui_api_key_create(
    *, project: Project, name: str, scopes: Sequence[str], user: User
) -> CreatedKey:
    return api_key_create(
        project=project, name=name.strip() or "sdk", scopes=list(scopes), created_by=user
    )


def ui_api_key_revoke(*, project: Project, key_id: int) -> ApiKey:
    api_key = ApiKey.objects.filter(project=project, pk=key_id).first()
    if api_key is None:
        raise NotFound("api key: not found")
    return api_key_revoke(api_key=api_key)


def member_set(*, organization: Organization, username: str, role: str) -> Membership:
    """Change the role of a user already in the organization.

    Users of other organizations are not reachable from here (an owner could otherwise enroll,
    or learn of, another tenant's users): one answer for "no such user" and "someone else's".
    New people join through an invitation.
    """
    username = username.strip()
    membership = (
        Membership.objects.filter(organization=organization)
        .filter(Q(user__username=username) | Q(user__email__iexact=username))
        .select_related("user")
        .first()
    )
    if membership is None or not username:
        raise ApplicationError(
            "username: not a member of this organization (new people join by invitation)",
            field="username",
        )
    return membership_set(user=membership.user, organization=organization, role=role)


def member_remove(*, organization: Organization, membership_id: int, acting: User) -> None:
    membership = Membership.objects.filter(organization=organization, pk=membership_id).first()
    if membership is None:
        raise NotFound("member: not found")
    if membership.user_id == acting.pk:
        raise ApplicationError("you cannot remove yourself", field="member")
    membership.delete()


def ui_invitation_create(
    *, organization: Organization, email: str, role: str, user: User, link_for: Callable[[str], str]
) -> tuple[CreatedInvitation, str]:
    """An invitation and its link (``link_for(token)``), e-mailed when SMTP is configured."""
    created = invitation_create(organization=organization, email=email, role=role, created_by=user)
    link = link_for(created.token)
    invitation_email_send(invitation=created.invitation, link=link)
    return created, link


def ui_invitation_revoke(*, organization: Organization, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.filter(organization=organization, pk=invitation_id).first()
    if invitation is None:
        raise NotFound("invitation: not found")
    return invitation_revoke(invitation=invitation)


def ui_project_create(*, organization: Organization, name: str, slug: str = "") -> Project:
    return project_create(organization=organization, name=name, slug=slug or None)


def price_override_set(
    *,
    project: Project,
    model_pattern: str,
    input_per_mtok: float,
    output_per_mtok: float,
    cached_input_per_mtok: float | None = None,
    reasoning_per_mtok: float | None = None,
) -> PriceOverride:
    pattern = model_pattern.strip()
    if not pattern:
        raise ApplicationError("model_pattern: required", field="model_pattern")
    try:
        override, _ = PriceOverride.objects.update_or_create(
            project=project,
            model_pattern=pattern,
            defaults={
                "input_per_mtok": input_per_mtok,
                "output_per_mtok": output_per_mtok,
                "cached_input_per_mtok": cached_input_per_mtok,
                "reasoning_per_mtok": reasoning_per_mtok,
            },
        )
    except IntegrityError as exc:  # a concurrent create of the same pattern
        raise ApplicationError("model_pattern: exists already", field="model_pattern") from exc
    return override


def price_override_delete(*, project: Project, override_id: int) -> None:
    deleted, _ = PriceOverride.objects.filter(project=project, pk=override_id).delete()
    if not deleted:
        raise NotFound("price override: not found")


# --- Drift -------------------------------------------------------------------------------------


def ui_intent_rename(*, project: Project, cluster_id: int, name: str) -> IntentCluster:
    cluster = intent_cluster_get(project=project, cluster_id=cluster_id)
    return intent_rename(cluster=cluster, name=name)


def ui_baseline_pin(*, project: Project, baseline_id: int, pinned: bool) -> Baseline:
    baseline = Baseline.objects.filter(project=project, pk=baseline_id).defer("state").first()
    if baseline is None:
        raise NotFound("baseline: not found")
    return baseline_pin(baseline=baseline, pinned=pinned)


def ui_baseline_fit(*, project: Project, release: str = "", days: int = 7) -> Baseline:
    """Ask for a new baseline (the last ``days`` days, or one release) that is pinned once
    fitted; the drift worker fits it."""
    end = timezone.now()
    return baseline_fit_request(
        project=project,
        release=release or None,
        start=None if release else end - timedelta(days=days),
        end=None if release else end,
        pin=True,
    )


# --- Saved views of the calls explorer ---------------------------------------------------------

SAVED_VIEWS_MAX = 50


def saved_view_query(raw: str) -> str:
    """A query string reduced to the explorer's own parameters (no cursor, nothing else), in a
    stable order, so a stored view can only ever be a calls-page filter."""
    from django.http import QueryDict

    from apps.dashboard.forms import CALL_VIEW_PARAMS

    source = QueryDict(raw.lstrip("?"))
    kept = QueryDict(mutable=True)
    for name in CALL_VIEW_PARAMS:
        value = source.get(name, "")
        if value:
            kept[name] = value[:1000]
    return kept.urlencode()


@transaction.atomic
def saved_view_save(*, project: Project, user: User, name: str, query: str) -> SavedView:
    """Create the person's view ``name`` in the project, or replace its query."""
    name = " ".join(name.split())[:120]
    if not name:
        raise ApplicationError("name: required", field="name")
    view = SavedView.objects.filter(project=project, user=user, name=name).first()
    if view is None:
        if SavedView.objects.filter(project=project, user=user).count() >= SAVED_VIEWS_MAX:
            raise ApplicationError(f"name: at most {SAVED_VIEWS_MAX} saved views", field="name")
        return SavedView.objects.create(
            project=project, user=user, name=name, query=saved_view_query(query)
        )
    view.query = saved_view_query(query)
    view.save(update_fields=["query", "updated_at"])
    return view


def saved_view_delete(*, project: Project, user: User, view_id: int) -> None:
    deleted, _ = SavedView.objects.filter(project=project, user=user, id=view_id).delete()
    if not deleted:
        raise NotFound("saved view: not found")
