"""The background sender: bounded queue -> one daemon thread -> batched, gzipped HTTP POSTs.

Follows OpenTelemetry's BatchProcessor and sentry-python's BackgroundWorker: the caller's thread
only appends to a bounded deque (dropping and counting when full); one lazily started daemon
thread wakes every ``flush_interval`` or when a batch is full, encodes, gzips and POSTs to
``/api/v1/ingest``; network errors, 408, 429 and 5xx are retried with exponential backoff and full
jitter (``Retry-After`` wins), other 4xx answers are dropped with a logged reason. Every lost
event is counted by reason.

Beyond the peers: when the retry budget runs out the batch goes to a disk spool (see
``_spool.py``) and the transport stays "down" (new batches go straight to disk, one probe request
per backoff period) until the server answers again; then the spool is replayed oldest first,
before fresh events. Re-sent ids are answered "duplicate", so at-least-once is safe.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import random
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._config import Config, logger
from ._spool import Spool

MAX_EVENTS_PER_REQUEST = 1000
MAX_BYTES_PER_REQUEST = 9 * 1024 * 1024  # the server takes 10 MB; keep a margin for the envelope
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 30.0
_PROBE_CAP = 30.0
_RETRY_AFTER_CAP = 300.0
_INLINE_WAIT_MAX = 10.0
_REPLAY_FILES_PER_CYCLE = 20
_TRANSIENT = frozenset({408, 425, 429})
_SUSPECT_STRIKES = 5
_RECONNECT = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

_live: weakref.WeakSet[Transport] = weakref.WeakSet()


@dataclass
class FlushResult:
    """What happened to the events given to the SDK since ``init`` (cumulative counts).

    - ``sent``: delivered (the server answered accepted or duplicate).
    - ``dropped``: lost for good, by reason (``queue_full``, ``rejected_4xx``,
      ``rejected_event``, ``retries_exhausted``, ``spool_full``, ``encode_error``,
      ``too_large``, ``after_shutdown``...). Nothing is lost without being counted here.
    - ``failed``: not delivered yet but safe on the disk spool; replayed when the server is back.
    - ``pending``: still in memory (queued or in flight) when ``flush`` returned.
    - ``sampled_out``: calls not sent by choice (``sample_rate``); not a loss.
    """

    sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    pending: int = 0
    sampled_out: int = 0
    last_error: str | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def ok(self) -> bool:
        """Everything given so far was delivered (or deliberately sampled out)."""
        return self.pending == 0 and self.failed == 0 and not self.dropped


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), _RETRY_AFTER_CAP)


def backoff(attempt: int) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^attempt)]."""
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * (2**attempt))) + 0.05


Item = Any
if TYPE_CHECKING:
    Encoder = Callable[[Item], bytes | None]


