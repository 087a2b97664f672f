"""Judge clients: one request to a provider, one strictly parsed verdict.

A client is a plug-in: subclass :class:`JudgeClient`, implement :meth:`JudgeClient.judge`, and
:func:`register` it under its provider name. Clients know no Django models; they get plain
values and raise :class:`JudgeError` with ``kind`` saying what the caller should do:

* ``auth`` (401/403) and ``model`` (unknown model): permanent; the evaluator pauses itself.
* ``transient`` (429, 5xx, 529, timeouts, connection errors): retry, after ``retry_after``
  seconds when the provider said so (``Retry-After``).
* ``malformed``: the model answered, but not in the schema; recorded as an evaluation error,
  never as a score.
* ``request``: any other refusal (400, a refused URL): the job fails, the evaluator keeps going.

Every outbound request goes through :mod:`apps.lib.http` (SSRF guard, timeouts, size cap).
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from apps.lib import http

ErrorKind = Literal["auth", "model", "transient", "malformed", "request"]
ScoreKind = Literal["numeric", "boolean", "categorical"]

JUDGE_USER_AGENT = "Driftline-Judge/1.0"


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True)
class Verdict:
    """A parsed answer: ``value`` on [0, 1] (boolean: 1.0 / 0.0), or a ``label``."""

    value: float | None
    label: str
    reason: str
    passed: bool | None


@dataclass
class JudgeOutcome:
    """What one request produced; kept on a judge-call row whether it succeeded or not."""

    verdict: Verdict | None = None
    error: JudgeError | None = None
    usage: Usage = field(default_factory=Usage)
    http_status: int | None = None
    raw_answer: str = ""
    latency_ms: float = 0.0
    request_sent: bool = True


class JudgeError(Exception):
    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.http_status = http_status
        self.retry_after = retry_after
        # Set when the answer was malformed but its usage was readable (it was still paid for).
        self.usage: Usage | None = None

    @property
    def pauses_evaluator(self) -> bool:
        return self.kind in ("auth", "model")


@dataclass(frozen=True)
class ScoreSpec:
    score_type: ScoreKind
    labels: tuple[str, ...] = ()

    def json_schema(self) -> dict[str, Any]:
        """The answer's JSON schema (strict: every property required, nothing else allowed)."""
        verdict: dict[str, Any]
        if self.score_type == "numeric":
            verdict = {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "0 worst, 1 best",
            }
            name = "score"
        elif self.score_type == "boolean":
            verdict = {"type": "boolean", "description": "true when the response passes"}
            name = "pass"
        else:
            verdict = {"type": "string", "enum": list(self.labels)}
            name = "label"
        return {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "one or two sentences"},
                name: verdict,
            },
            "required": ["reason", name],
            "additionalProperties": False,
        }

    def parse(self, answer: Any) -> Verdict:
        """The verdict in ``answer`` (a decoded JSON object), or ``JudgeError("malformed")``."""
        if not isinstance(answer, dict):
            raise JudgeError("answer is not a JSON object", kind="malformed")
        reason = answer.get("reason")
        if not isinstance(reason, str):
            raise JudgeError("answer has no string 'reason'", kind="malformed")
        reason = reason.strip()[:4000]
        if self.score_type == "numeric":
            score = answer.get("score")
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise JudgeError("answer has no numeric 'score'", kind="malformed")
            if not math.isfinite(score) or not 0.0 <= score <= 1.0:
                raise JudgeError(f"'score' {score!r} is outside 0..1", kind="malformed")
            extra = set(answer) - {"reason", "score"}
            if extra:
                raise JudgeError(f"unexpected keys {sorted(extra)}", kind="malformed")
            return Verdict(float(score), "", reason, float(score) >= 0.5)
        if self.score_type == "boolean":
            passed = answer.get("pass")
            if not isinstance(passed, bool):
                raise JudgeError("answer has no boolean 'pass'", kind="malformed")
            if set(answer) - {"reason", "pass"}:
                raise JudgeError("unexpected keys in the answer", kind="malformed")
            return Verdict(1.0 if passed else 0.0, "pass" if passed else "fail", reason, passed)
        label = answer.get("label")
        if not isinstance(label, str) or label not in self.labels:
            raise JudgeError(
                f"'label' {label!r} is not one of {list(self.labels)}", kind="malformed"
            )
        if set(answer) - {"reason", "label"}:
            raise JudgeError("unexpected keys in the answer", kind="malformed")
        return Verdict(None, label, reason, None)


