"""The quick request form a nurse types: ``/urgent O- 2 [component] [urgency]``.

Words are matched folded (no diacritics, any case), in English or Vietnamese, in any
order after the type and the units, because at 3 a.m. nobody remembers an order.
"""

from __future__ import annotations

from dataclasses import dataclass

from redreserve.i18n import N_, Text
from redreserve.parsing import ParseError, fold, parse_blood_type

COMPONENT_WORDS = {
    "whole_blood": ("whole", "wholeblood", "toan phan", "mau toan phan", "tp"),
    "red_cells": ("red", "redcells", "red cells", "rbc", "hong cau", "khoi hong cau", "hc"),
    "platelets": ("platelets", "platelet", "plt", "tieu cau", "tc"),
    "plasma": ("plasma", "huyet tuong", "ht"),
}
URGENCY_WORDS = {
    "critical": ("critical", "cap cuu", "nguy kich", "khan cap"),
    "urgent": ("urgent", "gap"),
    "planned": ("planned", "ke hoach", "binh thuong"),
}
USAGE = N_("Write it like: /urgent O- 2 — blood type and units; optionally the component "
           "(red cells, whole, platelets, plasma) and the urgency (critical, urgent, planned).")


@dataclass(frozen=True)
class QuickRequest:
    abo: str
    rh: str
    units: int
    component: str = "red_cells"
    urgency: str = "urgent"


def _match(words: str, table: dict[str, tuple[str, ...]]) -> tuple[str | None, str]:
    """The key whose word occurs in ``words`` (longest word first), and ``words`` without it."""
    padded = f" {words} "
    for word, key in sorted(((w, k) for k, ws in table.items() for w in ws), key=lambda p: -len(p[0])):
        if f" {word} " in padded:
            return key, " ".join(padded.replace(f" {word} ", " ", 1).split())
    return None, words


def parse_quick_request(args: str | None, *, max_units: int) -> QuickRequest:
    tokens = (args or "").split()
    if len(tokens) < 2:
        raise ParseError(Text(USAGE))
    # The type may be written in one or several tokens ("AB Rh-", "O âm"): the units
    # are the first token that is a whole number, and everything before it is the type.
    units_at = next((i for i, t in enumerate(tokens) if t.isdigit()), None)
    if units_at is None or units_at == 0:
        raise ParseError(Text(N_("How many units? {usage}"), {"usage": Text(USAGE)}))
    abo, rh = parse_blood_type(" ".join(tokens[:units_at]))
    units = int(tokens[units_at])
    if not 1 <= units <= max_units:
        raise ParseError(Text(N_("Units must be from 1 to {max}. For more, post several requests or call "
                                 "the blood centre."), {"max": max_units}))
    rest = fold(" ".join(tokens[units_at + 1:]))
    component, rest = _match(rest, COMPONENT_WORDS)
    urgency, rest = _match(rest, URGENCY_WORDS)
    if rest:
        raise ParseError(Text(N_("I did not understand “{words}”. {usage}"), {"words": rest, "usage": Text(USAGE)}))
    return QuickRequest(abo, rh, units, component or "red_cells", urgency or "urgent")
