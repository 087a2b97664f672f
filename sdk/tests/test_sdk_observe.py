"""@observe on every kind of function; traces; exceptions; sampling; feedback; redaction."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import driftline
import pytest
from driftline._redact import build_redactor


def test_nested_calls_form_one_trace(sdk: Any) -> None:
    @driftline.observe(name="retrieve", kind="retrieval")
    def retrieve(q: str) -> list[str]:
        return ["doc"]

    @driftline.observe
    def answer(question: str) -> str:
        retrieve(question)
        driftline.update_current_call(user_id="u1", session_id="s1", tags=["beta"])
        return "42"

    assert answer("why?") == "42"
    driftline.flush(5)
    root = sdk.by_name("test_nested_calls_form_one_trace.<locals>.answer")
    child = sdk.by_name("retrieve")
    assert "parent_id" not in root["body"]
    assert child["body"]["parent_id"] == root["id"]
    assert child["body"]["trace_id"] == root["body"]["trace_id"] == root["id"].replace("-", "")
    assert child["body"]["kind"] == "retrieval"
    assert root["body"]["prompt"] == "why?"
    assert root["body"]["response"] == "42"
    assert (root["body"]["user_id"], root["body"]["session_id"]) == ("u1", "s1")
    assert root["body"]["tags"] == ["beta"]


def test_traces_stay_correct_across_asyncio_tasks(sdk: Any) -> None:
    @driftline.observe(name="leaf")
    async def leaf(i: int) -> int:
        await asyncio.sleep(0.001 * (5 - i))
        return i

    @driftline.observe(name="root")
    async def root(tag: str) -> list[int]:
        return list(await asyncio.gather(*(leaf(i) for i in range(5))))

    async def main() -> None:
        await asyncio.gather(root("a"), root("b"), root("c"))

    asyncio.run(main())
    driftline.flush(5)
    roots = {e["id"]: e for e in sdk.calls() if e["body"]["name"] == "root"}
    leaves = [e for e in sdk.calls() if e["body"]["name"] == "leaf"]
    assert len(roots) == 3
    assert len(leaves) == 15
    for leaf_event in leaves:
        parent = roots[leaf_event["body"]["parent_id"]]
        assert leaf_event["body"]["trace_id"] == parent["body"]["trace_id"]
    per_root = dict.fromkeys(roots, 0)
    for leaf_event in leaves:
        per_root[leaf_event["body"]["parent_id"]] += 1
    assert set(per_root.values()) == {5}


def test_exception_is_recorded_and_reraised_unchanged(sdk: Any) -> None:
    original = KeyError("missing")

    @driftline.observe(name="fails")
    def fails() -> None:
        raise original

    with pytest.raises(KeyError) as info:
        fails()
    assert info.value is original
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "fails"  # the raising frame is still the last one
    driftline.flush(5)
    body = sdk.by_name("fails")["body"]
    assert body["status"] == "error"
    assert body["error_type"] == "KeyError"
    assert body["error"] == "'missing'"


def test_async_exception(sdk: Any) -> None:
    @driftline.observe(name="afails")
    async def afails() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        asyncio.run(afails())
    driftline.flush(5)
    assert sdk.by_name("afails")["body"]["error_type"] == "ValueError"


def test_generator_output_joined_and_ttft_recorded(sdk: Any) -> None:
    @driftline.observe(name="stream")
    def stream(n: int) -> Iterator[str]:
        for i in range(n):
            yield f"w{i} "
        return None

    @driftline.observe(name="inner")
    def inner() -> str:
        return "x"

    @driftline.observe(name="stream_calls")
    def stream_calls() -> Iterator[str]:
        yield inner()

    assert list(stream(3)) == ["w0 ", "w1 ", "w2 "]
    assert list(stream_calls()) == ["x"]
    driftline.flush(5)
    body = sdk.by_name("stream")["body"]
    assert body["response"] == "w0 w1 w2 "
    assert 0 <= body["ttft_ms"] <= body["latency_ms"]
    assert sdk.by_name("inner")["body"]["parent_id"] == sdk.by_name("stream_calls")["id"]


def test_generator_send_and_early_close(sdk: Any) -> None:
    @driftline.observe(name="echo")
    def echo() -> Any:
        received = yield "ready"
        while True:
            received = yield f"got {received}"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send(1) == "got 1"
    gen.close()
    driftline.flush(5)
    body = sdk.by_name("echo")["body"]
    assert body["status"] == "ok"
    assert body["response"] == "readygot 1"


def test_generator_exception(sdk: Any) -> None:
    @driftline.observe(name="gen_fails")
    def gen_fails() -> Iterator[int]:
        yield 1
        raise RuntimeError("mid-stream")

    with pytest.raises(RuntimeError, match="mid-stream"):
        list(gen_fails())
    driftline.flush(5)
    assert sdk.by_name("gen_fails")["body"]["status"] == "error"


def test_async_generator(sdk: Any) -> None:
    @driftline.observe(name="agen")
    async def agen(n: int) -> AsyncIterator[str]:
        for i in range(n):
            await asyncio.sleep(0)
            yield str(i)

    async def main() -> list[str]:
        return [x async for x in agen(4)]

    assert asyncio.run(main()) == ["0", "1", "2", "3"]
    driftline.flush(5)
    body = sdk.by_name("agen")["body"]
    assert body["response"] == "0123"
    assert "ttft_ms" in body


def test_decorated_functions_keep_their_metadata() -> None:
    @driftline.observe
    def documented(a: int) -> int:
        """Docs."""
        return a

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docs."
    assert documented(3) == 3  # not initialised: plain call


def test_capture_flags_and_methods(sdk: Any) -> None:
    class Bot:
        @driftline.observe(name="method")
        def reply(self, text: str) -> str:
            return text.upper()

        @driftline.observe(name="secret", capture_input=False, capture_output=False)
        def secret(self, text: str) -> str:
            return text

    bot = Bot()
    bot.reply("hi")
    bot.secret("classified")
    driftline.flush(5)
    assert sdk.by_name("method")["body"]["prompt"] == "hi"
    secret = sdk.by_name("secret")["body"]
    assert "prompt" not in secret
    assert "response" not in secret


def test_messages_argument_is_recorded_and_snapshotted(sdk: Any) -> None:
    @driftline.observe(name="chat")
    def chat(messages: list[dict[str, str]]) -> str:
        return "answer"

    history = [{"role": "user", "content": "hello"}]
    reply = chat(history)
    history.append({"role": "assistant", "content": reply})  # the app mutates it right after
    driftline.flush(5)
    assert sdk.by_name("chat")["body"]["messages"] == [{"role": "user", "content": "hello"}]


# ----- sampling --------------------------------------------------------------------------


def _init_sampled(sdk: Any, rate: float) -> None:
    driftline.init(api_key="k", host=sdk.url, spool_dir=False, sample_rate=rate)


def test_sample_rate_zero_keeps_errors_and_their_whole_trace(sdk: Any) -> None:
    _init_sampled(sdk, 0.0)

    @driftline.observe(name="ok_step")
    def ok_step() -> int:
        return 1

    @driftline.observe(name="bad_step")
    def bad_step() -> None:
        raise ValueError("boom")

    @driftline.observe(name="pipeline")
    def pipeline() -> None:
        ok_step()
        bad_step()

    for _ in range(10):
        ok_step()  # sampled out
    with pytest.raises(ValueError, match="boom"):
        pipeline()
    result = driftline.flush(5)
    names = sorted(e["body"]["name"] for e in sdk.calls())
    assert names == ["bad_step", "ok_step", "pipeline"]  # the error's trace, complete
    assert result.sampled_out == 10
    assert result.dropped == {}


def test_negative_feedback_brings_back_a_sampled_out_call(sdk: Any) -> None:
    _init_sampled(sdk, 0.0)
    ids: dict[str, str] = {}

    @driftline.observe(name="answer")
    def answer(q: str) -> str:
        ids[q] = driftline.current_call_id() or ""
        return "a"

    answer("liked")
    answer("disliked")
    answer("labelled")
    driftline.feedback(ids["liked"], score=1.0)  # positive: the call stays out, so does this
    driftline.feedback(ids["disliked"], score=0.0, comment="wrong")
    driftline.feedback(ids["labelled"], label="thumbs_down")
    result = driftline.flush(5)
    sent_calls = {e["id"] for e in sdk.calls()}
    assert sent_calls == {ids["disliked"], ids["labelled"]}
    feedback = {e["body"]["call_id"]: e["body"] for e in sdk.feedbacks()}
    assert set(feedback) == {ids["disliked"], ids["labelled"]}
    assert feedback[ids["disliked"]]["score"] == 0.0
    assert result.sampled_out == 2  # "liked" and its feedback


def test_sampling_is_per_trace_and_roughly_the_rate(sdk: Any) -> None:
    _init_sampled(sdk, 0.3)

    @driftline.observe(name="child")
    def child() -> None:
        return None

    @driftline.observe(name="parent")
    def parent() -> None:
        child()

    for _ in range(400):
        parent()
    driftline.flush(5)
    parents = [e for e in sdk.calls() if e["body"]["name"] == "parent"]
    children = [e for e in sdk.calls() if e["body"]["name"] == "child"]
    assert 60 < len(parents) < 180
    assert {c["body"]["parent_id"] for c in children} == {p["id"] for p in parents}


def test_feedback_validation(sdk: Any) -> None:
    assert driftline.feedback("0b8e8a8e-0000-4000-8000-000000000000") is None
    fid = driftline.feedback("0b8e8a8e-0000-4000-8000-000000000000", label="good", user_id="u")
    assert fid is not None
    driftline.flush(5)
    (event,) = sdk.feedbacks()
    assert event["id"] == fid
    assert event["body"]["label"] == "good"
    assert event["body"]["source"] == "end_user"


# ----- redaction --------------------------------------------------------------------------


def test_builtin_redactors() -> None:
    redact = build_redactor("default")
    assert redact is not None
    text = (
        "mail jane.doe@example.co.uk, call +44 20 7946 0958 or (555) 123-4567, "
        "card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnop1234 and "
        "Authorization: Bearer abcdefghijklmnopqrstuv, api_key=supersecret99"
    )
    out = redact(text)
    for secret in (
        "jane.doe",
        "7946",
        "123-4567",
        "4111",
        "sk-proj",
        "abcdefghijklmnopqrstuv",
        "supersecret99",
    ):
        assert secret not in out, out
    assert "[EMAIL]" in out
    assert "[PHONE]" in out
    assert "[CARD]" in out
    assert "[API_KEY]" in out
    # Not everything that has digits is personal data.
    assert (
        redact("order 12345 on 2024-01-15, total 99.50") == "order 12345 on 2024-01-15, total 99.50"
    )
    assert redact("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"  # fails Luhn
    only_email = build_redactor(["email"])
    assert only_email is not None
    assert only_email("a@b.io 4111111111111111") == "[EMAIL] 4111111111111111"


def test_redaction_runs_before_sending(sdk: Any) -> None:
    driftline.init(
        api_key="k",
        host=sdk.url,
        spool_dir=False,
        redact=["email", lambda s: s.replace("Acme", "[ORG]")],
    )

    @driftline.observe(name="leaky")
    def leaky(messages: list[dict[str, str]]) -> str:
        raise RuntimeError("failed for bob@acme.com")

    with pytest.raises(RuntimeError):
        leaky([{"role": "user", "content": "I am bob@acme.com from Acme"}])
    driftline.flush(5)
    raw = json.dumps(sdk.calls())
    assert "bob@acme.com" not in raw
    assert "Acme" not in raw
    body = sdk.by_name("leaky")["body"]
    assert body["messages"][0]["content"] == "I am [EMAIL] from [ORG]"
    assert body["error"] == "failed for [EMAIL]"


def test_non_finite_numbers_and_odd_keys_do_not_poison_a_batch(sdk: Any) -> None:
    @driftline.observe(name="odd")
    def odd() -> dict[Any, Any]:
        driftline.update_current_call(metadata={"score": float("nan")}, kind="nonsense")
        return {"inf": float("inf"), (1, 2): "tuple key"}

    odd()
    result = driftline.flush(5)
    assert (result.sent, result.dropped) == (1, {}), result
    body = sdk.by_name("odd")["body"]
    assert body["metadata"] == {"score": None}
    assert body["kind"] == "span"
    assert body["response"] == '{"inf": Infinity}'  # text, as Python would print it