@dataclass(frozen=True)
class JudgeRequest:
    base_url: str
    api_key: str
    model: str
    system: str
    user: str
    spec: ScoreSpec
    timeout: float = 30.0
    allow_private: bool = False
    max_tokens: int = 512


def decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError) as exc:
        raise JudgeError(f"answer is not valid JSON: {exc}", kind="malformed") from exc


def classify_status(response: http.HttpResponse) -> JudgeError | None:
    """The error an HTTP status means, or None for a 2xx."""
    if response.ok:
        return None
    status = response.status
    message = _error_message(response)
    if status in (401, 403):
        return JudgeError(f"judge answered {status}: {message}", kind="auth", http_status=status)
    lowered = message.lower()
    unknown_model = "model" in lowered and any(
        phrase in lowered for phrase in ("not found", "does not exist", "unknown", "invalid model")
    )
    if status == 404 or (status == 400 and unknown_model):
        return JudgeError(
            f"unknown model or endpoint ({status}): {message}", kind="model", http_status=status
        )
    if status in (408, 409, 425, 429) or status >= 500:
        return JudgeError(
            f"judge answered {status}: {message}",
            kind="transient",
            http_status=status,
            retry_after=http.parse_retry_after(response.headers.get("retry-after")),
        )
    return JudgeError(f"judge answered {status}: {message}", kind="request", http_status=status)


def _error_message(response: http.HttpResponse) -> str:
    text = response.text[:500]
    try:
        body = json.loads(response.body)
    except ValueError:
        return text.strip() or "(no body)"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
        if isinstance(body.get("message"), str):
            return str(body["message"])[:500]
    return text.strip()


class JudgeClient(ABC):
    provider: ClassVar[str]

    @abstractmethod
    def build(self, request: JudgeRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL, headers and JSON body of the request."""

    @abstractmethod
    def read(self, body: Any, spec: ScoreSpec) -> tuple[Any, Usage, str]:
        """The structured answer object, the usage and the raw answer text from a 2xx body."""

    def judge(self, request: JudgeRequest) -> JudgeOutcome:
        """Send one request; never raises (the error is on the outcome)."""
        url, headers, payload = self.build(request)
        headers = {"User-Agent": JUDGE_USER_AGENT, **headers}
        started = time.monotonic()
        outcome = JudgeOutcome()
        try:
            response = http.post_json(
                url,
                json.dumps(payload).encode(),
                headers=headers,
                timeout=request.timeout,
                allow_private=request.allow_private,
            )
        except http.UnsafeURLError as exc:
            outcome.error = JudgeError(f"base URL refused: {exc}", kind="auth")
            outcome.request_sent = False
        except http.HttpRequestError as exc:
            outcome.error = JudgeError(str(exc), kind="transient")
            outcome.request_sent = exc.request_sent
        else:
            outcome.http_status = response.status
            outcome.raw_answer = response.text[:65536]
            outcome.error = classify_status(response)
            if outcome.error is None:
                try:
                    body = decode_json(response.text)
                    answer, outcome.usage, outcome.raw_answer = self.read(body, request.spec)
                    outcome.verdict = request.spec.parse(answer)
                except JudgeError as exc:
                    if exc.usage is not None:
                        outcome.usage = exc.usage
                    outcome.error = exc
        outcome.latency_ms = (time.monotonic() - started) * 1000.0
        return outcome


_CLIENTS: dict[str, JudgeClient] = {}


def register(client: JudgeClient) -> JudgeClient:
    _CLIENTS[client.provider] = client
    return client


def client_for(provider: str) -> JudgeClient:
    from apps.evaluators.judges import anthropic, openai  # noqa: F401  (they register)

    try:
        return _CLIENTS[provider]
    except KeyError as exc:
        raise JudgeError(f"no judge client for provider {provider!r}", kind="request") from exc


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
