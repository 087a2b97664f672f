"""Settings: projects, members and roles, API keys, alert channels, price overrides.

Reading the page and managing keys, channels and prices needs ``admin`` (owners and members;
reviewers get 403); changing members, inviting people, retention and creating projects needs
``owner``. Every POST answers with a redirect; a secret made by one (a key, a signing secret, an
invitation link) waits in the session for the page that shows it once, so reloading that page
creates nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings as django_settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.models import Membership, Scope
from apps.accounts.selectors import api_key_list, invitation_list, project_list_for_user
from apps.accounts.services import project_retention_set
from apps.alerts.selectors import channel_get, channel_list
from apps.alerts.services.channels import channel_create, channel_delete, channel_send_test
from apps.core.errors import ApplicationError
from apps.dashboard.access import SESSION_KEY, ProjectAccess, acting_user, project_view
from apps.dashboard.forms import (
    ApiKeyCreateForm,
    ChannelForm,
    InviteForm,
    KeyFilterForm,
    MemberForm,
    PriceOverrideForm,
    ProjectCreateForm,
    RetentionForm,
    cleaned,
)
from apps.dashboard.services import (
    member_remove,
    member_set,
    price_override_delete,
    price_override_set,
    ui_api_key_create,
    ui_api_key_revoke,
    ui_invitation_create,
    ui_invitation_revoke,
    ui_project_create,
)
from apps.dashboard.views.common import (
    flash_error,
    once_discard,
    once_pop,
    once_put,
    render_key_created,
)
from apps.quality.models import PriceOverride


@project_view("admin")
def settings_page(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    project = access.project
    once_discard(request)  # a secret whose page was never opened is not kept
    key_filter = cleaned(KeyFilterForm(request.GET))
    api_keys = api_key_list(
        project=project,
        name=key_filter["key_name"].strip(),
        scope=key_filter["key_scope"],
        active={"active": True, "revoked": False}.get(key_filter["key_status"]),
    ).select_related("created_by")
    context = {
        "projects": project_list_for_user(user=request.user),
        "members": Membership.objects.filter(organization_id=project.organization_id)
        .select_related("user")
        .order_by("user__username"),
        "api_keys": api_keys,
        "key_filter": key_filter,
        "key_filtered": any(key_filter[k] for k in ("key_name", "key_scope", "key_status")),
        "scope_choices": Scope.choices,
        "invitations": invitation_list(organization=project.organization)[:20]
        if access.is_owner
        else [],
        "invite_form": InviteForm(),
        "email_configured": bool(django_settings.EMAIL_HOST),
        "now": timezone.now(),
        "channels": channel_list(project=project),
        "prices": PriceOverride.objects.filter(project=project).order_by("model_pattern"),
        "key_form": ApiKeyCreateForm(initial={"name": "sdk", "scopes": [Scope.INGEST]}),
        "member_form": MemberForm(),
        "project_form": ProjectCreateForm(),
        "price_form": PriceOverrideForm(),
        "channel_form": ChannelForm(),
    }
    return render(request, "dashboard/settings.html", context)


def _back() -> HttpResponse:
    return redirect("dashboard:settings")


@require_POST
@project_view("admin")
def key_create(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the key a name and at least one scope.")
        return _back()
    try:
        created = ui_api_key_create(
            project=access.project,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            user=acting_user(request),
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        return _back()
    once_put(
        request,
        "key",
        {
            "raw": created.raw,
            "name": created.api_key.name,
            "scopes": list(created.api_key.scopes),
            "project_id": access.project.pk,
        },
    )
    return redirect("dashboard:key-created")


@project_view("admin")
def key_created(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    data = once_pop(request, "key")
    if data is None or data.get("project_id") != access.project.pk:
        messages.info(request, "A key is shown once only. Create another if it was not copied.")
        return _back()
    return render_key_created(
        request, access, raw=data["raw"], name=data["name"], scopes=data["scopes"]
    )


@require_POST
@project_view("admin")
def key_revoke(request: HttpRequest, access: ProjectAccess, key_id: int) -> HttpResponse:
    try:
        api_key = ui_api_key_revoke(project=access.project, key_id=key_id)
        messages.success(request, f"Key {api_key} revoked.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return _back()


@require_POST
@project_view("owner")
def member_save(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            membership = member_set(
                organization=access.project.organization,
                username=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
            )
            messages.success(request, f"{membership.user} is now {membership.role}.")
        except ApplicationError as exc:
            flash_error(request, exc)
    else:
        messages.error(request, "Name an existing user and a role.")
    return _back()


@require_POST
@project_view("owner")
def member_delete(request: HttpRequest, access: ProjectAccess, membership_id: int) -> HttpResponse:
    try:
        member_remove(
            organization=access.project.organization,
            membership_id=membership_id,
            acting=acting_user(request),
        )
        messages.success(request, "Member removed.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return _back()


@require_POST
@project_view("owner")
def invite_new(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "An invitation needs a role (and a valid e-mail, if given).")
        return _back()
    try:
        created, link = ui_invitation_create(
            organization=access.project.organization,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            user=acting_user(request),
            link_for=lambda token: request.build_absolute_uri(
                reverse("dashboard:invite-accept", args=[token])
            ),
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        return _back()
    invitation = created.invitation
    once_put(
        request,
        "invite",
        {
            "link": link,
            "role": invitation.role,
            "email": invitation.email,
            "email_status": invitation.email_status,
            "expires_at": invitation.expires_at.isoformat(),
        },
    )
    return redirect("dashboard:invite-created")


@project_view("owner")
def invite_created(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    data = once_pop(request, "invite")
    if data is None:
        messages.info(request, "An invitation link is shown once only. Invite again if needed.")
        return _back()
    data["expires_at"] = datetime.fromisoformat(data["expires_at"])
    response = render(request, "dashboard/invite_created.html", data)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@project_view("owner")
def invite_revoke(request: HttpRequest, access: ProjectAccess, invitation_id: int) -> HttpResponse:
    try:
        ui_invitation_revoke(organization=access.project.organization, invitation_id=invitation_id)
        messages.success(request, "Invitation revoked: its link no longer works.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return _back()


@require_POST
@project_view("owner")
def retention_save(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = RetentionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Retention: a whole number of days from 1 to 3650.")
        return _back()
    try:
        project = project_retention_set(
            project=access.project, days=form.cleaned_data["retention_days"]
        )
        messages.success(
            request, f"{project.name} now keeps calls for {project.retention_days} days."
        )
    except ApplicationError as exc:
        flash_error(request, exc)
    return _back()


@require_POST
@project_view("owner")
def project_new(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = ProjectCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A project needs a name (and a valid slug, if given).")
        return _back()
    try:
        project = ui_project_create(
            organization=access.project.organization,
            name=form.cleaned_data["name"],
            slug=form.cleaned_data["slug"],
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        return _back()
    request.session[SESSION_KEY] = project.slug
    messages.success(request, f"Project {project.name} created; you are looking at it now.")
    return redirect("dashboard:overview")


@require_POST
@project_view("admin")
def price_save(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = PriceOverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A price override needs a model pattern and input/output prices.")
        return _back()
    try:
        override = price_override_set(project=access.project, **form.cleaned_data)
        messages.success(request, f"Prices for {override.model_pattern} saved.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return _back()


@require_POST
@project_view("admin")
def price_delete(request: HttpRequest, access: ProjectAccess, override_id: int) -> HttpResponse:
    try:
        price_override_delete(project=access.project, override_id=override_id)
        messages.success(request, "Price override removed.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return _back()


@require_POST
@project_view("admin")
def channel_new(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    form = ChannelForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A channel needs a kind, a name and an https URL.")
        return _back()
    try:
        channel, secret = channel_create(project=access.project, **form.cleaned_data)
    except ApplicationError as exc:
        flash_error(request, exc)
        return _back()
    if secret:
        once_put(request, "channel", {"name": channel.name, "secret": secret})
        return redirect("dashboard:channel-created")
    messages.success(request, f"Channel {channel.name} added.")
    return _back()


@project_view("admin")
def channel_created(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    data = once_pop(request, "channel")
    if data is None:
        messages.info(request, "A signing secret is shown once only.")
        return _back()
    response = render(
        request, "dashboard/secret_created.html", {"channel_name": data["name"], **data}
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@project_view("admin")
def channel_remove(request: HttpRequest, access: ProjectAccess, channel_id: int) -> HttpResponse:
    try:
        channel_delete(channel=channel_get(project=access.project, channel_id=channel_id))
        messages.success(request, "Channel removed.")
    except ApplicationError as exc:
        flash_error(request, exc)
    return _back()


@require_POST
@project_view("admin")
def channel_test(request: HttpRequest, access: ProjectAccess, channel_id: int) -> HttpResponse:
    try:
        notification = channel_send_test(
            channel=channel_get(project=access.project, channel_id=channel_id)
        )
    except ApplicationError as exc:
        flash_error(request, exc)
        return _back()
    if notification.status == "sent":
        messages.success(request, "Test message sent.")
    else:
        messages.error(request, f"Test message {notification.status}: {notification.error}")
    return _back()
