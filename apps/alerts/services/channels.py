"""Channel writes: create/update/delete with the URL policy (Slack hosts, outbound HTTP rules)
and a test send. Disabling after a permanent error is delivery's (``delivery.channel_disable``).
"""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlsplit

from django.conf import settings

from apps.accounts.models import Project
from apps.alerts.models import (
    Channel,
    ChannelKind,
    Notification,
)
from apps.alerts.services.delivery import notification_deliver
from apps.alerts.services.outbox import enqueue_deliveries
from apps.core.crypto import encrypt_str
from apps.core.errors import ApplicationError
from apps.lib import http

# Incoming webhooks live on these hosts (commercial and GovSlack).
SLACK_WEBHOOK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/…/abcd``: enough to recognise, useless to post to."""
    try:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.hostname or ''}"
    except ValueError:
        origin = ""
    tail = url.rstrip("/")[-4:] if len(url) > 24 else ""
    return f"{origin}/…{tail}" if origin else "…"


def _validate_channel_url(kind: str, url: str) -> str:
    url = (url or "").strip()
    try:
        scheme, host, _port, _path = http.check_url(url)
    except http.UnsafeURLError as exc:
        raise ApplicationError(f"url: {exc}", field="url") from exc
    literal = http.parse_ip_literal(host)
    allow_private = bool(getattr(settings, "DRIFTLINE_WEBHOOK_ALLOW_PRIVATE", False))
    if literal is not None and not allow_private and http.address_block_reason(literal):
        raise ApplicationError("url: points to a non-public address", field="url")
    if (
        kind == ChannelKind.SLACK
        and not allow_private
        and (scheme != "https" or host not in SLACK_WEBHOOK_HOSTS)
    ):
        raise ApplicationError(
            "url: a Slack incoming webhook URL starts with https://hooks.slack.com/",
            field="url",
        )
    return url


def channel_create(
    *, project: Project, kind: str, name: str, url: str, secret: str | None = None
) -> tuple[Channel, str | None]:
    """Create a channel. For a webhook, returns the signing secret (given or generated): the
    only time it is shown."""
    if kind not in ChannelKind.values:
        raise ApplicationError(f"kind: must be one of {ChannelKind.values}", field="kind")
    name = (name or "").strip()
    if not name:
        raise ApplicationError("name: required", field="name")
    url = _validate_channel_url(kind, url)
    shown: str | None = None
    secret_encrypted = ""
    if kind == ChannelKind.WEBHOOK:
        if secret is not None and len(secret) < 16:
            raise ApplicationError("secret: at least 16 characters", field="secret")
        shown = secret or f"whsec_{secrets.token_urlsafe(32)}"
        secret_encrypted = encrypt_str(shown)
    channel = Channel.objects.create(
        project=project,
        kind=kind,
        name=name[:200],
        url_encrypted=encrypt_str(url),
        url_masked=mask_url(url),
        secret_encrypted=secret_encrypted,
    )
    return channel, shown


def channel_update(
    *,
    channel: Channel,
    name: str | None = None,
    url: str | None = None,
    enabled: bool | None = None,
) -> Channel:
    fields: list[str] = []
    if name is not None:
        if not name.strip():
            raise ApplicationError("name: required", field="name")
        channel.name = name.strip()[:200]
        fields.append("name")
    if url is not None:
        url = _validate_channel_url(channel.kind, url)
        channel.url_encrypted, channel.url_masked = encrypt_str(url), mask_url(url)
        fields += ["url_encrypted", "url_masked"]
    if url is not None and enabled is None:
        enabled = True  # a new URL is the usual fix for a disabled channel
    if enabled is not None:
        channel.enabled = enabled
        fields.append("enabled")
        if enabled:
            channel.disabled_reason, channel.disabled_at, channel.paused_until = "", None, None
            fields += ["disabled_reason", "disabled_at", "paused_until"]
    if fields:
        channel.save(update_fields=[*fields, "updated_at"])
    return channel


def channel_delete(*, channel: Channel) -> None:
    channel.delete()


def channel_send_test(*, channel: Channel) -> Notification:
    """Send a test message now (in the caller's process) and return its notification row."""
    notification = Notification.objects.create(
        project_id=channel.project_id,
        channel=channel,
        event=None,
        dedupe_key=f"test:{uuid.uuid4()}",
    )
    # A test goes out even to a disabled channel: that is how one checks a fixed URL.
    outcome = notification_deliver(notification_id=notification.pk)
    if outcome.retry_in is not None:  # 429 or 5xx: the worker tries again later
        enqueue_deliveries([notification.pk], countdown=outcome.retry_in)
    notification.refresh_from_db()
    return notification
