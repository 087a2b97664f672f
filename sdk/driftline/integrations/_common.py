"""Shared machinery of the provider wrappers: patch a resource method, follow a stream.

The wrappers patch methods on the client *instance* (never the provider's classes), so the caller
keeps the same object and other clients in the process are untouched. A stream is followed by
replacing the stream object's private ``_iterator`` (the Stainless-generated SDKs of OpenAI and
Anthropic both iterate through it), so the caller still holds the provider's own ``Stream`` type.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

from .._client import Client, _current, _last_model_call, state
from .._config import logger
from .._record import CallRecord, snapshot

_MARK = "__driftline_wrapped__"


def attr(obj: Any, *path: str) -> Any:
    """``obj.a.b`` for model objects or dicts; None when any step is missing."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def given(value: Any) -> bool:
    """False for None and the SDKs' ``NOT_GIVEN``/``omit`` sentinels."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def plain(value: Any) -> Any:
    """Request parameters as plain data (iterables become lists, containers copied)."""
    if isinstance(value, (list, tuple)):
        return snapshot(list(value))
    if isinstance(value, dict):
        return snapshot(value)
    if given(value) and not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
        return snapshot(list(value))
    return value


def text_of(content: Any) -> str | None:
    """The text of a chat message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [attr(p, "text") for p in content]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    return None


