"""Judge clients against local fake OpenAI-compatible and Anthropic servers (no database)."""

from __future__ import annotations

import json

import pytest

from apps.evaluators.judges.base import JudgeRequest, ScoreSpec, client_for
from tests.evaluators.fakes import (
    Answer,
    FakeLLM,
    anthropic_answer,
    error_answer,
    openai_answer,
)

NUMERIC = ScoreSpec("numeric")


def _request(
    llm: FakeLLM, *, spec: ScoreSpec = NUMERIC, base: str = "/v1", **kw: object
) -> JudgeRequest:
    values: dict[str, object] = {
        "base_url": llm.base_url + base,
        "api_key": "sk-secret",
        "model": "gpt-4o-mini",
        "system": "You are an evaluator.",
        "user": "<call>hello</call>",
        "spec": spec,
        "timeout": 2.0,
        "allow_private": True,
    }
    values.update(kw)
    return JudgeRequest(**values)  # type: ignore[arg-type]


def test_openai_structured_answer_and_request_shape(llm: FakeLLM) -> None:
    llm.answer(
        openai_answer(
            {"reason": "Clear steps.", "score": 0.9}, prompt_tokens=321, completion_tokens=17
        )
    )
    outcome = client_for("openai").judge(_request(llm))
    assert outcome.error is None
    assert outcome.verdict is not None
    assert outcome.verdict.value == 0.9
    assert outcome.verdict.reason == "Clear steps."
    assert outcome.verdict.passed is True
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (321, 17)
    sent = llm.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer sk-secret"
    body = sent.json()
    # The instruction goes as the system message, the call as the user message.
    assert body["messages"][0] == {"role": "system", "content": "You are an evaluator."}
    assert body["messages"][1]["role"] == "user"
    schema = body["response_format"]["json_schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert schema["strict"] is True
    assert schema["schema"]["required"] == ["reason", "score"]


def test_anthropic_tool_use_answer(llm: FakeLLM) -> None:
    llm.answer(
        anthropic_answer({"reason": "Insulting.", "pass": False}, input_tokens=99, output_tokens=12)
    )
    spec = ScoreSpec("boolean")
    outcome = client_for("anthropic").judge(
        _request(llm, spec=spec, base="", model="claude-3-5-haiku-latest")
    )
    assert outcome.error is None
    assert outcome.verdict is not None
    assert (outcome.verdict.value, outcome.verdict.label, outcome.verdict.passed) == (
        0.0,
        "fail",
        False,
    )
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (99, 12)
    sent = llm.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-secret"
    assert sent.headers["anthropic-version"]
    body = sent.json()
    assert body["system"] == "You are an evaluator."
    assert body["tool_choice"] == {"type": "tool", "name": "record_evaluation"}
    assert body["tools"][0]["input_schema"]["required"] == ["reason", "pass"]


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        json.dumps({"reason": "ok"}),  # no score
        json.dumps({"reason": "ok", "score": 1.7}),  # out of range
        json.dumps({"reason": "ok", "score": "0.8"}),  # a string
        json.dumps({"reason": "ok", "score": 0.5, "extra": 1}),  # not in the schema
        json.dumps([0.5]),
    ],
)
def test_openai_malformed_answers_are_errors_not_scores(llm: FakeLLM, content: str) -> None:
    llm.answer(openai_answer(content))
    outcome = client_for("openai").judge(_request(llm))
    assert outcome.verdict is None
    assert outcome.error is not None
    assert outcome.error.kind == "malformed"
    assert outcome.usage.input_tokens == 120  # paid for all the same


def test_anthropic_without_tool_block_is_malformed(llm: FakeLLM) -> None:
    llm.answer(anthropic_answer(None))
    outcome = client_for("anthropic").judge(_request(llm, base=""))
    assert outcome.verdict is None
    assert outcome.error is not None
    assert outcome.error.kind == "malformed"
    assert outcome.usage.input_tokens == 150


def test_categorical_label_outside_the_list_is_malformed(llm: FakeLLM) -> None:
    spec = ScoreSpec("categorical", ("good", "bad"))
    llm.answer(
        openai_answer({"reason": "meh", "label": "ugly"}),
        openai_answer({"reason": "fine", "label": "good"}),
    )
    first = client_for("openai").judge(_request(llm, spec=spec))
    assert first.error is not None
    assert first.error.kind == "malformed"
    second = client_for("openai").judge(_request(llm, spec=spec))
    assert second.verdict is not None
    assert second.verdict.label == "good"
    assert llm.requests[0].json()["response_format"]["json_schema"]["schema"]["properties"][
        "label"
    ]["enum"] == ["good", "bad"]


def test_429_is_transient_with_retry_after(llm: FakeLLM) -> None:
    llm.answer(error_answer(429, "Rate limit reached", {"Retry-After": "7"}))
    outcome = client_for("openai").judge(_request(llm))
    assert outcome.error is not None
    assert (outcome.error.kind, outcome.error.retry_after, outcome.error.http_status) == (
        "transient",
        7.0,
        429,
    )
    assert not outcome.error.pauses_evaluator


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_pause(llm: FakeLLM, status: int) -> None:
    llm.answer(error_answer(status, "Incorrect API key provided"))
    outcome = client_for("openai").judge(_request(llm))
    assert outcome.error is not None
    assert outcome.error.kind == "auth"
    assert outcome.error.pauses_evaluator
    assert str(status) in outcome.error.message


def test_unknown_model_pauses(llm: FakeLLM) -> None:
    llm.answer(error_answer(404, "The model `gpt-9` does not exist"))
    outcome = client_for("openai").judge(_request(llm, model="gpt-9"))
    assert outcome.error is not None
    assert outcome.error.kind == "model"
    assert outcome.error.pauses_evaluator


def test_slow_answer_times_out_as_transient(llm: FakeLLM) -> None:
    llm.answer(Answer(200, openai_answer({"reason": "late", "score": 1}).body, delay_s=1.5))
    outcome = client_for("openai").judge(_request(llm, timeout=0.3))
    assert outcome.verdict is None
    assert outcome.error is not None
    assert outcome.error.kind == "transient"
    assert "timed out" in outcome.error.message


def test_5xx_is_transient(llm: FakeLLM) -> None:
    llm.answer(error_answer(503, "overloaded"))
    outcome = client_for("openai").judge(_request(llm))
    assert outcome.error is not None
    assert outcome.error.kind == "transient"


def test_private_base_url_refused_without_the_setting(llm: FakeLLM) -> None:
    outcome = client_for("openai").judge(_request(llm, allow_private=False))
    assert outcome.error is not None
    assert outcome.error.kind == "auth"
    assert "refused" in outcome.error.message
    assert llm.requests == []  # nothing sent
