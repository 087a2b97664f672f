"""Options of :func:`driftline.init`: the argument, else ``DRIFTLINE_<NAME>``, else a default."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Aliases only for the type checker: ``X | Y`` at run time needs Python 3.10.
    Redactor = Callable[[str], str]
    RedactOption = None | str | Redactor | Sequence[str | Redactor]

logger = logging.getLogger("driftline")

DEFAULT_HOST = "http://localhost:8000"
DEFAULT_NEGATIVE_LABELS = frozenset(
    {
        "bad",
        "negative",
        "thumbs_down",
        "thumbsdown",
        "thumbs-down",
        "dislike",
        "wrong",
        "incorrect",
        "unhelpful",
        "not_helpful",
        "harmful",
        "unsafe",
        "hallucination",
        "-1",
        "\N{THUMBS DOWN SIGN}",
    }
)

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def _env(name: str) -> str | None:
    value = os.environ.get("DRIFTLINE_" + name)
    return value.strip() if value is not None else None


def env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    logger.warning("driftline: ignoring DRIFTLINE_%s=%r (not a boolean)", name, raw)
    return default


def env_float(name: str, default: float) -> float:
    raw = _env(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        logger.warning("driftline: ignoring DRIFTLINE_%s=%r (not a number)", name, raw)
        return default


def env_int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        logger.warning("driftline: ignoring DRIFTLINE_%s=%r (not an integer)", name, raw)
        return default


def env_str(name: str, default: str | None) -> str | None:
    raw = _env(name)
    return raw if raw else default


@dataclass
class Config:
    """The resolved options. Read the field docs in :func:`driftline.init`."""

    api_key: str | None = None
    host: str = DEFAULT_HOST
    release: str | None = None
    environment: str | None = None
    sample_rate: float = 1.0
    redact: RedactOption = None
    enabled: bool = True
    max_queue_size: int = 10_000
    batch_size: int = 100
    flush_interval: float = 1.0
    spool_dir: str | None = None
    spool_max_bytes: int = 64 * 1024 * 1024
    timeout: float = 10.0
    max_retries: int = 3
    shutdown_timeout: float = 5.0
    debug: bool = False
    gzip: bool = True
    capture_content: bool = True
    max_text_chars: int = 100_000
    negative_score_threshold: float = 0.5
    negative_labels: frozenset[str] = field(default_factory=lambda: DEFAULT_NEGATIVE_LABELS)
    sampled_buffer_size: int = 2_000


def default_spool_dir(host: str, api_key: str | None) -> str:
    """One folder per (host, key) under the temp dir, so projects never replay into each other."""
    digest = hashlib.sha256(f"{host}\0{api_key or ''}".encode()).hexdigest()[:16]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    parent = os.path.join(tempfile.gettempdir(), f"driftline-spool-{uid}")
    with contextlib.suppress(OSError):
        os.mkdir(parent, 0o700)  # private from the start (makedirs would use the umask)
    return os.path.join(parent, digest)


def resolve_spool_dir(value: str | bool | None, host: str, api_key: str | None) -> str:
    """``None``: DRIFTLINE_SPOOL_DIR or the default; ``False``/``""``/"off": no spool ("")."""
    if value is None:
        env = _env("SPOOL_DIR")
        if env is not None:
            value = env
    if value is False or (isinstance(value, str) and value.lower() in ("", "0", "off", "false")):
        return ""
    if value is None or value is True:
        return default_spool_dir(host, api_key)
    return os.path.abspath(os.path.expanduser(str(value)))
