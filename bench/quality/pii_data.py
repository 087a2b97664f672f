"""Synthetic personal data for the PII bench: valid-checksum values in sentence templates.

Synthetic by construction (no real person's data); recall on it says the patterns and validators
accept well-formed values in running text, not how often real users paste them.
"""

from __future__ import annotations

import random
import string

TEMPLATES = [
    "Hi, my {label} is {value}, can you update my account?",
    "Please send the refund using {value}.",
    "{value}",
    "Customer wrote: 'you can reach me via {value}' - please log it.",
    "Here are the details ({label}): {value}. Thanks!",
]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = body + check
        total = 0
        for index, char in enumerate(reversed(digits)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def card(rng: random.Random) -> str:
    number = _luhn_complete(
        rng.choice(["4", "51", "55", "37", "6011"]), rng.choice([16, 16, 15]), rng
    )
    if rng.random() < 0.5:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24)])
    if country in {"GB", "NL"}:
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        bban += "".join(rng.choice(string.digits) for _ in range(length - 8))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    value = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def email(rng: random.Random) -> str:
    user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 10)))
    domain = rng.choice(["gmail.com", "acme.io", "uni-bonn.de"])
    return f"{user}.{rng.choice(['smith', 'lee', 'garcia'])}@{domain}"


def phone(rng: random.Random) -> str:
    digits = "".join(rng.choice(string.digits) for _ in range(7))
    return rng.choice(
        [
            f"+1 {rng.randint(201, 989)} {digits[:3]} {digits[3:]}",
            f"({rng.randint(201, 989)}) {digits[:3]}-{digits[3:]}",
            f"+44 20 {digits[:4]} {digits[4:]}{rng.randint(0, 9)}",
            f"+49 30 {digits}",
            f"{rng.randint(201, 989)}-{digits[:3]}-{digits[3:]}",
        ]
    )


def api_key(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    return rng.choice(
        [
            "sk-proj-" + "".join(rng.choice(alnum) for _ in range(48)),
            "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            "ghp_" + "".join(rng.choice(alnum) for _ in range(36)),
            "xoxb-"
            + "-".join("".join(rng.choice(string.digits) for _ in range(12)) for _ in range(2)),
            "sk-ant-api03-" + "".join(rng.choice(alnum) for _ in range(40)),
        ]
    )


GENERATORS = {
    "card": ("card number", card),
    "iban": ("IBAN", iban),
    "ssn": ("SSN", ssn),
    "email": ("email", email),
    "phone": ("phone", phone),
    "api_key": ("API key", api_key),
}


def synthetic(kind: str, n: int, seed: int = 0) -> list[str]:
    """``n`` sentences each holding one valid synthetic value of ``kind``."""
    rng = random.Random(f"{seed}:{kind}")
    label, generate = GENERATORS[kind]
    return [rng.choice(TEMPLATES).format(label=label, value=generate(rng)) for _ in range(n)]


def corrupted(kind: str, n: int, seed: int = 1) -> list[str]:
    """Like :func:`synthetic` for "card" or "iban", with the last digit changed: the checksum
    fails, so a detector must not report them."""
    out = []
    for sentence in synthetic(kind, n, seed):
        positions = [i for i, char in enumerate(sentence) if char.isdigit()]
        last = positions[-1]
        digit = str((int(sentence[last]) + 1 + (seed % 8)) % 10)
        out.append(sentence[:last] + digit + sentence[last + 1 :])
    return out
