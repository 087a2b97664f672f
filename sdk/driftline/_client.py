"""The process-wide client: configuration, sampling, feedback and the sender."""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ._config import (
    DEFAULT_HOST,
    Config,
    env_bool,
    env_float,
    env_int,
    env_str,
    logger,
    resolve_spool_dir,
)
from ._record import (
    CallRecord,
    TraceState,
    _json_default,
    build_call_body,
    iso,
    new_id,
    reseed,
)
from ._redact import build_redactor
from ._spool import Spool
from ._transport import FlushResult, Transport

if TYPE_CHECKING:
    from ._config import RedactOption

_current: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "driftline_current_call", default=None
)
# The id of the newest model call a wrapped provider client started in this context: the call
# to attach feedback to when no decorated function stands around it (see last_call_id).
_last_model_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "driftline_last_model_call", default=None
)


class _State:
    client: Client | None = None


state = _State()
_init_lock = threading.Lock()
_atexit_registered = False


class Client:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.redact = build_redactor(cfg.redact)
        self.sample_rate = min(1.0, max(0.0, cfg.sample_rate))
        # A trace is sampled when the first 32 bits of its id fall under this threshold; the id
        # is random, so this is a fair coin, and every call of a trace gets the same answer.
        self._threshold = int(self.sample_rate * 0x100000000)
        spool = Spool(cfg.spool_dir, cfg.spool_max_bytes) if cfg.spool_dir else None
        self.transport = Transport(cfg, self.encode, spool)
        # Recently sampled-out calls, kept so that an error later in the trace or negative
        # feedback can still send them.
        self._held: OrderedDict[str, CallRecord] = OrderedDict()
        self._held_lock = threading.Lock()
        self.sampled_out = 0
        self.transport.start_if_spooled()

    # ----- calls ---------------------------------------------------------------------------

    def start_call(self, name: str, kind: str, parent: CallRecord | None) -> CallRecord:
        call_id, hex_id = new_id()
        if parent is None:
            trace = TraceState(hex_id, int(hex_id[:8], 16) < self._threshold)
            return CallRecord(name, kind, None, trace, call_id)
        rec = CallRecord(name, kind, parent, parent.trace, call_id)
        inherited = parent.extra
        if inherited and ("user_id" in inherited or "session_id" in inherited):
            rec.set(user_id=inherited.get("user_id"), session_id=inherited.get("session_id"))
        return rec

    def end_call(self, rec: CallRecord) -> None:
        rec.finish()
        trace = rec.trace
        if trace.sampled:
            self.transport.enqueue(rec)
            return
        if rec.status == "error" and not trace.keep:
            trace.keep = True
            self.transport.enqueue(rec)
            self._release_trace(trace.trace_id)
            return
        if trace.keep:
            self.transport.enqueue(rec)
            return
        with self._held_lock:
            self.sampled_out += 1
            held = self._held
            held[rec.id] = rec
            if len(held) > self.cfg.sampled_buffer_size:
                held.popitem(last=False)

    def _release_trace(self, trace_id: str) -> None:
        """Send the held calls of a trace after all (an error or negative feedback arrived)."""
        with self._held_lock:
            found = [rec for rec in self._held.values() if rec.trace.trace_id == trace_id]
            for rec in found:
                del self._held[rec.id]
            self.sampled_out -= len(found)
        for rec in found:
            rec.trace.keep = True
            self.transport.enqueue(rec)

    # ----- feedback ------------------------------------------------------------------------

    def is_negative(self, score: float | None, label: str | None) -> bool:
        if score is not None and (score <= 0 or score < self.cfg.negative_score_threshold):
            return True
        return label is not None and label.strip().lower() in self.cfg.negative_labels

    def feedback(
        self,
        call_id: str,
        score: float | None,
        label: str | None,
        comment: str | None,
        user_id: str | None,
        source: str,
    ) -> str | None:
        if score is None and not label and not comment:
            logger.warning("driftline: feedback needs a score, a label or a comment; ignored")
            return None
        body: dict[str, Any] = {
            "call_id": str(call_id),
            "source": source,
            "created_at": iso(time.time()),
        }
        if score is not None:
            body["score"] = float(score)
        if label:
            body["label"] = str(label)[:128]
        if comment:
            body["comment"] = str(comment)
        if user_id:
            body["user_id"] = str(user_id)[:255]
        with self._held_lock:
            held = self._held.get(body["call_id"])
        if held is not None:
            if not self.is_negative(score, label):
                # Its call was sampled out and stays out: the feedback would point at nothing.
                with self._held_lock:
                    self.sampled_out += 1
                return None
            self._release_trace(held.trace.trace_id)
        event_id, _ = new_id()
        self.transport.enqueue({"type": "feedback", "id": event_id, "body": body})
        return event_id

    # ----- encoding (background thread) ----------------------------------------------------

    def encode(self, item: Any) -> bytes | None:
        cfg = self.cfg
        if isinstance(item, CallRecord):
            body = build_call_body(
                item,
                release=cfg.release,
                environment=cfg.environment,
                capture_content=cfg.capture_content,
                redact=self.redact,
                max_chars=cfg.max_text_chars,
            )
            event: dict[str, Any] = {"type": "call", "id": item.id, "body": body}
        else:
            event = item
            comment = event["body"].get("comment")
            if comment and self.redact is not None:
                event["body"]["comment"] = self.redact(comment[: cfg.max_text_chars])
        try:
            text = _dumps(event)
        except ValueError:
            # NaN/Infinity are not JSON: the server would refuse the whole batch for one value.
            text = _dumps(_finite(event))
        return text.encode("utf-8")

    # ----- control -------------------------------------------------------------------------

    def stats(self) -> FlushResult:
        return self.transport.stats(self.sampled_out)

    def flush(self, timeout: float) -> FlushResult:
        self.transport.flush(timeout)
        return self.stats()

    def shutdown(self, timeout: float) -> FlushResult:
        self.transport.shutdown(timeout)
        return self.stats()


