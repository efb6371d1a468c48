"""How many SMS parts a text takes, and Vietnamese without diacritics (DOMAIN.md §9).

A text made only of the GSM 03.38 alphabet is sent 7 bits a character: 160 in one part, 153 a part
once split (the rest carries the join header); a character of its extension table (``€ [ ] { } \\ ^ ~ |``)
takes two. Any other character, every Vietnamese diacritic among them, makes the whole text UCS-2:
70 UTF-16 units in one part, 67 a part once split. Sending is paid per part, so a call is kept short.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

# GSM 03.38 basic alphabet (the escape 0x1B excluded) and the characters of its extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class Parts:
    encoding: str  # "gsm7" | "ucs2"
    units: int  # septets (gsm7) or UTF-16 code units (ucs2)
    parts: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def count_parts(text: str) -> Parts:
    """The encoding an SMS of ``text`` is sent in, its length in that encoding, and its parts (0 for "")."""
    if is_gsm7(text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2  # a character beyond the BMP takes two units
        single, multi, encoding = 70, 67, "ucs2"
    parts = 0 if units == 0 else 1 if units <= single else math.ceil(units / multi)
    return Parts(encoding, units, parts)


_NOT_DECOMPOSED = str.maketrans({"đ": "d", "Đ": "D"})  # đ is a letter of its own, not d with a mark


def unaccented(text: str) -> str:
    """Vietnamese without its diacritics ("Bạch Mai" → "Bach Mai", "đến" → "den"): GSM-7, 160 a part.
    Other characters the GSM alphabet lacks are left as they are (the text stays UCS-2 then)."""
    decomposed = unicodedata.normalize("NFD", text.translate(_NOT_DECOMPOSED))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


__all__ = ["GSM7_BASIC", "GSM7_EXTENDED", "Parts", "count_parts", "is_gsm7", "unaccented"]