def last_user_text(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if attr(message, "role") == "user":
            return text_of(attr(message, "content"))
    return None


def record_tool_calls(rec: CallRecord, calls: list[dict[str, Any]]) -> None:
    """Keep the tool calls the model asked for under ``metadata.tool_calls`` (beside whatever
    metadata the app set), so the call page shows their names and arguments."""
    if not calls:
        return
    metadata = dict((rec.extra or {}).get("metadata") or {})
    metadata["tool_calls"] = snapshot(calls)
    rec.set(metadata=metadata)


def set_usage(rec: CallRecord, **tokens: Any) -> None:
    rec.set(**{k: int(v) for k, v in tokens.items() if isinstance(v, (int, float))})


class Recorder:
    """Turns one provider request/response (or stream of events) into a call record."""

    provider = ""

    def __init__(self, rec: CallRecord, kwargs: dict[str, Any]) -> None:
        self.rec = rec
        self.kwargs = kwargs
        self.parts: list[str] = []
        self.hide_usage_chunk = False

    def prepare(self) -> dict[str, Any]:
        """Record the request; may return changed kwargs (e.g. ask for streamed usage)."""
        return self.kwargs

    def response(self, result: Any) -> None:
        raise NotImplementedError

    def event(self, item: Any) -> bool:
        """Record one streamed item; return False to hide it from the caller."""
        raise NotImplementedError

    def stream_done(self) -> None:
        if self.parts and "response" not in (self.rec.extra or {}):
            self.rec.set(response="".join(self.parts))


def _finish(client: Client, rec: CallRecord, exc: BaseException | None) -> None:
    try:
        if exc is not None:
            rec.fail(exc)
            code = getattr(exc, "status_code", None)
            if isinstance(code, int):
                meta = dict((rec.extra or {}).get("metadata") or {})
                meta["status_code"] = code
                rec.set(metadata=meta)
        client.end_call(rec)
    except Exception:
        logger.exception("driftline: could not record a provider call")


def _begin(
    client: Client, recorder_cls: type[Recorder], name: str, kwargs: dict[str, Any]
) -> tuple[Recorder, dict[str, Any]]:
    rec = client.start_call(name, "llm", _current.get())
    _last_model_call.set(rec.id)
    rec.capture_input = False
    rec.capture_output = False
    rec.set(provider=recorder_cls.provider)
    recorder = recorder_cls(rec, kwargs)
    return recorder, recorder.prepare()


class _Once:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False


def _unbound_close(stream: Any) -> Callable[[], Any]:
    """The stream's own ``close`` without a strong reference back to the stream: storing a
    bound method on the instance would make a cycle, and an abandoned stream (and its HTTP
    connection) would then wait for the cyclic garbage collector instead of being freed."""
    try:
        ref = weakref.ref(stream)
        close = type(stream).close
    except (TypeError, AttributeError):
        return cast("Callable[[], Any]", stream.close)

    def call() -> Any:
        target = ref()
        return close(target) if target is not None else None

    return call


def _follow_sync(stream: Any, client: Client, recorder: Recorder) -> Any:
    rec = recorder.rec
    once = _Once()

    def finish(exc: BaseException | None) -> None:
        if not once.done:
            once.done = True
            try:
                recorder.stream_done()
            except Exception:
                logger.exception("driftline: could not read a stream's result")
            _finish(client, rec, exc)

    try:
        inner: Iterator[Any] = stream._iterator
    except Exception:
        finish(None)
        return stream

    def follow() -> Iterator[Any]:
        try:
            for item in inner:
                try:
                    show = recorder.event(item)
                except Exception:
                    logger.exception("driftline: could not read a stream event")
                    show = True
                if show:
                    yield item
        except GeneratorExit:
            finish(None)
            raise
        except BaseException as exc:
            finish(exc)
            raise
        finish(None)

    try:
        stream._iterator = follow()
        close = _unbound_close(stream)

        def patched_close() -> Any:
            try:
                return close()
            finally:
                finish(None)

        stream.close = patched_close
    except Exception:
        logger.exception("driftline: could not follow a stream")
        finish(None)
    return stream


def _follow_async(stream: Any, client: Client, recorder: Recorder) -> Any:
    rec = recorder.rec
    once = _Once()

    def finish(exc: BaseException | None) -> None:
        if not once.done:
            once.done = True
            try:
                recorder.stream_done()
            except Exception:
                logger.exception("driftline: could not read a stream's result")
            _finish(client, rec, exc)

    try:
        inner: AsyncIterator[Any] = stream._iterator
    except Exception:
        finish(None)
        return stream

    async def follow() -> AsyncIterator[Any]:
        try:
            async for item in inner:
                try:
                    show = recorder.event(item)
                except Exception:
                    logger.exception("driftline: could not read a stream event")
                    show = True
                if show:
                    yield item
        except GeneratorExit:
            finish(None)
            raise
        except BaseException as exc:
            finish(exc)
            raise
        finish(None)

    try:
        stream._iterator = follow()
        close = _unbound_close(stream)

        async def patched_close() -> Any:
            try:
                return await close()
            finally:
                finish(None)

        stream.close = patched_close
    except Exception:
        logger.exception("driftline: could not follow a stream")
        finish(None)
    return stream


def _is_async(func: Callable[..., Any], owner: Any) -> bool:
    return inspect.iscoroutinefunction(inspect.unwrap(func)) or type(owner).__name__.startswith(
        "Async"
    )


def patch(owner: Any, method: str, recorder_cls: type[Recorder], name: str) -> bool:
    """Replace ``owner.method`` (an instance attribute shadows the class's method)."""
    original = getattr(owner, method, None)
    if original is None or getattr(original, _MARK, False):
        return False

    if _is_async(original, owner):

        @functools.wraps(original)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            client = state.client
            if client is None:
                return await original(*args, **kwargs)
            try:
                recorder, call_kwargs = _begin(client, recorder_cls, name, kwargs)
            except Exception:
                logger.exception("driftline: could not record a provider call")
                return await original(*args, **kwargs)
            try:
                result = await original(*args, **call_kwargs)
            except BaseException as exc:
                _finish(client, recorder.rec, exc)
                raise
            return _after(client, recorder, result, is_async=True)

        setattr(async_wrapper, _MARK, True)
        setattr(owner, method, async_wrapper)
        return True

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = state.client
        if client is None:
            return original(*args, **kwargs)
        try:
            recorder, call_kwargs = _begin(client, recorder_cls, name, kwargs)
        except Exception:
            logger.exception("driftline: could not record a provider call")
            return original(*args, **kwargs)
        try:
            result = original(*args, **call_kwargs)
        except BaseException as exc:
            _finish(client, recorder.rec, exc)
            raise
        return _after(client, recorder, result, is_async=False)

    setattr(wrapper, _MARK, True)
    setattr(owner, method, wrapper)
    return True


def _after(client: Client, recorder: Recorder, result: Any, is_async: bool) -> Any:
    try:
        if hasattr(result, "_iterator") and hasattr(result, "response"):
            if is_async:
                return _follow_async(result, client, recorder)
            return _follow_sync(result, client, recorder)
        recorder.response(result)
    except Exception:
        logger.exception("driftline: could not read a provider response")
    _finish(client, recorder.rec, None)
    return result
