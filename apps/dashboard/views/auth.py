"""Sign-in, sign-out and the header's project switcher."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts.selectors import project_list_for_user
from apps.dashboard.access import SESSION_KEY


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
