"""Slack Block Kit rendering (limits, escaping) and response mapping; no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from apps.alerts.transports import slack, webhook
from apps.alerts.transports.base import AlertMessage, ExampleCall, TransportError
from apps.lib.http import HttpResponse


def _message(**overrides) -> AlertMessage:
    fields = {
        "event": "firing",
        "severity": "critical",
        "title": "CRITICAL: Error rate",
        "rule_name": "Error rate",
        "project_name": "Support bot",
        "summary": "Error rate is 33.3% over the last 5m for release v2 (threshold > 20.0%).",
        "confidence": "10 of 30 calls; 95% interval 19.2-51.2%.",
        "figures": (("Current", "33.3%"), ("Threshold", "> 20.0%"), ("Baseline", "2.1%")),
        "labels": (("release", "v2"), ("model", "gpt-4o-mini")),
        "examples": (
            ExampleCall("0b6f1c2e-1111", "Ignore previous instructions <!channel>", "http://x/c/1"),
        ),
        "url": "http://127.0.0.1:8000/alerts/?project=support-bot&state=all#incident-1",
        "occurred_at": datetime(2026, 11, 22, 8, 0, tzinfo=UTC),
        "delivery_id": "dl-1",
        "incident_id": 1,
        "rule_id": 1,
    }
    fields.update(overrides)
    return AlertMessage(**fields)


def _all_text(payload) -> str:
    return json.dumps(payload)


def test_block_kit_carries_what_changed_confidence_numbers_examples_and_link():
    payload = slack.build_payload(_message())
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header"
    assert "Error rate" in blocks[0]["text"]["text"]
    text = _all_text(payload)
    for expected in (
        "What changed",
        "How sure",
        "33.3%",
        "Baseline",
        "release",
        "v2",
        "gpt-4o-mini",
    ):
        assert expected in text
    button = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    assert button["url"].startswith("http://127.0.0.1:8000/alerts/?project=support-bot")
    assert payload["text"]  # fallback for notifications


def test_untrusted_text_is_escaped():
    payload = slack.build_payload(
        _message(summary="a & b < c > d <@U123> <https://evil|click>", rule_name="<!here>")
    )
    text = _all_text(payload)
    assert "<!channel>" not in text
    assert "<!here>" not in text
    assert "<@U123>" not in text
    assert "&lt;!channel&gt;" in text
    assert "a &amp; b &lt; c &gt; d" in text


def test_slack_limits_are_respected():
    huge = "x" * 10_000
    message = _message(
        summary=huge,
        confidence=huge,
        figures=tuple((f"f{i}", huge) for i in range(200)),
        examples=tuple(ExampleCall(str(i), huge, "http://x") for i in range(50)),
        title="T" * 500,
    )
    payload = slack.build_payload(message)
    blocks = payload["blocks"]
    assert len(blocks) <= slack.MAX_BLOCKS
    assert blocks[-1]["type"] == "context"  # the footer survives truncation
    assert len(blocks[0]["text"]["text"]) <= slack.MAX_HEADER_TEXT
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= slack.MAX_SECTION_TEXT
        for item in block.get("fields", []):
            assert len(item["text"]) <= slack.MAX_FIELD_TEXT
        assert len(block.get("fields", [])) <= slack.MAX_FIELDS


@pytest.mark.parametrize(
    ("status", "body", "headers", "permanent", "disable", "retry_after"),
    [
        (429, "rate_limited", {"retry-after": "7"}, False, False, 7.0),
        (429, "rate_limited", {}, False, False, 1.0),
        (500, "internal", {}, False, False, None),
        (503, "", {}, False, False, None),
        (404, "channel_not_found", {}, True, True, None),
        (410, "channel_is_archived", {}, True, True, None),
        (403, "action_prohibited", {}, True, True, None),
        (403, "invalid_token", {}, True, True, None),
        (400, "invalid_token", {}, True, True, None),
        (400, "invalid_payload", {}, True, False, None),
        (400, "invalid_blocks", {}, True, False, None),
        (302, "", {"location": "http://127.0.0.1/"}, True, True, None),
    ],
)
def test_slack_response_mapping(status, body, headers, permanent, disable, retry_after):
    response = HttpResponse(status, headers, body.encode(), "https://hooks.slack.com/x")
    with pytest.raises(TransportError) as info:
        slack.check_response(response)
    error = info.value
    assert (error.permanent, error.disable_channel, error.retry_after) == (
        permanent,
        disable,
        retry_after,
    )
    assert error.http_status == status


def test_slack_200_ok():
    assert slack.check_response(HttpResponse(200, {}, b"ok", "u")) == 200


def test_webhook_signature_scheme():
    body = b'{"a":1}'
    signature = webhook.sign("s3cret-s3cret-s3cret", 1_700_000_000, body)
    assert signature.startswith("v1=")
    assert len(signature) == 3 + 64
    assert webhook.verify_signature(
        "s3cret-s3cret-s3cret", "1700000000", body, signature, now=1_700_000_100
    )
    assert not webhook.verify_signature(  # replayed too late
        "s3cret-s3cret-s3cret", "1700000000", body, signature, now=1_700_001_000
    )
    assert not webhook.verify_signature(  # body tampered
        "s3cret-s3cret-s3cret", "1700000000", b'{"a":2}', signature, now=1_700_000_100
    )
