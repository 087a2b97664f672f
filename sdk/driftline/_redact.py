"""Redaction that runs inside the process, before any text is serialised for sending.

Built-ins (pass their names, or ``"default"`` for all of them):

- ``email``: ``name@example.com`` -> ``[EMAIL]``
- ``card``: 13-19 digit card numbers (spaces/dashes allowed) that pass the Luhn check -> ``[CARD]``
- ``phone``: international or national phone numbers of 9-15 digits -> ``[PHONE]``
- ``api_key``: provider keys (``sk-...``, ``sk-ant-...``, ``AKIA...``, ``ghp_...``, ``xox.-...``,
  ``AIza...``), ``Bearer <token>`` and ``api_key=...``/``password: ...`` pairs -> ``[API_KEY]``

Order matters: keys and cards run before phones so a card is not half-eaten as a phone number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._config import logger

if TYPE_CHECKING:
    from ._config import RedactOption, Redactor

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}(?!\w)"
)
_API_KEYS = [
    re.compile(r"\bsk-ant-[A-Za-z0-9_-]{16,}"),
    re.compile(r"\b(?:sk|pk|rk)-(?:proj-|live-|test-)?[A-Za-z0-9_-]{16,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),
    re.compile(r"\bdl_[A-Za-z0-9_-]{16,}"),
]
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{12,}")
_KEY_VALUE = re.compile(
    r"(?i)\b((?:api[_-]?key|secret|token|password|passwd)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]{6,}"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def redact_email(text: str) -> str:
    return _EMAIL.sub("[EMAIL]", text) if "@" in text else text


def redact_card(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group(0)

    return _CARD.sub(repl, text)


def redact_phone(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        n = sum(1 for c in m.group(0) if c.isdigit())
        return "[PHONE]" if 9 <= n <= 15 else m.group(0)

    return _PHONE.sub(repl, text)


def redact_api_key(text: str) -> str:
    for pattern in _API_KEYS:
        text = pattern.sub("[API_KEY]", text)
    text = _BEARER.sub(r"\1[API_KEY]", text)
    return _KEY_VALUE.sub(r"\1[API_KEY]", text)


BUILTINS: dict[str, Redactor] = {
    "api_key": redact_api_key,
    "email": redact_email,
    "card": redact_card,
    "phone": redact_phone,
}
DEFAULT = ("api_key", "email", "card", "phone")


def build_redactor(option: RedactOption) -> Callable[[str], str] | None:
    """Turn the ``redact=`` option into one function (or None when nothing is redacted)."""
    if option is None:
        return None
    items: list[object]
    items = [option] if isinstance(option, str) or callable(option) else list(option)
    builtin: set[str] = set()
    custom: list[Redactor] = []
    for item in items:
        if callable(item):
            custom.append(item)
            continue
        if not isinstance(item, str):
            logger.warning("driftline: ignoring redact entry %r", item)
            continue
        names = DEFAULT if item in ("default", "all") else (item,)
        for name in names:
            if name in BUILTINS:
                builtin.add(name)
            else:
                logger.warning("driftline: unknown redactor %r (known: %s)", name, sorted(BUILTINS))
    # Built-ins always run in DEFAULT order (keys, cards before phones), custom ones after.
    funcs = [BUILTINS[name] for name in DEFAULT if name in builtin] + custom
    if not funcs:
        return None
    if len(funcs) == 1:
        return funcs[0]

    def chain(text: str) -> str:
        for func in funcs:
            text = func(text)
        return text

    return chain
