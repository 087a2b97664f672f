"""A bounded on-disk spool: a folder of gzipped JSONL batch files, replayed oldest first.

File names are ``<time_ns>-<pid>-<seq>-<count>.jsonl.gz`` so the folder can be sorted by age and
counted without opening a file. A file is written to ``.tmp`` and renamed (atomic on POSIX), so a
crash leaves either a whole batch or nothing. Several processes may share one folder (gunicorn
workers): a replaying process first renames a file to ``.<pid>.sending`` to claim it; a claim left
by a dead process is released on the next scan. A batch replayed twice is harmless, the server
answers "duplicate" for ids it already holds.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import stat
import threading
import time

from ._config import logger

SUFFIX = ".jsonl.gz"
_RESCAN_S = 5.0
_seq = itertools.count()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _count_of(name: str) -> int:
    try:
        return int(name[: -len(SUFFIX)].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


class Spool:
    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._ready = False
        self.corrupt = 0  # events lost in unreadable files, reported as dropped
        self._cache: list[tuple[str, int]] | None = None
        self._cache_at = 0.0

    def after_fork_in_child(self) -> None:
        # The parent's worker may have held the lock at fork time; the child starts afresh.
        self._lock = threading.Lock()
        self._cache = None

    def _ensure_dir(self) -> bool:
        if self._ready:
            return True
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            self._check_owner()
        except OSError as exc:
            logger.warning("driftline: spool disabled, %s: %s", self.directory, exc)
            return False
        self._ready = True
        return True

    def _check_owner(self) -> None:
        """Prompts must not land in a folder another local user prepared (the default lies in
        the shared temp dir): the folder, and our ``driftline-spool-<uid>`` parent, must be
        real directories of ours."""
        if not hasattr(os, "getuid"):
            return
        paths = [self.directory]
        parent = os.path.dirname(self.directory)
        if os.path.basename(parent).startswith("driftline-spool-"):
            paths.append(parent)
        for path in paths:
            info = os.lstat(path)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                raise PermissionError(f"{path} is not a directory owned by this user")

    def _files(self) -> list[tuple[str, int]]:
        """(name, size) of the complete, unclaimed files, oldest first."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        out: list[tuple[str, int]] = []
        for name in names:
            path = os.path.join(self.directory, name)
            if name.endswith(".sending"):
                self._maybe_release(path, name)
                continue
            if not name.endswith(SUFFIX):
                continue
            try:
                out.append((name, os.path.getsize(path)))
            except OSError:
                continue
        out.sort()
        return out

    def _maybe_release(self, path: str, name: str) -> None:
        # "<file>.jsonl.gz.<pid>.sending": give it back if its owner is gone.
        parts = name.rsplit(".", 2)
        try:
            pid = int(parts[1])
        except (IndexError, ValueError):
            return
        if pid == os.getpid() or _pid_alive(pid):
            return
        with contextlib.suppress(OSError):
            os.rename(path, os.path.join(self.directory, parts[0]))

    def pending_events(self) -> int:
        return sum(_count_of(name) for name, _ in self._files())

    def has_files(self) -> bool:
        return bool(self._files())

    def _index(self) -> list[tuple[str, int]]:
        """The folder listing for the size cap, re-read at most every few seconds: a server
        down for an hour leaves thousands of files, and a full scan per write would cost the
        worker (and, through the GIL, the app) more and more."""
        now = time.monotonic()
        if self._cache is None or now - self._cache_at > _RESCAN_S:
            self._cache = self._files()
            self._cache_at = now
        return self._cache

    def write(self, lines: list[bytes]) -> tuple[bool, int, str]:
        """Store one batch: (stored, events evicted to make room, why not stored)."""
        if not lines:
            return True, 0, ""
        if not self._ensure_dir():
            return False, 0, "spool_error"
        data = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=5)
        dropped = 0
        with self._lock:
            files = self._index()
            total = sum(size for _, size in files)
            while files and total + len(data) > self.max_bytes:
                name, size = files.pop(0)
                total -= size
                try:
                    os.remove(os.path.join(self.directory, name))
                except OSError:
                    continue  # replayed or evicted by someone else meanwhile
                dropped += _count_of(name)
            if len(data) > self.max_bytes:
                return False, dropped, "spool_full"
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(_seq)}-{len(lines)}{SUFFIX}"
            final = os.path.join(self.directory, name)
            tmp = final + f".{threading.get_ident()}.tmp"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            except OSError as exc:
                logger.warning("driftline: cannot write spool file %s: %s", final, exc)
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                return False, dropped, "spool_error"
            files.append((name, len(data)))
        return True, dropped, ""

    def claim_oldest(self) -> tuple[str, list[bytes]] | None:
        """Claim and read the oldest file: (claimed path, event lines), or None when empty."""
        for name, _ in self._files():
            src = os.path.join(self.directory, name)
            claimed = f"{src}.{os.getpid()}.sending"
            try:
                os.rename(src, claimed)
            except OSError:
                continue  # another process took it
            try:
                with gzip.open(claimed, "rb") as fh:
                    lines = [line for line in fh.read().split(b"\n") if line]
            except (OSError, EOFError) as exc:
                logger.warning("driftline: dropping unreadable spool file %s: %s", name, exc)
                self.corrupt += _count_of(name)
                self.remove(claimed)
                continue
            return claimed, lines
        return None

    def release(self, claimed: str) -> None:
        """Put a claimed file back (the send failed)."""
        with contextlib.suppress(OSError):
            os.rename(claimed, claimed.rsplit(".", 2)[0])

    @staticmethod
    def remove(claimed: str) -> None:
        with contextlib.suppress(OSError):
            os.remove(claimed)
