"""Settings through Django's test client: post/redirect/get for one-time secrets, invitations
(link shown once, e-mailed through a local SMTP server when configured), the reviewer role an
invitee lands with, retention and key filters."""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from apps.accounts.models import ApiKey, Invitation, Membership
from apps.alerts.models import Channel

PASSWORD = "correct horse battery staple"


def login(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_reloading_key_created_creates_no_second_key(alice, project) -> None:
    client = login(alice)
    posted = client.post("/settings/keys/", {"name": "ci", "scopes": ["read"]})
    assert posted.status_code == 302
    assert posted["Location"] == "/settings/keys/created/"
    page = client.get("/settings/keys/created/")
    key = ApiKey.objects.get(project=project, name="ci")
    assert f"dl_{key.prefix}_" in page.content.decode()
    assert page["Cache-Control"] == "no-store"
    again = client.get("/settings/keys/created/", follow=True)
    assert f"dl_{key.prefix}_" not in again.content.decode().replace(f"dl_{key.prefix}_…", "")
    assert "shown once" in again.content.decode()
    assert ApiKey.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_channel_secret_is_shown_once_after_a_redirect(alice, project) -> None:
    client = login(alice)
    posted = client.post(
        "/settings/channels/",
        {"kind": "webhook", "name": "hook", "url": "https://example.com/hook"},
    )
    assert posted.status_code == 302
    page = client.get(posted["Location"])
    assert page.status_code == 200
    secret = re.search(r'<code id="secret">([^<]+)</code>', page.content.decode())
    assert secret
    assert len(secret.group(1)) >= 20
    assert secret.group(1) not in client.get(posted["Location"], follow=True).content.decode()
    assert Channel.objects.filter(project=project).count() == 1


def _invite(client: Client, role: str, email: str = "") -> str:
    posted = client.post("/settings/invites/", {"role": role, "email": email})
    assert posted.status_code == 302
    page = client.get(posted["Location"]).content.decode()
    link = re.search(r'<code id="invite-link" class="js-invite-link">([^<]+)</code>', page)
    assert link, page
    return link.group(1)


@pytest.mark.django_db
def test_an_invited_reviewer_signs_up_and_reaches_only_reviewer_pages(
    alice, project, organization
) -> None:
    owner = login(alice)
    link = _invite(owner, "reviewer")
    assert "/invite/" in link
    assert Invitation.objects.get().token_hash not in link
    # The link page is gone after one showing.
    gone = owner.get("/settings/invites/created/", follow=True).content.decode()
    assert "invite-link" not in gone
    path = link.split("testserver", 1)[1]
    invitee = Client()
    form = invitee.get(path)
    assert form.status_code == 200
    assert "reviewer" in form.content.decode()
    bad = invitee.post(
        path, {"username": "rosa", "password": PASSWORD, "password2": "something else"}
    )
    assert bad.status_code == 400
    done = invitee.post(path, {"username": "rosa", "password": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302
    assert done["Location"] == "/"
    membership = Membership.objects.get(user__username="rosa")
    assert (membership.organization_id, membership.role) == (organization.pk, "reviewer")
    assert invitee.get("/").status_code == 200
    assert invitee.get("/review/").status_code == 200
    assert invitee.get("/settings/").status_code == 403
    assert invitee.post("/settings/keys/", {"name": "x", "scopes": ["ingest"]}).status_code == 403
    # The link is spent.
    assert Client().get(path).status_code == 404
    again = Client().post(path, {"username": "rosa2", "password": PASSWORD, "password2": PASSWORD})
    assert again.status_code == 404
    # Signing in later works with the chosen password.
    assert Client().login(username="rosa", password=PASSWORD)


@pytest.mark.django_db
def test_only_owners_invite(bob, reviewer_user, project) -> None:
    assert login(bob).post("/settings/invites/", {"role": "owner"}).status_code == 403
    assert login(reviewer_user).post("/settings/invites/", {"role": "owner"}).status_code == 403
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_an_owner_revokes_an_invitation(alice, project, other_project) -> None:
    client = login(alice)
    link = _invite(client, "member")
    invitation = Invitation.objects.get()
    assert client.post(f"/settings/invites/{invitation.pk}/revoke/").status_code == 302
    assert Client().get(link.split("testserver", 1)[1]).status_code == 404
    # Another tenant's invitation is not reachable.
    from apps.accounts.services import invitation_create

    foreign = invitation_create(organization=other_project.organization, role="owner")
    assert client.post(f"/settings/invites/{foreign.invitation.pk}/revoke/").status_code == 404


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to accept one message, kept on the server."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost test SMTP")
        while line := self.rfile.readline():
            command = line.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 localhost")
            elif command == "DATA":
                self.reply("354 end with .")
                body = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(data.decode())
                self.server.messages.append("".join(body))  # type: ignore[attr-defined]
                self.reply("250 queued")
            elif command == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_the_link_is_emailed_when_smtp_is_configured(alice, project, settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.server_address[1]
    settings.EMAIL_USE_TLS = False
    link = _invite(login(alice), "member", email="new@example.com")
    assert Invitation.objects.get().email_status == "sent"
    (message,) = smtp_server.messages
    assert "new@example.com" in message
    assert link in message.replace("=\r\n", "")


@pytest.mark.django_db
def test_a_failed_email_is_recorded_and_the_link_still_shown(alice, project, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard: nothing listens
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 2
    link = _invite(login(alice), "member", email="new@example.com")
    assert "/invite/" in link
    assert Invitation.objects.get().email_status.startswith("failed")


@pytest.mark.django_db
def test_retention_is_editable_by_owners_and_validated(alice, bob, project) -> None:
    client = login(alice)
    assert client.post("/settings/retention/", {"retention_days": "90"}).status_code == 302
    project.refresh_from_db()
    assert project.retention_days == 90
    page = client.post("/settings/retention/", {"retention_days": "0"}, follow=True)
    assert "1 to 3650" in page.content.decode()
    project.refresh_from_db()
    assert project.retention_days == 90
    assert login(bob).post("/settings/retention/", {"retention_days": "5"}).status_code == 403


@pytest.mark.django_db
def test_keys_are_filtered_on_the_page(alice, project) -> None:
    from apps.accounts.services import api_key_create, api_key_revoke

    api_key_create(project=project, name="sdk-prod", scopes=["ingest"])
    api_key_revoke(api_key=api_key_create(project=project, name="sdk-old").api_key)
    api_key_create(project=project, name="<b>reader</b>", scopes=["read"])
    client = login(alice)
    body = client.get("/settings/?key_name=sdk&key_status=active").content.decode()
    table = body.split('id="key-table"', 1)[1].split("</table>", 1)[0]
    assert "sdk-prod" in table
    assert "sdk-old" not in table
    assert "reader" not in table
    body = client.get("/settings/?key_scope=read").content.decode()
    table = body.split('id="key-table"', 1)[1].split("</table>", 1)[0]
    assert "&lt;b&gt;reader&lt;/b&gt;" in table
    assert "sdk-prod" not in table
    body = client.get("/settings/?key_name=nothing").content.decode()
    assert "No key matches these filters." in body
