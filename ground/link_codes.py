"""One-time codes that link a donor's chat on another channel to her record: "K7QM-3RXD".

Read off a phone and typed into Zalo, so: eight characters of an alphabet without the look-alikes
(0/O, 1/I/L), any case, with or without the dash or spaces. 31 letters and digits to the power 8 is
about 8.5 × 10¹¹ codes, and each lives a day and is used once: guessing one is not a way in.
"""

from __future__ import annotations

import random
import re

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 8
_SPACING = re.compile(r"[\s\-_.]+")


def new_code(rng: random.Random | None = None) -> str:
    """A fresh code in its canonical form (no dash); ``rng`` for tests, else the system's CSPRNG."""
    source = rng if rng is not None else random.SystemRandom()
    return "".join(source.choice(ALPHABET) for _ in range(LENGTH))


def format_code(code: str) -> str:
    """The code as shown to a person: two groups of four."""
    return f"{code[:4]}-{code[4:]}"


def parse_code(text: str) -> str | None:
    """The canonical code ``text`` holds, or None when it is not one."""
    plain = _SPACING.sub("", text.strip()).upper()
    if len(plain) != LENGTH or any(c not in ALPHABET for c in plain):
        return None
    return plain


__all__ = ["ALPHABET", "LENGTH", "format_code", "new_code", "parse_code"]