def _dumps(event: Any) -> str:
    return json.dumps(
        event,
        ensure_ascii=False,
        separators=(",", ":"),
        default=_json_default,
        allow_nan=False,
        skipkeys=True,
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (_INF, -_INF) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


_INF = float("inf")
KINDS = frozenset({"llm", "span", "tool", "chain", "retrieval", "embedding", "agent"})


def _after_fork_in_child() -> None:
    reseed()
    global _init_lock
    _init_lock = threading.Lock()
    client = state.client
    if client is not None:
        # Another thread of the parent may have held it at fork time.
        client._held_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _configure_debug() -> None:
    logger.setLevel(logging.DEBUG)
    if not any(getattr(h, "_driftline", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler._driftline = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def init(
    api_key: str | None = None,
    host: str | None = None,
    release: str | None = None,
    environment: str | None = None,
    sample_rate: float | None = None,
    redact: RedactOption = None,
    enabled: bool | None = None,
    *,
    max_queue_size: int | None = None,
    batch_size: int | None = None,
    flush_interval: float | None = None,
    spool_dir: str | bool | None = None,
    spool_max_bytes: int | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    shutdown_timeout: float | None = None,
    debug: bool | None = None,
    gzip: bool | None = None,
    capture_content: bool | None = None,
    max_text_chars: int | None = None,
    negative_score_threshold: float | None = None,
    negative_labels: Any | None = None,
    sampled_buffer_size: int | None = None,
) -> bool:
    """Start sending. Every option falls back to ``DRIFTLINE_<OPTION>`` and then a default.

    - ``api_key`` (``DRIFTLINE_API_KEY``): the project's ingest key.
    - ``host`` (``DRIFTLINE_HOST``, default ``http://localhost:8000``).
    - ``release``/``environment`` (``DRIFTLINE_RELEASE``/``DRIFTLINE_ENVIRONMENT``): stamped on
      every call.
    - ``sample_rate`` (``DRIFTLINE_SAMPLE_RATE``, 1.0): share of traces sent. Decided per trace
      when calls end: a trace with an error is always sent, and a sampled-out call that gets
      negative feedback soon after (it is held in a buffer of ``sampled_buffer_size`` calls) is
      sent after all.
    - ``redact``: a callable ``str -> str``, ``"default"`` (all built-ins), or a list of built-in
      names (``"email"``, ``"phone"``, ``"card"``, ``"api_key"``) and callables. Runs on every
      prompt, response, message, metadata string, error and feedback comment before it leaves
      the process. ``DRIFTLINE_REDACT`` takes a comma-separated list of built-in names.
    - ``enabled`` (``DRIFTLINE_ENABLED``, true): false turns every SDK call into a no-op.
    - ``max_queue_size`` (10000), ``batch_size`` (100), ``flush_interval`` (1.0 s),
      ``timeout`` (10 s per request), ``max_retries`` (3, then the spool),
      ``shutdown_timeout`` (5 s, used at exit).
    - ``spool_dir`` (``DRIFTLINE_SPOOL_DIR``; default a per-host-and-key folder in the temp dir;
      ``False`` disables), ``spool_max_bytes`` (64 MiB; the oldest files are dropped beyond).
    - ``debug`` (``DRIFTLINE_DEBUG``): log the SDK's activity to stderr.
    - ``negative_score_threshold`` (0.5): feedback with ``score <`` it is negative (right for
      0..1 and -1/+1 scales; use 3 for 1-5 stars). ``negative_labels``: labels that count as
      negative (default: bad, negative, thumbs_down, wrong, incorrect, unhelpful, ...).

    Returns True when the SDK is active. Calling ``init`` again replaces the client (the old one
    is flushed for up to 1 s first).
    """
    global _atexit_registered
    try:
        if enabled is None:
            enabled = env_bool("ENABLED", True)
        if debug is None:
            debug = env_bool("DEBUG", False)
        if debug:
            _configure_debug()
        with _init_lock:
            old, state.client = state.client, None
        if old is not None:
            old.shutdown(1.0)
        if not enabled:
            return False
        resolved_host = host or env_str("HOST", DEFAULT_HOST) or DEFAULT_HOST
        key = api_key or env_str("API_KEY", None)
        if redact is None:
            env_redact = env_str("REDACT", None)
            if env_redact:
                redact = [r.strip() for r in env_redact.split(",") if r.strip()]
        cfg = Config(
            api_key=key,
            host=resolved_host,
            release=release or env_str("RELEASE", None),
            environment=environment or env_str("ENVIRONMENT", None),
            sample_rate=sample_rate if sample_rate is not None else env_float("SAMPLE_RATE", 1.0),
            redact=redact,
            enabled=True,
            max_queue_size=_pick(max_queue_size, env_int("MAX_QUEUE_SIZE", 10_000)),
            batch_size=_pick(batch_size, env_int("BATCH_SIZE", 100)),
            flush_interval=_pick(flush_interval, env_float("FLUSH_INTERVAL", 1.0)),
            spool_dir=resolve_spool_dir(spool_dir, resolved_host, key),
            spool_max_bytes=_pick(spool_max_bytes, env_int("SPOOL_MAX_BYTES", 64 * 1024 * 1024)),
            timeout=_pick(timeout, env_float("TIMEOUT", 10.0)),
            max_retries=_pick(max_retries, env_int("MAX_RETRIES", 3)),
            shutdown_timeout=_pick(shutdown_timeout, env_float("SHUTDOWN_TIMEOUT", 5.0)),
            debug=bool(debug),
            gzip=_pick(gzip, env_bool("GZIP", True)),
            capture_content=_pick(capture_content, env_bool("CAPTURE_CONTENT", True)),
            max_text_chars=_pick(max_text_chars, env_int("MAX_TEXT_CHARS", 100_000)),
            negative_score_threshold=_pick(
                negative_score_threshold, env_float("NEGATIVE_SCORE_THRESHOLD", 0.5)
            ),
            sampled_buffer_size=_pick(sampled_buffer_size, env_int("SAMPLED_BUFFER_SIZE", 2_000)),
        )
        if negative_labels is not None:
            cfg.negative_labels = frozenset(str(x).strip().lower() for x in negative_labels)
        if not key:
            logger.warning("driftline: no api_key (or DRIFTLINE_API_KEY); the server will refuse")
        client = Client(cfg)
        with _init_lock:
            state.client = client
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
        return True
    except Exception:
        logger.exception("driftline: init failed; the SDK stays disabled")
        state.client = None
        return False


def _pick(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def _at_exit() -> None:
    client = state.client
    if client is not None:
        try:
            client.shutdown(client.cfg.shutdown_timeout)
        except Exception:
            logger.exception("driftline: shutdown at exit failed")


def _empty() -> FlushResult:
    return FlushResult()


def flush(timeout: float = 5.0) -> FlushResult:
    """Send everything queued so far, waiting at most ``timeout`` seconds. Never raises."""
    client = state.client
    if client is None:
        return _empty()
    try:
        return client.flush(timeout)
    except Exception:
        logger.exception("driftline: flush failed")
        return _empty()


def shutdown(timeout: float = 5.0) -> FlushResult:
    """Flush, then stop; events still unsent go to the disk spool. Later calls are no-ops."""
    client = state.client
    if client is None:
        return _empty()
    try:
        result = client.shutdown(timeout)
    except Exception:
        logger.exception("driftline: shutdown failed")
        result = _empty()
    if state.client is client:
        state.client = None
    return result


def stats() -> FlushResult:
    """The counts of :func:`flush` without waiting."""
    client = state.client
    return client.stats() if client is not None else _empty()


def current_call_id() -> str | None:
    """The id of the innermost observed call running here (pass it to :func:`feedback`)."""
    rec = _current.get()
    return rec.id if rec is not None else None


def last_call_id() -> str | None:
    """The id of the newest call a wrapped OpenAI/Anthropic client made here (this thread or
    task), to pass to :func:`feedback`: a wrapped client records each model request as an LLM
    call of its own, with no decorated function around it to ask :func:`current_call_id` of."""
    return _last_model_call.get()


def current_trace_id() -> str | None:
    rec = _current.get()
    return rec.trace.trace_id if rec is not None else None


def feedback(
    call_id: str | None,
    score: float | None = None,
    label: str | None = None,
    comment: str | None = None,
    user_id: str | None = None,
    source: str = "end_user",
) -> str | None:
    """Attach feedback to a call; returns the feedback event id (None when not sent)."""
    client = state.client
    if client is None or not call_id:
        return None
    try:
        return client.feedback(call_id, score, label, comment, user_id, source)
    except Exception:
        logger.exception("driftline: feedback failed")
        return None


_CALL_FIELDS = frozenset(
    {
        "session_id",
        "user_id",
        "name",
        "kind",
        "provider",
        "model",
        "prompt",
        "messages",
        "response",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cost_usd",
        "tags",
        "metadata",
        "prompt_name",
        "prompt_version",
    }
)


def update_current_call(**fields: Any) -> None:
    """Set fields of the running call, e.g. ``user_id=``, ``session_id=``, ``tags=``,
    ``metadata=``, ``model=``, token counts. Unknown names are logged and ignored."""
    rec = _current.get()
    if rec is None:
        return
    try:
        for key in list(fields):
            if key not in _CALL_FIELDS:
                logger.warning("driftline: update_current_call: unknown field %r ignored", key)
                fields.pop(key)
        if "name" in fields:
            rec.name = str(fields.pop("name"))
        if "kind" in fields:
            kind = str(fields.pop("kind"))
            if kind in KINDS:
                rec.kind = kind
            else:
                logger.warning(
                    "driftline: unknown kind %r ignored (known: %s)", kind, sorted(KINDS)
                )
        rec.set(**fields)
    except Exception:
        logger.exception("driftline: update_current_call failed")


def active_client() -> Client | None:
    return state.client
