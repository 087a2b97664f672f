"""Chat messages in the native shape ``{"role", "content"[, "tool_calls"]}``, from the many
shapes conventions give them (OpenAI-style messages, GenAI ``parts``, choice wrappers, indexed
flat attributes, GenAI message events). Pure; shared by span mapping and OTLP logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.ingest.otlp.values import as_str, compact, content_value, json_or_value

# GenAI message events: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-events/
MESSAGE_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
# The GenAI events whose content Driftline reads (as span events or as log records).
GENAI_CONTENT_EVENTS = frozenset({*MESSAGE_EVENT_ROLES, CHOICE_EVENT, DETAILS_EVENT})

Messages = list[dict[str, Any]]


def messages_from_attributes(attrs: Mapping[str, Any]) -> tuple[Messages, Messages]:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON or structured)."""
    return (
        message_list(json_or_value(attrs.get("gen_ai.input.messages")), "user"),
        message_list(json_or_value(attrs.get("gen_ai.output.messages")), "assistant"),
    )


def messages_from_event(name: str, payload: Any) -> tuple[Messages, Messages]:
    """The input and output messages of one GenAI event (its body, or its attributes read as
    one), for span events and log records alike."""
    if name in MESSAGE_EVENT_ROLES:
        message = _message_event(payload, MESSAGE_EVENT_ROLES[name])
        return ([message] if message else []), []
    if name == CHOICE_EVENT:
        if isinstance(payload, dict) and isinstance(payload.get("message"), dict):
            choice = payload
            payload = dict(payload["message"])
            # The choice's tool calls sit beside its message in OpenLLMetry's events.
            if choice.get("tool_calls") and not payload.get("tool_calls"):
                payload["tool_calls"] = choice["tool_calls"]
        message = message_of(payload, "assistant")
        return [], ([message] if message else [])
    if name == DETAILS_EVENT and isinstance(payload, Mapping):
        return messages_from_attributes(payload)
    return [], []


def _message_event(payload: Any, role: str) -> dict[str, Any] | None:
    # A tool message names the call it answers (``id``): kept so the call page can pair them.
    message = message_of(payload, role)
    if message and isinstance(payload, dict) and payload.get("id") and role == "tool":
        message["tool_call_id"] = as_str(payload["id"])
    return message


def event_payload(attrs: Mapping[str, Any]) -> Any:
    """A span event has attributes but no body, so the event's body is looked for in the usual
    attribute spellings: ``content``/``message``, ``gen_ai.event.content`` (JSON)."""
    if "gen_ai.event.content" in attrs:
        return json_or_value(attrs["gen_ai.event.content"])
    if "message" in attrs:
        message = json_or_value(attrs["message"])
        return {"message": message} if isinstance(message, dict) else message
    return dict(attrs)


def grouped(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``<prefix>N.<rest>`` attributes as one ``{rest: value}`` dict per N, in order of N."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    return [groups[i] for i in sorted(groups)]


def indexed_messages(
    attrs: Mapping[str, Any], prefix: str, *, default_role: str, openinference: bool
) -> Messages:
    """Messages flattened into ``<prefix>N.role|content|tool_calls.M.*`` attributes."""
    messages = []
    for fields in grouped(attrs, prefix):
        if openinference:
            fields = {k.removeprefix("message."): v for k, v in fields.items()}
        role = as_str(fields.get("role")) or default_role
        content: Any = fields.get("content")
        if content is None:
            # OpenInference multi-part content: message.contents.M.message_content.text
            parts = grouped(fields, "contents.")
            content = [p.get("message_content.text") for p in parts] or None
        message = message_of({"role": role, "content": content}, role) or {
            "role": role,
            "content": "",
        }
        calls = [
            # OpenInference nests tool_call.function.name; OpenLLMetry writes name.
            tool_call(
                {k.removeprefix("tool_call.").removeprefix("function."): v for k, v in c.items()}
            )
            for c in grouped(fields, "tool_calls.")
        ]
        if calls:
            message["tool_calls"] = calls
        call_id = fields.get("tool_call_id")
        if call_id:
            message["tool_call_id"] = as_str(call_id)
        if message["content"] or calls:
            messages.append(message)
    return messages


def tool_call(fields: Mapping[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = {"name": as_str(fields.get("name"))}
    if fields.get("id"):
        call["id"] = as_str(fields["id"])
    if "arguments" in fields:
        arguments = fields["arguments"]
        call["arguments"] = arguments if isinstance(arguments, str) else compact(arguments)
    return call


def message_list(value: Any, default_role: str) -> Messages:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    messages = []
    for item in items:
        message = message_of(item, default_role)
        if message:
            messages.append(message)
    return messages


def message_of(value: Any, default_role: str) -> dict[str, Any] | None:
    """One chat message; reads OpenAI-style messages, GenAI ``parts`` messages and choice
    wrappers (``message``)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        content = text(value)
        return {"role": default_role, "content": content} if content else None
    if isinstance(value.get("message"), dict) and "content" not in value and "parts" not in value:
        return message_of(value["message"], default_role)
    role = as_str(value.get("role")) or default_role
    calls: list[dict[str, Any]] = []
    if "parts" in value:
        parts = value["parts"] if isinstance(value["parts"], list) else [value["parts"]]
        texts = []
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "tool_call":
                calls.append(tool_call(part))
            elif isinstance(part, dict) and part.get("type") == "tool_call_response":
                role = "tool" if role == default_role else role
                texts.append(_tool_response_text(part))
            else:
                texts.append(text(part))
        content = "\n".join(t for t in texts if t)
    else:
        content = text(content_value(value.get("content")))
    for call in value.get("tool_calls") or []:
        if isinstance(call, dict):
            function = call.get("function")
            fields = function if isinstance(function, dict) else call
            calls.append(tool_call({**fields, "id": call.get("id", "")}))
    if not content and not calls:
        return None
    message: dict[str, Any] = {"role": role, "content": content}
    if calls:
        message["tool_calls"] = calls
    if role == "tool" and value.get("tool_call_id"):
        message["tool_call_id"] = as_str(value["tool_call_id"])
    return message


def _tool_response_text(part: Mapping[str, Any]) -> str:
    """A ``tool_call_response`` part's result: ``response`` in the conventions, ``result`` in
    Pydantic AI's messages."""
    response = part.get("response")
    return text(part.get("result") if response is None else response)


def text(value: Any) -> str:
    """Readable text of message content: strings as they are, text parts joined, other parts
    (images, audio) as a short placeholder so base64 blobs do not land in the prompt."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(t for t in (text(item) for item in value) if t)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in (None, "text", "input_text", "output_text", "refusal"):
            for key in ("content", "text"):
                if isinstance(value.get(key), str):
                    return str(value[key])
        if kind in ("blob", "image", "image_url", "input_audio", "file", "uri"):
            mime = value.get("mime_type") or value.get("modality") or kind
            uri = value.get("uri")
            return f"[{mime}: {uri}]" if isinstance(uri, str) else f"[{mime}]"
        if kind == "reasoning":
            return ""
        return compact(value)
    return compact(value)
