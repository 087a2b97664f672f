"""Slack incoming webhooks with a Block Kit message.

Limits and errors: https://api.slack.com/messaging/webhooks#handling_errors and
https://api.slack.com/reference/block-kit/blocks (50 blocks per message, 3,000 characters per
section text, 150 per header, 10 fields of 2,000). About one message per second per webhook,
answered with 429 and ``Retry-After`` beyond (https://api.slack.com/apis/rate-limits).

Prompts and responses are untrusted: every piece of dynamic text is escaped (``&``, ``<``, ``>``)
so a prompt cannot inject ``<!channel>`` mentions or links.
"""

from __future__ import annotations

import json
from typing import Any

from apps.alerts.transports.base import AlertMessage, Transport, TransportError, register
from apps.lib import http

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_EXAMPLES = 5
EXAMPLE_CHARS = 280

# Error bodies that mean the webhook itself is gone or forbidden: disable the channel.
CHANNEL_ERRORS = frozenset(
    {
        "invalid_token",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "no_active_hooks",
        "user_not_found",
        "posting_to_general_channel_denied",
    }
)

_SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_yellow_circle:", "info": ":bell:"}
_EVENT_ICON = {"resolved": ":white_check_mark:", "acknowledged": ":eyes:", "test": ":wave:"}


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only ``&``, ``<`` and ``>`` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT)}}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_payload(message: AlertMessage) -> dict[str, Any]:
    """The webhook body: a ``text`` fallback (notifications, old clients) and ``blocks``."""
    icon = _EVENT_ICON.get(message.event) or _SEVERITY_ICON.get(message.severity, ":bell:")
    header = truncate(f"{message.title}", MAX_HEADER_TEXT - 2)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        _section(f"{icon} *What changed*\n{escape(message.summary)}"),
    ]
    if message.confidence:
        blocks.append(_section(f"*How sure we are*\n{escape(message.confidence)}"))
    fields = [
        {"type": "mrkdwn", "text": truncate(f"*{escape(k)}*\n{escape(v)}", MAX_FIELD_TEXT)}
        for k, v in (*message.figures, ("Rule", message.rule_name), *message.labels)
    ]
    for start in range(0, len(fields), MAX_FIELDS):
        blocks.append({"type": "section", "fields": fields[start : start + MAX_FIELDS]})
    if message.examples:
        lines = []
        for example in message.examples[:MAX_EXAMPLES]:
            snippet = escape(truncate(_one_line(example.text), EXAMPLE_CHARS))
            lines.append(f"• <{example.url}|{escape(example.call_id[:12])}> {snippet}")
        blocks.append(_section("*Example calls*\n" + "\n".join(lines)))
    buttons = []
    if message.url:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in Driftline"},
                "url": message.url,
            }
        )
    if message.compare_url:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Compare side by side"},
                "url": message.compare_url,
            }
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    context = (
        f"Driftline · {escape(message.project_name)} · {message.occurred_at:%Y-%m-%d %H:%M} UTC"
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 1], blocks[-1]]
    fallback = truncate(f"{message.title}: {_one_line(message.summary)}", 1000)
    return {"text": escape(fallback), "blocks": blocks}


@register
class SlackTransport(Transport):
    kind = "slack"
    min_interval_s = 1.0  # "1 message per second" per incoming webhook, bursts tolerated

    def notify(self, message: AlertMessage) -> int:
        body = json.dumps(build_payload(message), ensure_ascii=False).encode("utf-8")
        try:
            response = http.post_json(self.url, body)
        except http.UnsafeURLError as exc:
            raise TransportError(str(exc), permanent=True, disable_channel=True) from exc
        except http.HttpRequestError as exc:
            raise TransportError(str(exc), permanent=False) from exc
        return check_response(response)


def check_response(response: http.HttpResponse) -> int:
    """Map Slack's answer to success or a TransportError."""
    status, text = response.status, response.text.strip()
    if status == 200:
        return status
    error = truncate(text, 200) or f"HTTP {status}"
    if status == 429:
        retry_after = http.parse_retry_after(response.headers.get("retry-after"))
        raise TransportError(
            f"rate limited by Slack ({error})",
            permanent=False,
            retry_after=retry_after if retry_after is not None else 1.0,
            http_status=status,
        )
    if status >= 500 or status == 408:
        raise TransportError(
            f"Slack answered {status}: {error}", permanent=False, http_status=status
        )
    if text in CHANNEL_ERRORS or status in (401, 403, 404, 410) or 300 <= status < 400:
        raise TransportError(
            f"Slack answered {status}: {error}",
            permanent=True,
            disable_channel=True,
            http_status=status,
        )
    # 400 invalid_payload / invalid_blocks: this message is at fault, not the channel; one
    # odd prompt must not silence every later alert, so the channel stays enabled.
    raise TransportError(f"Slack answered {status}: {error}", permanent=True, http_status=status)