class Transport:
    def __init__(self, cfg: Config, encode: Encoder, spool: Spool | None) -> None:
        self._cfg = cfg
        self._encode = encode
        self._spool = spool
        parts = urlsplit(cfg.host.rstrip("/"))
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc or "localhost:8000"
        self._path = (parts.path or "") + "/api/v1/ingest"
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": "driftline-python/0.1.0",
        }
        if cfg.api_key:
            self._headers["Authorization"] = f"Bearer {cfg.api_key}"
        if cfg.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._max = max(1, cfg.max_queue_size)
        self._batch = max(1, min(cfg.batch_size, MAX_EVENTS_PER_REQUEST))
        self._interval = max(0.01, cfg.flush_interval)
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        """Fresh state; also what a forked child gets (the parent's queue is the parent's)."""
        self._queue: deque[Item] = deque()
        self._wake = threading.Event()
        self._interrupt = threading.Event()
        self._lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._cycle_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._sent = 0
        self._dropped: Counter[str] = Counter()
        self._inflight: list[bytes] | None = None
        self._flush_req = 0
        self._flush_done = 0
        self._flush_deadline = 0.0
        self._down = False
        self._wake_at = self._batch  # while down: half the queue (fewer, larger spool files)
        self._down_until = 0.0
        self._probe_delay = 1.0
        self._stopping = False
        self._closed = False
        self._spool_dirty = self._spool is not None
        self._last_error: str | None = None
        self._log_times: dict[str, float] = {}
        self._ok_requests = 0
        self._last_status: int | None = None
        self._suspects: dict[int, int] = {}  # hash of an event line -> 500s seen alone

    def after_fork_in_child(self) -> None:
        if self._spool is not None:
            self._spool.after_fork_in_child()
        self._reset()

    # ----- caller side: never blocks, never raises -------------------------------------------

    def enqueue(self, item: Item) -> None:
        if self._closed:
            self.drop("after_shutdown")
            return
        queue = self._queue
        if len(queue) >= self._max:
            self.drop("queue_full")
            return
        queue.append(item)
        if self._thread is None:
            self._start()
        elif len(queue) >= self._wake_at:
            self._wake.set()

    def drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += count
        self._log_limited(reason, "driftline: dropped %d event(s): %s", count, reason)

    def start_if_spooled(self) -> None:
        """Start the worker at init when an earlier process left events on the spool."""
        if self._spool is not None and self._spool.has_files():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="driftline-worker", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: shutdown() sends inline
                return
            self._thread = thread

    # ----- public control ------------------------------------------------------------------

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            self._flush_req += 1
            target = self._flush_req
            self._flush_deadline = deadline
        if self._thread is None:
            self._start()
        thread = self._thread
        if thread is None or not thread.is_alive():
            # No worker can run (interpreter exit, or it died): do the work on this thread.
            self._run_cycle()
            return
        self._wake.set()
        self._interrupt.set()
        with self._cond:
            while self._flush_done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def shutdown(self, timeout: float) -> None:
        if self._closed:
            return
        self.flush(timeout)
        self._stopping = True
        self._closed = True
        self._wake.set()
        self._interrupt.set()
        # Whatever is still in memory goes to disk; a batch still in flight is spooled too (a
        # copy: if its POST succeeds after all, the replay is answered "duplicate").
        leftovers = list(self._inflight or [])
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                break
            line = self._safe_encode(item)
            if line is not None:
                leftovers.append(line)
        if leftovers:
            self._spool_or_drop(leftovers, "shutdown")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.2)
        self._close_conn()

    def stats(self, sampled_out: int) -> FlushResult:
        with self._lock:
            dropped = dict(self._dropped)
            sent = self._sent
        if self._spool is not None:
            if self._spool.corrupt:
                dropped["spool_corrupt"] = self._spool.corrupt
            failed = self._spool.pending_events()
        else:
            failed = 0
        inflight = self._inflight
        pending = len(self._queue) + (len(inflight) if inflight else 0)
        return FlushResult(
            sent=sent,
            dropped=dropped,
            failed=failed,
            pending=pending,
            sampled_out=sampled_out,
            last_error=self._last_error,
        )

    # ----- worker --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopping:
                break
            self._run_cycle()

    def _run_cycle(self) -> None:
        with self._cycle_lock:
            with self._cond:
                target = self._flush_req
                flushing = target > self._flush_done
            try:
                self._cycle(flushing)
            except Exception:
                logger.exception("driftline: internal error in the sender (events kept queued)")
            if flushing:
                with self._cond:
                    self._flush_done = max(self._flush_done, target)
                    self._cond.notify_all()

    def _deadline(self) -> float | None:
        with self._cond:
            if self._flush_req > self._flush_done:
                return self._flush_deadline
        return None

    def _cycle(self, flushing: bool) -> None:
        now = time.monotonic()
        if self._down and (flushing or now >= self._down_until):
            self._probe()
        if not self._down and self._spool_dirty:
            self._replay(None if flushing else _REPLAY_FILES_PER_CYCLE)
        if self._down and self._spool is None:
            return  # nowhere to put them: keep events queued (drops counted at enqueue when full)
        todo = len(self._queue)
        # A backlog (slow server, burst) goes out in the largest batches the server takes, so a
        # server answering in 2 s still drains 500 events/s instead of batch_size / 2 s.
        size = self._batch if todo <= 2 * self._batch else MAX_EVENTS_PER_REQUEST
        while todo > 0:
            items: list[Item] = []
            while todo > 0 and len(items) < size:
                try:
                    items.append(self._queue.popleft())
                except IndexError:
                    todo = 0
                    break
                todo -= 1
            lines = [line for line in map(self._safe_encode, items) if line is not None]
            if not lines:
                continue
            if self._down:
                self._spool_or_drop(lines, "retries_exhausted")
                continue
            self._inflight = lines
            try:
                for chunk in self._chunks(lines):
                    if self._down or self._send(chunk, retries=self._cfg.max_retries) == "failed":
                        self._spool_or_drop(chunk, "retries_exhausted")
            finally:
                self._inflight = None

    def _probe(self) -> None:
        """One request, no retries, to learn whether the server is back."""
        if self._spool is not None and self._spool_dirty:
            claimed = self._spool.claim_oldest()
            if claimed is not None:
                path, lines = claimed
                if self._send(lines, retries=0, probe=True) == "failed":
                    self._spool.release(path)
                else:
                    self._spool.remove(path)
                return
            self._spool_dirty = False
        # Nothing on disk: the next live batch is the probe (allowed once by clearing the flag).
        self._set_up()

    def _replay(self, max_files: int | None) -> None:
        spool = self._spool
        if spool is None:
            return
        done = 0
        while max_files is None or done < max_files:
            if self._stopping:
                return
            claimed = spool.claim_oldest()
            if claimed is None:
                self._spool_dirty = False
                return
            path, lines = claimed
            outcome = "sent"
            for chunk in self._chunks(lines):
                outcome = self._send(chunk, retries=self._cfg.max_retries)
                if outcome == "failed":
                    break
            if outcome == "failed":
                spool.release(path)
                return
            spool.remove(path)
            done += 1

    def _spool_or_drop(self, lines: list[bytes], reason: str) -> None:
        if self._spool is not None:
            stored, evicted, why = self._spool.write(lines)
            if evicted:
                self.drop("spool_full", evicted)
            if stored:
                self._spool_dirty = True
                self._log_limited(
                    "spooled", "driftline: server unreachable, %d event(s) kept on disk", len(lines)
                )
                return
            reason = why
        self.drop(reason, len(lines))

    def _safe_encode(self, item: Item) -> bytes | None:
        try:
            line = self._encode(item)
        except Exception:
            logger.exception("driftline: could not encode an event")
            self.drop("encode_error")
            return None
        if line is not None and len(line) > MAX_BYTES_PER_REQUEST:
            self.drop("too_large")
            return None
        return line

    @staticmethod
    def _chunks(lines: list[bytes]) -> list[list[bytes]]:
        out: list[list[bytes]] = []
        cur: list[bytes] = []
        size = 0
        for line in lines:
            if cur and (
                len(cur) >= MAX_EVENTS_PER_REQUEST or size + len(line) > MAX_BYTES_PER_REQUEST
            ):
                out.append(cur)
                cur, size = [], 0
            cur.append(line)
            size += len(line) + 1
        if cur:
            out.append(cur)
        return out

    # ----- one request with retries --------------------------------------------------------

    def _send(
        self, lines: list[bytes], retries: int, probe: bool = False, split: bool = True
    ) -> str:
        """POST one batch. Returns "sent", "dropped" (permanent error, counted) or "failed".

        ``split``: a batch answered 500 twice is halved (see ``_split``)."""
        body = b'{"batch":[' + b",".join(lines) + b"]}"
        if self._cfg.gzip:
            body = gzip.compress(body, compresslevel=5)
        attempt = 0
        errors_500 = 0
        while True:
            status, retry_after, data = self._post(body)
            self._last_status = status
            if status is not None and 200 <= status < 300:
                self._on_success(lines, status, data)
                return "sent"
            if status == 500:
                errors_500 += 1
                if errors_500 >= 2:
                    return self._split(lines, retries, data) if split else "failed"
                if attempt >= retries:  # one more try even at the end of the budget
                    attempt = retries - 1
            if status is not None and 400 <= status < 500 and status not in _TRANSIENT:
                detail = data[:300].decode("utf-8", "replace")
                self._last_error = f"HTTP {status}: {detail}"
                logger.warning(
                    "driftline: server refused %d event(s) with HTTP %d, dropped: %s",
                    len(lines),
                    status,
                    detail,
                )
                self.drop("rejected_4xx", len(lines))
                self._set_up()
                return "dropped"
            # Transient: network error, 408/425/429, 5xx (or a 1xx/3xx we do not follow).
            self._last_error = (
                f"HTTP {status}" if status is not None else data.decode("utf-8", "replace")
            )
            attempt += 1
            if attempt > retries:
                self._mark_down(retry_after)
                return "failed"
            delay = retry_after if retry_after is not None else backoff(attempt)
            if delay > _INLINE_WAIT_MAX:
                # A long Retry-After: waiting here would let the queue overflow; go "down"
                # (the batch and what follows go to the spool) until the server's time is up.
                self._mark_down(retry_after)
                return "failed"
            if not self._sleep(delay):
                self._mark_down(retry_after)
                return "failed"

    def _split(self, lines: list[bytes], retries: int, data: bytes) -> str:
        """The server failed this batch twice with a 500: an event in it may be what breaks
        the server (a bug on some input). Halve and resend, down to the single event, which is
        then dropped as ``rejected_event``, so one bad event never blocks the events around it
        or a spool replay.

        A server answering 500 to everything (its database down) must not lose events, so a
        single event is dropped only on evidence that the server works: another request of the
        split answered 2xx, or the same event failed so on ``_SUSPECT_STRIKES`` occasions. A
        half is sent unsplit once when nothing has succeeded yet, so an outage costs about two
        requests per halving, not two per event; what is not sent goes to the spool.
        """
        mark = self._ok_requests
        suspects: list[bytes] = []
        if len(lines) == 1:
            suspects.append(lines[0])
        else:
            self._halve(lines, retries, mark, suspects)
        detail = data[:300].decode("utf-8", "replace")
        kept: list[bytes] = []
        for line in suspects:
            strikes = self._suspects.pop(hash(line), 0) + 1
            if self._ok_requests > mark or strikes >= _SUSPECT_STRIKES:
                self._last_error = f"HTTP 500 on one event, dropped: {detail}"
                logger.warning("driftline: the server fails on one event (HTTP 500): %s", detail)
                self.drop("rejected_event", 1)
            else:
                if len(self._suspects) < 1000:
                    self._suspects[hash(line)] = strikes
                kept.append(line)
        if kept:
            self._last_error = f"HTTP 500: {detail}"
            self._mark_down(None)
            self._spool_or_drop(kept, "retries_exhausted")
        return "sent"  # every event is now sent, dropped (counted) or spooled

    def _halve(self, lines: list[bytes], retries: int, mark: int, suspects: list[bytes]) -> None:
        mid = len(lines) // 2
        for index, half in enumerate((lines[:mid], lines[mid:])):
            if index == 1 and self._ok_requests == mark and suspects:
                # Nothing has worked yet: one unsplit try tells an outage from a bad event.
                if self._send(half, retries, split=False) == "failed":
                    self._spool_or_drop(half, "retries_exhausted")
                continue
            outcome = self._send(half, retries, split=False)
            if outcome == "failed" and self._last_status == 500:
                if len(half) == 1:
                    suspects.append(half[0])
                else:
                    self._halve(half, retries, mark, suspects)
            elif outcome == "failed":
                self._spool_or_drop(half, "retries_exhausted")

    def _sleep(self, delay: float) -> bool:
        """Wait before a retry. False: give up now (shutdown, or a flush deadline comes first)."""
        end = time.monotonic() + delay
        while True:
            if self._stopping:
                return False
            deadline = self._deadline()
            if deadline is not None and end > deadline:
                return False
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            self._interrupt.wait(remaining)
            self._interrupt.clear()

    def _mark_down(self, retry_after: float | None) -> None:
        if self._down:
            self._probe_delay = min(_PROBE_CAP, self._probe_delay * 2)
        else:
            self._probe_delay = 1.0
        delay = retry_after if retry_after is not None else self._probe_delay
        self._down = True
        self._wake_at = max(self._batch, self._max // 2)
        self._down_until = time.monotonic() + delay * random.uniform(0.8, 1.2)
        self._log_limited(
            "down", "driftline: cannot reach %s (%s); retrying", self._netloc, self._last_error
        )

    def _set_up(self) -> None:
        self._down = False
        self._wake_at = self._batch
        self._probe_delay = 1.0

    def _on_success(self, lines: list[bytes], status: int, data: bytes) -> None:
        self._set_up()
        self._ok_requests += 1
        errors: list[Any] = []
        try:
            payload = json.loads(data) if data else None
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("results"), list):
            errors = [
                r for r in payload["results"] if isinstance(r, dict) and r.get("status") == "error"
            ]
        accepted = len(lines) - len(errors)
        with self._lock:
            self._sent += accepted
        if errors:
            first = errors[0]
            self._last_error = f"event {first.get('id')}: {first.get('error')}"
            logger.warning(
                "driftline: server rejected %d event(s), dropped (first: %s)",
                len(errors),
                self._last_error,
            )
            self.drop("rejected_event", len(errors))

    def _post(self, body: bytes) -> tuple[int | None, float | None, bytes]:
        headers = dict(self._headers)
        headers["Content-Length"] = str(len(body))
        for attempt in (0, 1):
            conn = self._conn
            reused = conn is not None
            if conn is None:
                conn = self._conn = self._connect()
            try:
                conn.request("POST", self._path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self._close_conn()
                if reused and attempt == 0 and isinstance(exc, _RECONNECT):
                    continue  # the server closed an idle keep-alive connection: reconnect once
                return None, None, f"{type(exc).__name__}: {exc}".encode()
            if resp.will_close:
                self._close_conn()
            return resp.status, parse_retry_after(resp.getheader("Retry-After")), data
        return None, None, b"connection lost"

    def _connect(self) -> http.client.HTTPConnection:
        timeout = self._cfg.timeout
        if self._https:
            return http.client.HTTPSConnection(self._netloc, timeout=timeout)
        return http.client.HTTPConnection(self._netloc, timeout=timeout)

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken socket may fail
                conn.close()

    def _log_limited(self, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._log_times.get(key, -1e9) >= 30.0:
            self._log_times[key] = now
            logger.warning(msg, *args)
        else:
            logger.debug(msg, *args)


def _after_fork_in_child() -> None:
    for transport in list(_live):
        try:
            transport.after_fork_in_child()
        except Exception:
            logger.exception("driftline: could not reset the sender after fork")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
