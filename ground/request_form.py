"""What a nurse types when posting a request.

The quick form ``/urgent O- 2 [component] [urgency]``: words are matched folded (no
diacritics, any case), in English or Vietnamese, in any order after the type and the
units, because at 3 a.m. nobody remembers an order. And the typed steps of the guided
``/request``: a number of units, a deadline as local time, a short note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from ground.i18n import N_, Text
from ground.parsing import ParseError, fold, parse_blood_type, quoted, whole_number

MAX_DEADLINE_HOURS = 72  # the planned default (DOMAIN.md §6): a later need is not a call to donors yet
MAX_NOTE_LENGTH = 200
_UTC = timezone.utc

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
    # (ASCII digits: "²" is a digit to str.isdigit, not to int.)
    units_at = next((i for i, t in enumerate(tokens) if t.isascii() and t.isdigit()), None)
    if units_at is None or units_at == 0:
        raise ParseError(Text(N_("How many units? {usage}"), {"usage": Text(USAGE)}))
    abo, rh = parse_blood_type(" ".join(tokens[:units_at]))
    units = _in_range(whole_number(tokens[units_at], low=1, high=max_units), max_units)
    rest = fold(" ".join(tokens[units_at + 1:]))
    component, rest = _match(rest, COMPONENT_WORDS)
    urgency, rest = _match(rest, URGENCY_WORDS)
    if rest:
        raise ParseError(Text(N_("I did not understand “{words}”. {usage}"),
                              {"words": quoted(rest), "usage": Text(USAGE)}))
    return QuickRequest(abo, rh, units, component or "red_cells", urgency or "urgent")


def _in_range(units: int | None, max_units: int) -> int:
    if units is None or not 1 <= units <= max_units:
        raise ParseError(Text(N_("Units must be from 1 to {max}. For more, post several requests or call "
                                 "the blood centre."), {"max": max_units}))
    return units


_UNITS = re.compile(r"([0-9]{1,6})\s*(?:units?|don vi|dv|tui|bags?)?\.?")


def parse_units(value: str, *, max_units: int) -> int:
    """A typed number of units: "2", "2 units", "2 đơn vị"."""
    match = _UNITS.fullmatch(fold(value or ""))
    if match is None:
        raise ParseError(Text(N_("“{value}” is not a number of units. Type a whole number from 1 to {max}."),
                              {"value": quoted((value or "").strip()), "max": max_units}))
    return _in_range(whole_number(match.group(1), low=1, high=max_units), max_units)


_CLOCK = re.compile(r"([0-9]{1,2})\s*(?::|h|\.|gio)\s*([0-9]{2})?")
_DAY = re.compile(r"([0-9]{1,2})\s*/\s*([0-9]{1,2})(?:\s*/\s*([0-9]{4}))?")
_DEADLINE_USAGE = N_("“{value}” is not a time. Write it as HH:MM, or HH:MM DD/MM for another day — "
                     "for example 14:30 or 08:00 23/11.")


def format_local(moment: datetime, tz: tzinfo) -> str:
    """HH:MM DD/MM/YYYY in the hospital's time zone (UX.md: 24 h, day first)."""
    return moment.astimezone(tz).strftime("%H:%M %d/%m/%Y")


def parse_deadline(value: str, *, now: datetime, tz: tzinfo, max_hours: int = MAX_DEADLINE_HOURS) -> datetime:
    """A typed local time, "14:30" (the next 14:30) or "14:30 23/11" (that day), as an aware UTC datetime.

    Also "14h30", "14h", "14 giờ" and the date before the time. It must lie in the
    future and at most ``max_hours`` ahead.
    """
    text = fold(value or "")
    failed = ParseError(Text(_DEADLINE_USAGE, {"value": quoted((value or "").strip())}))
    day_match = _DAY.search(text)
    rest = (text[:day_match.start()] + " " + text[day_match.end():]).strip() if day_match else text
    clock = _CLOCK.fullmatch(rest)
    if clock is None:
        raise failed
    hour, minute = int(clock.group(1)), int(clock.group(2) or 0)
    local_now = now.astimezone(tz)
    try:
        if day_match is None:
            moment = datetime.combine(local_now.date(), datetime.min.time(), tz).replace(hour=hour, minute=minute)
            if moment <= local_now:  # "02:00" typed at 23:00 means tonight
                moment += timedelta(days=1)
        else:
            day, month = int(day_match.group(1)), int(day_match.group(2))
            year = int(day_match.group(3) or local_now.year)
            moment = datetime(year, month, day, hour, minute, tzinfo=tz)
            if day_match.group(3) is None and moment < local_now - timedelta(days=180):
                moment = datetime(year + 1, month, day, hour, minute, tzinfo=tz)  # "02/01" typed in December
    except ValueError:  # 25:00, 31/02
        raise failed from None
    if moment <= local_now:
        raise ParseError(Text(N_("{when} has already passed. Type a time still to come."),
                              {"when": format_local(moment, tz)}))
    if moment > local_now + timedelta(hours=max_hours):
        raise ParseError(Text(N_("{when} is more than {max} hours away. Please post the request "
                                 "nearer the time."), {"when": format_local(moment, tz), "max": max_hours}))
    return moment.astimezone(_UTC)


def clean_note(value: str, *, max_length: int = MAX_NOTE_LENGTH) -> str:
    """The note donors will read, on one line; too long is refused rather than cut."""
    note = " ".join((value or "").split())
    if not note:
        raise ParseError(Text(N_("The note is empty. Type a few words, or tap Skip.")))
    if len(note) > max_length:
        raise ParseError(Text(N_("The note is too long ({n} of at most {max} characters)."),
                              {"n": len(note), "max": max_length}))
    return note
