"""A donor's answer typed as a keyword: "CO 123", "KHÔNG 123", "có" (issue 15, DOMAIN.md §9).

Phones type Vietnamese with or without diacritics, in any case, with stray spaces, a "#" before
the code or none between: all read the same. "KO" is the usual shorthand of "không". Anything
else is not an answer: a reply asks again rather than guess (an answer recorded wrongly sends
someone, or no one, to a hospital).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ground.sms_text import unaccented

_ANSWER = re.compile(r"(CO|KHONG|KO)\s*#?\s*(\d{1,9})?")
_NOISE = re.compile(r"[\s.,!?;:()\"'-]+")


@dataclass(frozen=True)
class KeywordAnswer:
    yes: bool
    code: int | None  # the request's short code; None: "her only open call"


def parse_keyword_answer(text: str) -> KeywordAnswer | None:
    """The answer ``text`` gives, or None when it is not one."""
    plain = _NOISE.sub(" ", unaccented(text).upper()).strip()
    m = _ANSWER.fullmatch(plain)
    if m is None:
        return None
    return KeywordAnswer(yes=m.group(1) == "CO", code=int(m.group(2)) if m.group(2) else None)


__all__ = ["KeywordAnswer", "parse_keyword_answer"]
