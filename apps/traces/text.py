"""The text of a call as people and models read it: one place for every app that needs it."""

from __future__ import annotations

from typing import Any

# Content-part types that carry text: OpenAI chat ("text"), OpenAI responses ("input_text"),
# Anthropic messages ("text").
TEXT_PART_TYPES = ("text", "input_text")


def last_user_message(messages: Any) -> str:
    """The last user turn of an OpenAI/Anthropic-style message list (text parts joined)."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") in TEXT_PART_TYPES
                )
    return ""
