"""``@observe``: one call record per invocation of a function, nested through contextvars."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from ._client import KINDS, Client, _current, state
from ._config import logger
from ._record import CallRecord, snapshot

F = TypeVar("F", bound="Callable[..., Any]")

_MAX_CHUNKS = 10_000  # stop collecting a stream's chunks past this (memory), keep timing


class _Spec:
    """What the decorator was asked to record; shared by every invocation."""

    __slots__ = (
        "capture_input", "capture_output", "kind", "metadata", "name", "params", "prompt", "tags",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        kind: str,
        capture_input: bool,
        capture_output: bool,
        tags: Sequence[str] | None,
        metadata: dict[str, Any] | None,
        params: tuple[str, ...],
        prompt: dict[str, str] | None = None,
    ) -> None:
        self.prompt = prompt
        self.name = name
        self.kind = kind
        self.capture_input = capture_input
        self.capture_output = capture_output
        self.tags = list(tags) if tags else None
        self.metadata = dict(metadata) if metadata else None
        self.params = params

    def begin(self, client: Client, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallRecord:
        rec = client.start_call(self.name, self.kind, _current.get())
        if self.capture_input:
            if args:
                rec.args = snapshot(args)
            if kwargs:
                rec.kwargs = snapshot(kwargs)
            rec.param_names = self.params
        else:
            rec.capture_input = False
        rec.capture_output = self.capture_output
        if self.tags is not None or self.metadata is not None:
            rec.set(tags=self.tags, metadata=self.metadata)
        if self.prompt:
            rec.set(**self.prompt)
        return rec


def _param_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in sig.parameters.values() if p.kind in kinds)


def _end(client: Client, rec: CallRecord, output: Any, exc: BaseException | None) -> None:
    try:
        if exc is not None:
            rec.fail(exc)
        elif rec.capture_output:
            rec.output = snapshot(output)
        client.end_call(rec)
    except Exception:
        logger.exception("driftline: could not record a call")


def _reset(token: Any) -> None:
    # Not contextlib.suppress: this runs on every observed call and try/except costs nothing.
    try:  # noqa: SIM105
        _current.reset(token)
    except (ValueError, RuntimeError):
        # A token from another context (a coroutine resumed elsewhere): nothing to restore here.
        pass


def _joined(chunks: list[Any]) -> Any:
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    return chunks


def _wrap(fn: F, spec: _Spec) -> F:
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_gen(fn, spec)
    if inspect.isgeneratorfunction(fn):
        return _wrap_gen(fn, spec)
    if inspect.iscoroutinefunction(fn):
        return _wrap_async(fn, spec)
    return _wrap_sync(fn, spec)


def _wrap_sync(fn: F, spec: _Spec) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = state.client
        if client is None:
            return fn(*args, **kwargs)
        try:
            rec = spec.begin(client, args, kwargs)
            token = _current.set(rec)
        except Exception:
            logger.exception("driftline: could not start a call record")
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _reset(token)
            _end(client, rec, None, exc)
            raise
        _reset(token)
        _end(client, rec, result, None)
        return result

    return wrapper  # type: ignore[return-value]


def _wrap_async(fn: F, spec: _Spec) -> F:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = state.client
        if client is None:
            return await fn(*args, **kwargs)
        try:
            rec = spec.begin(client, args, kwargs)
            token = _current.set(rec)
        except Exception:
            logger.exception("driftline: could not start a call record")
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _reset(token)
            _end(client, rec, None, exc)
            raise
        _reset(token)
        _end(client, rec, result, None)
        return result

    return wrapper  # type: ignore[return-value]


def _wrap_gen(fn: F, spec: _Spec) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = state.client
        if client is None:
            return (yield from fn(*args, **kwargs))
        try:
            rec = spec.begin(client, args, kwargs)
        except Exception:
            logger.exception("driftline: could not start a call record")
            return (yield from fn(*args, **kwargs))
        gen = fn(*args, **kwargs)
        chunks: list[Any] = []
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            # The call is "current" only while the generator's own code runs.
            token = _current.set(rec)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                _reset(token)
                _end(client, rec, _joined(chunks), None)
                return stop.value
            except BaseException as exc:
                _reset(token)
                _end(client, rec, None, exc)
                raise
            _reset(token)
            rec.mark_first_token()
            if spec.capture_output and len(chunks) < _MAX_CHUNKS:
                chunks.append(item)
            try:
                to_send = yield item
            except GeneratorExit:
                # The consumer stopped early (break, close, garbage collection): record the part
                # it received as a successful call.
                try:
                    gen.close()
                finally:
                    _end(client, rec, _joined(chunks), None)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper  # type: ignore[return-value]


def _wrap_async_gen(fn: F, spec: _Spec) -> F:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        client = state.client
        rec: CallRecord | None = None
        if client is not None:
            try:
                rec = spec.begin(client, args, kwargs)
            except Exception:
                logger.exception("driftline: could not start a call record")
        agen = fn(*args, **kwargs)
        chunks: list[Any] = []
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = _current.set(rec) if rec is not None else None
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = await agen.athrow(exc)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                if token is not None:
                    _reset(token)
                if client is not None and rec is not None:
                    _end(client, rec, _joined(chunks), None)
                return
            except BaseException as exc:
                if token is not None:
                    _reset(token)
                if client is not None and rec is not None:
                    _end(client, rec, None, exc)
                raise
            if token is not None:
                _reset(token)
            if rec is not None:
                rec.mark_first_token()
                if spec.capture_output and len(chunks) < _MAX_CHUNKS:
                    chunks.append(item)
            try:
                to_send = yield item
            except GeneratorExit:
                try:
                    await agen.aclose()
                finally:
                    if client is not None and rec is not None:
                        _end(client, rec, _joined(chunks), None)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper  # type: ignore[return-value]


@overload
def observe(func: F) -> F: ...


@overload
def observe(
    func: str | None = None,
    *,
    name: str | None = None,
    kind: str = "span",
    capture_input: bool = True,
    capture_output: bool = True,
    tags: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
) -> Callable[[F], F]: ...


def observe(
    func: F | str | None = None,
    *,
    name: str | None = None,
    kind: str = "span",
    capture_input: bool = True,
    capture_output: bool = True,
    tags: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
) -> F | Callable[[F], F]:
    """Record every call of the decorated function (sync, async, generator, async generator).

    Usable bare (``@observe``) or with options (``@observe(name="rag", kind="chain")``).
    ``capture_input``/``capture_output`` control whether arguments and the return value (a
    stream's chunks, joined when they are strings) are sent. Exceptions are recorded (status
    ``error``, type and message) and re-raised unchanged. Calls made inside form one trace.
    ``prompt_name``/``prompt_version`` link the call to a prompt template version (see
    ``register_prompt``).
    """
    prompt = {
        k: str(v)
        for k, v in (("prompt_name", prompt_name), ("prompt_version", prompt_version))
        if v
    }
    if isinstance(func, str):
        name, func = func, None
    if kind not in KINDS:
        logger.warning("driftline: unknown kind %r, using 'span' (known: %s)", kind, sorted(KINDS))
        kind = "span"

    def decorate(fn: F) -> F:
        try:
            spec = _Spec(
                name or str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "call")),
                kind,
                capture_input,
                capture_output,
                tags,
                metadata,
                _param_names(fn),
                prompt or None,
            )
            return _wrap(fn, spec)
        except Exception:
            logger.exception("driftline: could not decorate %r; left as is", fn)
            return fn

    if func is not None:
        return decorate(func)
    return decorate
