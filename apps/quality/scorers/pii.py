"""Personal data and secrets in prompts and responses.

Each kind is a regex that finds candidates, then a validator that throws most false positives
away: Luhn and issuer prefixes for payment cards, ISO 13616 mod-97 and per-country length for
IBANs, area/group/serial rules for US SSNs, check letters or digits for national ids (Spanish
DNI/NIE, UK NINO prefixes, Indian Aadhaar Verhoeff, Canadian SIN Luhn), known prefixes and lengths
for provider keys. Kinds found are reported by name only, never the matched value, so the signal
itself does not copy the secret into another table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from apps.quality.scorers.base import CallContext, Scorer, clip

# Kinds that raise ``flagged`` wherever they appear. E-mail addresses and phone numbers are
# reported but do not flag: users paste them into prompts all day (signatures, tickets).
SEVERE_KINDS = frozenset(
    {"card", "iban", "ssn", "national_id", "api_key", "private_key", "jwt", "secret"}
)


def luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812 check digit (payment cards, Canadian SIN)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# https://www.swift.com/standards/data-standards/iban (IBAN registry): length per country.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(candidate: str) -> bool:
    """ISO 13616: known country length and ``mod 97 == 1`` over the rearranged digits."""
    iban = candidate.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _card_valid(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    # Issuer prefixes (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro) keep
    # Luhn-valid order numbers and timestamps (1 in 10 pass Luhn by chance) out.
    if not re.match(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|2)|35|3[068]|5[06-9]|6[37]", digits):
        return False
    return luhn_valid(digits)


def _ssn_valid(candidate: str) -> bool:
    area, group, serial = candidate.split("-")
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_valid(candidate: str) -> bool:
    # Spanish DNI (8 digits + letter) and NIE (X/Y/Z + 7 digits + letter): letter = number mod 23.
    value = candidate.upper().replace("-", "")
    body, letter = value[:-1], value[-1]
    body = body.replace("X", "0", 1).replace("Y", "1", 1).replace("Z", "2", 1)
    return body.isdigit() and _DNI_LETTERS[int(body) % 23] == letter


_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]  # fmt: skip
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]  # fmt: skip


def verhoeff_valid(digits: str) -> bool:
    """Verhoeff check digit (Indian Aadhaar)."""
    check = 0
    for index, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][ord(char) - 48]]
    return check == 0


def _aadhaar_valid(candidate: str) -> bool:
    digits = re.sub(r"\s|-", "", candidate)
    return digits[0] not in "01" and verhoeff_valid(digits)


def _sin_valid(candidate: str) -> bool:
    digits = re.sub(r"\s|-", "", candidate)
    return digits[0] not in "08" and luhn_valid(digits)


def _nino_valid(candidate: str) -> bool:
    prefix = candidate[:2].upper()
    return prefix not in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"} and prefix[1] != "O"


def _phone_valid(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if candidate.lstrip().startswith("+"):
        return 8 <= len(digits) <= 15
    return len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")


_PLACEHOLDER_DOMAINS = re.compile(
    r"@(?:[\w-]+\.)*(?:example\.(?:com|org|net)|test|invalid|localhost)$", re.I
)


def _email_valid(candidate: str) -> bool:
    return _PLACEHOLDER_DOMAINS.search(candidate) is None


def _always(_: str) -> bool:
    return True


Validator = Callable[[str], bool]

# (kind, pattern, validator). Patterns are anchored on non-word boundaries so that a longer
# number is not read as a card or phone by taking a piece of it.
_DETECTORS: list[tuple[str, re.Pattern[str], Validator, bool]] = [
    (
        "email",
        re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b"),
        _email_valid,
        False,
    ),
    ("card", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"), _card_valid, True),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), iban_valid, False),
    ("ssn", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), _ssn_valid, True),
    (
        "national_id",
        re.compile(r"(?<![\w-])(?:\d{8}|[XYZ]\d{7})-?[A-Z](?![\w-])"),
        _dni_valid,
        False,
    ),
    (
        "national_id",
        re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
        _nino_valid,
        False,
    ),
    (
        "national_id",
        re.compile(r"(?<![\d-])\d{4}[ -]\d{4}[ -]\d{4}(?![\d-])"),
        _aadhaar_valid,
        True,
    ),
    ("national_id", re.compile(r"(?<![\d-])\d{3}[ -]\d{3}[ -]\d{3}(?![\d-])"), _sin_valid, True),
    (
        "phone",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
            r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])"
        ),
        _phone_valid,
        True,
    ),
    # Provider keys: https://docs.github.com/en/code-security/secret-scanning (token formats).
    (
        "api_key",
        re.compile(
            r"\b(?:sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
            r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}"
            r"|AIza[0-9A-Za-z_-]{35}"
            r"|(?:sk|rk)_live_[0-9A-Za-z]{20,}"
            r"|glpat-[0-9A-Za-z_-]{20}"
            r"|hf_[A-Za-z0-9]{30,})"
        ),
        _always,
        False,
    ),
    (
        "private_key",
        re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY(?: BLOCK)?-----"),
        _always,
        False,
    ),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        _always,
        False,
    ),
    (
        "secret",
        re.compile(
            r"(?i)(?<![A-Za-z])(?:password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?token)"
            r"\s*[:=]\s*['\"]?(?=[^\s'\"]*\d)[^\s'\",;]{8,}"
        ),
        _always,
        False,
    ),
]  # fmt: skip

# Cheap gates: a detector's regex only runs when the text has one of its marker substrings
# (lower-cased); most text has none.
_NUMERIC_SPAN = re.compile(r"[+(]?\d[\d .()-]{6,}\d")
_GATES: dict[str, tuple[str, ...]] = {
    "email": ("@",),
    "api_key": (
        "sk-", "akia", "asia", "gh", "github_pat_", "xox", "aiza", "_live_", "glpat-", "hf_",
    ),
    "private_key": ("private key",),
    "jwt": ("eyj",),
    "secret": (
        "password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey", "access_token",
        "access-token", "accesstoken",
    ),
}  # fmt: skip


def find_pii(text: str) -> list[str]:
    """Kinds of personal data or secrets in ``text``, sorted, each at most once."""
    if not text:
        return []
    text = clip(text)
    lowered = text.lower()
    # Number-only kinds (cards, SSNs, phones, Aadhaar, SIN) are searched in the runs of digits
    # and separators only: a 2,000-character prompt usually has a handful, each a few characters.
    numeric = "\n|\n".join(_NUMERIC_SPAN.findall(text))
    found: set[str] = set()
    for kind, pattern, validator, number_only in _DETECTORS:
        if kind in found:
            continue
        gate = _GATES.get(kind)
        if gate is not None and not any(marker in lowered for marker in gate):
            continue
        haystack = numeric if number_only else text
        if not haystack:
            continue
        for match in pattern.finditer(haystack):
            if validator(match.group(0)):
                found.add(kind)
                break
    # A card number also reads as a phone-shaped digit run; report the stronger kind only.
    if "card" in found and "phone" in found and not _phone_outside_cards(text):
        found.discard("phone")
    return sorted(found)


def _phone_outside_cards(text: str) -> bool:
    stripped = _CARD.sub(" ", text)
    return any(_phone_valid(match.group(0)) for match in _PHONE.finditer(stripped))


_CARD = next(pattern for kind, pattern, _, _ in _DETECTORS if kind == "card")
_PHONE = next(pattern for kind, pattern, _, _ in _DETECTORS if kind == "phone")


def pii_kinds(texts: Iterable[str]) -> list[str]:
    """Union of :func:`find_pii` over ``texts``."""
    kinds: set[str] = set()
    for text in texts:
        kinds.update(find_pii(text))
    return sorted(kinds)


class PIIScorer(Scorer):
    name = "pii"

    def score(self, call: CallContext) -> Mapping[str, Any]:
        in_prompt = find_pii(call.prompt)
        in_response = find_pii(call.response)
        kinds = sorted(set(in_prompt) | set(in_response))
        severe = [kind for kind in kinds if kind in SEVERE_KINDS]
        return {
            "pii": kinds,
            "pii_prompt": in_prompt,
            "pii_response": in_response,
            "flags": [f"pii:{kind}" for kind in severe],
        }
