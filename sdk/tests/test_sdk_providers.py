"""wrap_openai / wrap_anthropic with the real client packages against a fake provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import driftline
import pytest
from sdk_fake_provider import FakeProvider

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "say hello"},
]


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.stop()


def _openai(provider: FakeProvider, async_: bool = False) -> Any:
    cls = openai.AsyncOpenAI if async_ else openai.OpenAI
    return driftline.wrap_openai(
        cls(api_key="sk-test", base_url=provider.url + "/v1", max_retries=0)
    )


def _anthropic(provider: FakeProvider, async_: bool = False) -> Any:
    cls = anthropic.AsyncAnthropic if async_ else anthropic.Anthropic
    return driftline.wrap_anthropic(
        cls(api_key="sk-ant-test", base_url=provider.url, max_retries=0)
    )


def _only_call(sdk: Any) -> dict[str, Any]:
    driftline.flush(5)
    calls = sdk.calls()
    assert len(calls) == 1, calls
    body: dict[str, Any] = calls[0]["body"]
    return body


def test_wrap_returns_the_same_client(provider: FakeProvider) -> None:
    client = openai.OpenAI(api_key="sk-test", base_url=provider.url + "/v1")
    assert driftline.wrap_openai(client) is client
    assert driftline.wrap_openai(client) is client  # twice is harmless
    aclient = anthropic.Anthropic(api_key="x", base_url=provider.url)
    assert driftline.wrap_anthropic(aclient) is aclient


def test_openai_chat(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    result = client.chat.completions.create(model="gpt-fake", messages=MESSAGES, user="end-7")
    assert result.choices[0].message.content == "Hello from the fake"
    body = _only_call(sdk)
    assert body["kind"] == "llm"
    assert body["provider"] == "openai"
    assert body["model"] == "gpt-fake"
    assert body["messages"] == MESSAGES
    assert body["prompt"] == "say hello"
    assert body["response"] == "Hello from the fake"
    assert body["user_id"] == "end-7"
    assert (body["input_tokens"], body["output_tokens"], body["total_tokens"]) == (10, 3, 13)
    assert (body["cached_tokens"], body["reasoning_tokens"]) == (4, 1)
    assert body["latency_ms"] > 0


def test_openai_chat_stream_asks_for_usage_and_hides_the_extra_chunk(
    sdk: Any, provider: FakeProvider
) -> None:
    client = _openai(provider)
    stream = client.chat.completions.create(model="gpt-fake", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)  # the caller keeps the provider's own type
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks)  # the usage-only chunk is hidden
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake"
    assert provider.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    body = _only_call(sdk)
    assert body["response"] == "Hello from the fake"
    assert body["input_tokens"] == 10
    assert body["output_tokens"] == 3
    assert 0 < body["ttft_ms"] <= body["latency_ms"]


def test_openai_chat_stream_caller_asked_for_usage_sees_it(
    sdk: Any, provider: FakeProvider
) -> None:
    client = _openai(provider)
    with client.chat.completions.create(
        model="gpt-fake",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].choices == []
    assert _only_call(sdk)["total_tokens"] == 13


def test_openai_stream_closed_early_is_still_recorded(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    stream = client.chat.completions.create(model="gpt-fake", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices[0].delta.content:
            break
    stream.close()
    body = _only_call(sdk)
    assert body["status"] == "ok"
    assert body["response"] == "Hello"


def test_openai_error(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="error-model", messages=MESSAGES)
    body = _only_call(sdk)
    assert body["status"] == "error"
    assert body["error_type"] == "BadRequestError"
    assert body["metadata"] == {"status_code": 400}
    assert info.value.status_code == 400


def test_openai_async_chat_and_stream(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider, async_=True)

    @driftline.observe(name="handler")
    async def handler() -> str:
        first = await client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="gpt-fake", messages=MESSAGES, stream=True
        )
        assert isinstance(stream, openai.AsyncStream)
        parts = [c.choices[0].delta.content or "" async for c in stream]
        return str(first.choices[0].message.content) + "|" + "".join(parts)

    assert asyncio.run(handler()) == "Hello from the fake|Hello from the fake"
    driftline.flush(5)
    root = sdk.by_name("handler")
    llm = [e for e in sdk.calls() if e["body"]["kind"] == "llm"]
    assert len(llm) == 2
    assert all(e["body"]["parent_id"] == root["id"] for e in llm)
    assert all(e["body"]["output_tokens"] == 3 for e in llm)
    assert {e["body"]["response"] for e in llm} == {"Hello from the fake"}


def test_openai_responses(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    result = client.responses.create(model="gpt-fake", input="hi there", instructions="be nice")
    assert result.output_text == "Hi from responses"
    body = _only_call(sdk)
    assert body["prompt"] == "hi there"
    assert body["messages"][0] == {"role": "system", "content": "be nice"}
    assert body["response"] == "Hi from responses"
    assert (body["input_tokens"], body["output_tokens"], body["cached_tokens"]) == (7, 4, 2)
    assert body["reasoning_tokens"] == 1


def test_openai_responses_stream_sync_and_async(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    events = list(client.responses.create(model="gpt-fake", input="hi", stream=True))
    assert events[-1].type == "response.completed"

    async def run() -> list[Any]:
        aclient = _openai(provider, async_=True)
        stream = await aclient.responses.create(model="gpt-fake", input="hi", stream=True)
        return [e async for e in stream]

    assert len(asyncio.run(run())) == len(events)
    driftline.flush(5)
    calls = sdk.calls()
    assert len(calls) == 2
    for call in calls:
        assert call["body"]["response"] == "Hi from responses"
        assert call["body"]["total_tokens"] == 11
        assert "ttft_ms" in call["body"]


def test_anthropic_messages(sdk: Any, provider: FakeProvider) -> None:
    client = _anthropic(provider)
    result = client.messages.create(
        model="claude-fake",
        max_tokens=50,
        system="be brief",
        messages=[{"role": "user", "content": "say bonjour"}],
        metadata={"user_id": "u-9"},
    )
    assert result.content[0].text == "Bonjour le monde"
    body = _only_call(sdk)
    assert body["provider"] == "anthropic"
    assert body["model"] == "claude-fake"
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say bonjour"},
    ]
    assert body["prompt"] == "say bonjour"
    assert body["user_id"] == "u-9"
    assert body["response"] == "Bonjour le monde"
    # input = uncached 12 + cache reads 3
    assert (body["input_tokens"], body["output_tokens"], body["cached_tokens"]) == (15, 5, 3)


def test_anthropic_stream_sync(sdk: Any, provider: FakeProvider) -> None:
    client = _anthropic(provider)
    stream = client.messages.create(
        model="claude-fake",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    assert isinstance(stream, anthropic.Stream)
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    body = _only_call(sdk)
    assert body["response"] == "Bonjour le monde"
    assert (body["input_tokens"], body["output_tokens"]) == (15, 5)
    assert 0 < body["ttft_ms"] <= body["latency_ms"]


def test_anthropic_async_and_error(sdk: Any, provider: FakeProvider) -> None:
    client = _anthropic(provider, async_=True)

    async def run() -> str:
        stream = await client.messages.create(
            model="claude-fake",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        text = ""
        async for event in stream:
            if event.type == "content_block_delta":
                text += event.delta.text
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.create(
                model="error-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        return text

    assert asyncio.run(run()) == "Bonjour le monde"
    driftline.flush(5)
    by_status = {e["body"]["status"]: e["body"] for e in sdk.calls()}
    assert by_status["ok"]["response"] == "Bonjour le monde"
    assert by_status["error"]["error_type"] == "BadRequestError"


def test_wrapped_client_without_init_is_untouched(provider: FakeProvider) -> None:
    client = _openai(provider)
    result = client.chat.completions.create(model="gpt-fake", messages=MESSAGES, stream=True)
    chunks = list(result)
    # Not initialised: no stream_options were added, so no usage chunk either.
    assert "stream_options" not in provider.requests[-1]["body"]
    assert all(c.choices for c in chunks)


def test_openai_chat_parse_is_recorded(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    result = client.chat.completions.parse(model="gpt-fake", messages=MESSAGES)
    assert result.choices[0].message.content == "Hello from the fake"
    body = _only_call(sdk)
    assert body["name"] == "openai.chat.completions.parse"
    assert body["output_tokens"] == 3


def test_anthropic_stream_helper_sync_and_async(sdk: Any, provider: FakeProvider) -> None:
    client = _anthropic(provider)
    with client.messages.stream(
        model="claude-fake", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Bonjour le monde"
    assert final.usage.output_tokens == 5

    async def run() -> str:
        aclient = _anthropic(provider, async_=True)
        async with aclient.messages.stream(
            model="claude-fake", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as astream:
            return "".join([t async for t in astream.text_stream])

    assert asyncio.run(run()) == "Bonjour le monde"
    driftline.flush(5)
    calls = sdk.calls()
    assert len(calls) == 2
    for call in calls:
        assert call["body"]["name"] == "anthropic.messages.stream"
        assert call["body"]["response"] == "Bonjour le monde"
        assert call["body"]["output_tokens"] == 5


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_openai_tool_calls_are_recorded(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    result = client.chat.completions.create(
        model="gpt-fake", messages=MESSAGES, tools=[{"type": "function", "function": WEATHER_TOOL}]
    )
    assert result.choices[0].message.tool_calls[0].function.name == "get_weather"
    body = _only_call(sdk)
    assert body["metadata"]["tool_calls"] == [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert "get_weather" in body["response"]


def test_anthropic_tool_use_is_recorded(sdk: Any, provider: FakeProvider) -> None:
    client = _anthropic(provider)
    client.messages.create(
        model="claude-fake",
        max_tokens=50,
        messages=MESSAGES,
        tools=[{"name": "get_weather", "input_schema": WEATHER_TOOL["parameters"]}],
    )
    body = _only_call(sdk)
    assert body["response"] == "Let me look."
    assert body["metadata"]["tool_calls"] == [
        {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]


def test_last_call_id_names_the_wrapped_call_for_feedback(sdk: Any, provider: FakeProvider) -> None:
    client = _openai(provider)
    client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    first = driftline.last_call_id()
    client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    second = driftline.last_call_id()
    assert first is not None
    assert second not in (None, first)
    driftline.feedback(second, score=1.0)
    driftline.flush(5)
    assert [e["id"] for e in sdk.calls()] == [first, second]
    assert [f["body"]["call_id"] for f in sdk.feedbacks()] == [second]


def test_last_call_id_follows_an_async_task(sdk: Any, provider: FakeProvider) -> None:
    client = _anthropic(provider, async_=True)

    async def ask() -> str | None:
        await client.messages.create(
            model="claude-fake", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        return driftline.last_call_id()

    before = driftline.last_call_id()
    seen = asyncio.run(ask())
    driftline.flush(5)
    assert seen == sdk.calls()[0]["id"]
    assert driftline.last_call_id() == before  # set in the task's context, not this thread's
