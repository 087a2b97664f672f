"""Sign-in, sign-out, accepting an invitation, and the header's project switcher."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts.selectors import invitation_for_token, project_list_for_user
from apps.accounts.services import invitation_accept
from apps.core.errors import ApplicationError
from apps.dashboard.access import SESSION_KEY
from apps.dashboard.forms import InviteAcceptForm


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@require_POST
@login_required
def project_switch(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("project", "")
    project = project_list_for_user(user=request.user).filter(slug=slug).first()
    if project is None:
        raise Http404("project: not found")
    request.session[SESSION_KEY] = project.slug
    # Back to the page the switch came from, without its query (filters of another project).
    target = request.POST.get("next", "/").split("?", 1)[0]
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    if target.startswith("/calls/") and target != "/calls/":
        target = "/calls/"  # a call of the previous project would be a 404 here
    return redirect(target)


def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The invitee's page: choose a username and password, then land signed in with the role."""
    invitation = invitation_for_token(token=token)
    if invitation is None:
        return render(request, "registration/invite.html", {"invalid": True}, status=404)
    form = InviteAcceptForm(request.POST or None, initial={"email": invitation.email})
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                email=form.cleaned_data["email"],
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Welcome, {user.get_username()}: you joined as {invitation.role}."
            )
            return redirect("dashboard:overview")
    response = render(
        request,
        "registration/invite.html",
        {"invitation": invitation, "form": form, "error": error},
        status=400 if request.method == "POST" else 200,
    )
    response["Cache-Control"] = "no-store"
    # The token is in the URL: the site-wide Referrer-Policy "same-origin" keeps it from other
    # sites ("no-referrer" would make Chrome send "Origin: null", failing the CSRF check).
    return response
