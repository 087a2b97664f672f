"""Anthropic Messages API, structured output by a forced tool call.

``tool_choice: {"type": "tool", "name": "record_evaluation"}`` makes the model answer with one
``tool_use`` block whose ``input`` follows the schema
(https://docs.anthropic.com/en/docs/build-with-claude/tool-use). The base URL is the host
(``https://api.anthropic.com``); the client posts to ``<base_url>/v1/messages`` (or
``<base_url>/messages`` when the base URL already ends in ``/v1``). Usage: ``input_tokens``
excludes cache reads and writes (the price table's Anthropic convention).
"""

from __future__ import annotations

from typing import Any

from apps.evaluators.judges.base import (
    JudgeClient,
    JudgeError,
    JudgeRequest,
    ScoreSpec,
    Usage,
    _int,
    register,
)

TOOL_NAME = "record_evaluation"
API_VERSION = "2023-06-01"


class AnthropicJudge(JudgeClient):
    provider = "anthropic"

    def build(self, request: JudgeRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        base = request.base_url.rstrip("/")
        url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        body = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "temperature": 0,
            "system": request.system,
            "messages": [{"role": "user", "content": request.user}],
            "tools": [
                {
                    "name": TOOL_NAME,
                    "description": "Record the evaluation of the response.",
                    "input_schema": request.spec.json_schema(),
                }
            ],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }
        headers = {"x-api-key": request.api_key, "anthropic-version": API_VERSION}
        return url, headers, body

    def read(self, body: Any, spec: ScoreSpec) -> tuple[Any, Usage, str]:
        if not isinstance(body, dict):
            raise JudgeError("answer is not a JSON object", kind="malformed")
        raw = body.get("usage")
        usage = Usage()
        if isinstance(raw, dict):
            usage = Usage(
                input_tokens=_int(raw.get("input_tokens")),
                output_tokens=_int(raw.get("output_tokens")),
                cached_tokens=_int(raw.get("cache_read_input_tokens")),
                cache_write_tokens=_int(raw.get("cache_creation_input_tokens")),
            )
        blocks = body.get("content")
        if isinstance(blocks, list):
            for block in blocks:
                if (
                    isinstance(block, dict)
                    and block.get("type") == "tool_use"
                    and block.get("name") == TOOL_NAME
                ):
                    import json

                    return block.get("input"), usage, json.dumps(block.get("input"))
        error = JudgeError(f"no {TOOL_NAME} tool_use block in the answer", kind="malformed")
        error.usage = usage
        raise error


register(AnthropicJudge())
