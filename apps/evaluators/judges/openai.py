"""OpenAI-compatible chat completions (OpenAI, Azure, vLLM, Ollama, LiteLLM).

Structured output with ``response_format: {"type": "json_schema", "strict": true}``
(https://platform.openai.com/docs/guides/structured-outputs). The base URL includes the API
version prefix, as OpenAI's SDK expects it (``https://api.openai.com/v1``); the client posts to
``<base_url>/chat/completions``. Usage: ``prompt_tokens`` includes
``prompt_tokens_details.cached_tokens`` (the price table's OpenAI convention).
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
    decode_json,
    register,
)


class OpenAIJudge(JudgeClient):
    provider = "openai"

    def build(self, request: JudgeRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        url = request.base_url.rstrip("/") + "/chat/completions"
        body = {
            "model": request.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "temperature": 0,
            "max_tokens": request.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "evaluation",
                    "strict": True,
                    "schema": request.spec.json_schema(),
                },
            },
        }
        return url, {"Authorization": f"Bearer {request.api_key}"}, body

    def read(self, body: Any, spec: ScoreSpec) -> tuple[Any, Usage, str]:
        usage = _usage(body.get("usage") if isinstance(body, dict) else None)
        try:
            content = _content(body)
            return decode_json(content), usage, content
        except JudgeError as exc:
            exc.usage = usage  # a malformed answer is still paid for
            raise


def _content(body: Any) -> str:
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise JudgeError("no choices[0].message in the answer", kind="malformed") from exc
    if isinstance(message, dict) and message.get("refusal"):
        raise JudgeError(f"the judge refused: {message['refusal']}", kind="malformed")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise JudgeError("choices[0].message.content is not a string", kind="malformed")
    return content


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        cached_tokens=cached,
    )


register(OpenAIJudge())
