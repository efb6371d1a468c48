"""What the dispatcher asks the bot to say: every message kind, declared once, never its wording.

Each kind is a frozen dataclass: its parameters (checked when built, so a wrong key or type
fails where the message is written), its priority in the sender, which parameters are
personal (cleared once it has left), and ``plain()``, the English used by logs, tests and the
benches. The bot's Telegram rendering of each kind lives in bot.render, registered per kind
(the dispatcher never imports the bot); tests/test_message_kinds.py fails when a kind lacks one.
Every message goes through the outbox (dispatcher.outbox) as (kind, parameters, locale).

Personal data (DOMAIN.md §7): a call carries the request, never the patient; the
hospital gets a donor's name and phone only once she said "available"; call lists
(names, phones) go only to the leads of the donor's own club, never to a group.

Priorities, lower first: a board edit goes ahead even of calls (the per-chat limit holds it to
about one a second per board, a thirtieth of the budget, and a nurse watching a frozen board
phones around); reminders wait behind everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.message_base import KINDS, NOT_STORED, InvalidParams, Message, Record, load, personal_fields
from ground.parsing import format_phone

__all__ = ["KINDS", "InvalidParams", "Message", "load", "personal_fields"]


def _type(abo: str, rh: str) -> str:
    return f"{abo}{rh}"


# --------------------------------------------------------------------------- to a donor

@dataclass(frozen=True)
class Call(Message, kind="call", priority=1):
    """The call, with "available" / "can't" buttons bound to (request_id, token)."""

    request_id: int
    token: str
    hospital: str
    address: str
    abo: str
    rh: str
    component: str
    units: int
    urgency: str
    deadline: str  # ISO, UTC
    deadline_local: str
    distance_km: float | None
    travel_min: int | None
    note: str
    # Issue 9: a donor who cannot make it in time is asked only when nobody who can is left,
    # and her call says how late she would be.
    late: bool
    arrive_local: str | None
    # Issue 9: she was told it was no longer needed and the request is short again; the call says so.
    # A default: rows written before it load as a first call.
    again: bool = False

    def plain(self) -> str:
        late = f" You would arrive around {self.arrive_local}, after that." if self.late else ""
        again = "Needed again. " if self.again else ""
        return (f"{again}Urgent: {self.hospital} needs {_type(self.abo, self.rh)} {self.component} by "
                f"{self.deadline_local}. {self.distance_km} km, about {self.travel_min} min away.{late} Can you come?")


@dataclass(frozen=True)
class Destination(Record):
    """Where to go: the hospital and the deadline (a confirmation and its map pin share them)."""

    request_id: int
    hospital: str
    address: str
    hospital_phone: str | None
    lat: float
    lon: float
    deadline: str  # ISO, UTC
    deadline_local: str


@dataclass(frozen=True)
class Confirmed(Destination, Message, kind="confirmed", priority=2):
    """Edits the call after "available": where to go, show this at reception."""

    token: str
    late: bool
    arrive_local: str | None

    def plain(self) -> str:
        return f"Thank you! {self.hospital} expects you by {self.deadline_local}. Show this message at reception."


@dataclass(frozen=True)
class Venue(Destination, Message, kind="venue", priority=2):
    """The hospital as a map pin, right after "confirmed"."""

    def plain(self) -> str:
        return f"[map pin] {self.hospital} {self.address or ''}".rstrip()


@dataclass(frozen=True)
class Declined(Message, kind="declined", priority=3):
    """Edits the call after "can't": thank you."""

    request_id: int

    def plain(self) -> str:
        return "Thank you for answering. We will ask someone else."


@dataclass(frozen=True)
class Withdrew(Message, kind="withdrew", priority=3):
    """Edits the call after "I can't come after all": thank you for telling us."""

    request_id: int

    def plain(self) -> str:
        return "Thank you for telling us. We will ask someone else."


@dataclass(frozen=True)
class StandDown(Message, kind="stand_down", priority=1):
    """Edits the call: no longer needed."""

    request_id: int
    reason: str  # covered | stopped | cancelled | expired | replaced (a nearer donor will be there sooner, issue 9)

    def plain(self) -> str:
        return "No longer needed — thank you."


@dataclass(frozen=True)
class Donated(Message, kind="donated", priority=3,
              personal=("volume_ml", "count", "next_date", "milestone")):
    """The hospital recorded her donation: thanks, count, next date, milestone."""

    request_id: int
    hospital: str
    volume_ml: int | None  # None for apheresis: the machine sets the volume
    component: str
    count: int
    milestone: bool
    next_date: str | None

    def plain(self) -> str:
        given = f"{self.volume_ml} ml" if self.volume_ml else self.component
        return (f"Thank you for donating {given} at {self.hospital}! Donation number {self.count}."
                + (f" You may donate again from {self.next_date}." if self.next_date else ""))


@dataclass(frozen=True)
class Deferred(Message, kind="deferred", priority=5):
    """Deferred at screening: kind words and the first day she may give again."""

    request_id: int
    hospital: str
    until: str

    def plain(self) -> str:
        return (f"Thank you for coming to {self.hospital}. You cannot give blood today; you may give again "
                f"from {self.until}.")


@dataclass(frozen=True)
class EligibleAgain(Message, kind="eligible_again", priority=9, personal=("count",)):
    """Reminder: the interval after her last donation ends today."""

    count: int

    def plain(self) -> str:
        return (f"From today you may donate blood again. Thank you for your {self.count} donation(s)! "
                "You can turn these reminders off in /me.")


# --------------------------------------------------------------------------- to hospital staff

@dataclass(frozen=True)
class Board(Message, kind="board", priority=0):
    """The live board, edited in place. Only the request is stored: the sender reads ``view``
    (dispatcher.board.snapshot) at the moment it sends, so a coalesced edit is never stale."""

    request_id: int
    view: Mapping[str, Any] | None = field(default=None, metadata=NOT_STORED)

    def plain(self) -> str:
        p = self.view
        if p is None:
            return f"Board #{self.request_id}"
        return (f"Board #{p['request_id']}: {_type(p['abo'], p['rh'])} {p['component']} × {p['units']}, "
                f"{p['state']}: {p['confirmed']}/{p['target']} confirmed, {p['donated']} donated; "
                + "; ".join(f"{d['name']} {d['state']}" for d in p.get("donors") or []))


@dataclass(frozen=True)
class BoardMoved(Message, kind="board_moved", priority=5):
    """An old board after /board N: no longer updated, no buttons."""

    request_id: int
    time: str  # when the old board was posted, local

    def plain(self) -> str:
        return f"Request #{self.request_id}: this board is no longer updated; the live board is below."


@dataclass(frozen=True)
class Posted(Message, kind="posted", priority=5):
    """To the hospital's other staff: the request is out, /board N follows it."""

    request_id: int
    abo: str
    rh: str
    component: str
    units: int
    asked: int
    rare: bool
    next_wave_min: int | None
    warn_travel: bool  # DOMAIN.md §6: under 2–3 hours is hard to meet with new donors

    def plain(self) -> str:
        return (f"Request #{self.request_id}: {_type(self.abo, self.rh)} {self.component} × {self.units}: sent to "
                f"{self.asked} donors" + (", every club (rare type)" if self.rare else "")
                + (f"; next wave in {self.next_wave_min} min if needed" if self.next_wave_min is not None else "")
                + (". Warning: few donors can arrive before the deadline." if self.warn_travel else "."))


@dataclass(frozen=True)
class NudgeArrival(Message, kind="nudge_arrival", priority=3, personal=("name", "phone")):
    """A donor who said available is late: check, with arrived / did-not-come buttons."""

    request_id: int
    contact_id: int
    name: str
    phone: str | None  # None in a group chat
    minutes: int
    en_route: bool

    def plain(self) -> str:
        return (f"Request #{self.request_id}: {self.name} said available {self.minutes} min ago and is not marked "
                f"arrived.")


@dataclass(frozen=True)
class NudgeDeadline(Message, kind="nudge_deadline", priority=3):
    """Not covered yet, the deadline is near."""

    request_id: int
    abo: str
    rh: str
    component: str
    confirmed: int
    target: int
    deadline_local: str
    minutes_left: int

    def plain(self) -> str:
        return (f"Request #{self.request_id} is not covered ({self.confirmed}/{self.target}); deadline "
                f"{self.deadline_local}, {self.minutes_left} min left.")


@dataclass(frozen=True)
class RequestSummary(Record):
    """Where a request ended up (covered, exhausted, expired)."""

    request_id: int
    abo: str
    rh: str
    component: str
    units: int
    confirmed: int
    target: int
    asked: int


@dataclass(frozen=True)
class Covered(RequestSummary, Message, kind="covered", priority=5):
    def plain(self) -> str:
        return (f"Request #{self.request_id} is covered: {self.confirmed} donors confirmed. "
                "Everyone else was stood down.")


@dataclass(frozen=True)
class Exhausted(RequestSummary, Message, kind="exhausted", priority=5):
    def plain(self) -> str:
        return (f"Request #{self.request_id}: no eligible donor left to message ({self.asked} asked, "
                f"{self.confirmed} confirmed). Club leads have their call lists.")


@dataclass(frozen=True)
class Expired(RequestSummary, Message, kind="expired", priority=5):
    def plain(self) -> str:
        return f"Request #{self.request_id} reached its deadline with {self.confirmed}/{self.target} confirmed."


# --------------------------------------------------------------------------- to a club lead

@dataclass(frozen=True)
class Listed(Record):
    """A member on a lead's call list: someone the bot cannot message."""

    name: str
    phone: str
    type: str  # "O-"
    why: str = ""  # not_linked | not_started | blocked | no_consent


@dataclass(frozen=True)
class LeadPage(Record):
    """A lead is paged about a request, with the call list of their own club only."""

    request_id: int
    club_id: int
    hospital: str
    abo: str
    rh: str
    component: str
    deadline_local: str
    call_list: tuple[Listed, ...]

    def _listed(self) -> str:
        return "".join(f"\n  {r.name} {format_phone(r.phone)} ({r.type})" for r in self.call_list)


@dataclass(frozen=True)
class LeadRare(LeadPage, Message, kind="lead_rare", priority=2, personal=("call_list",)):
    """A rare-type request, paged at once, with the club's call list."""

    def plain(self) -> str:
        return (f"Rare type {_type(self.abo, self.rh)} needed at {self.hospital} by {self.deadline_local}; every "
                f"eligible donor has been messaged. Please phone these members:{self._listed()}")


@dataclass(frozen=True)
class LeadExhausted(LeadPage, Message, kind="lead_exhausted", priority=5, personal=("call_list",)):
    """Nobody left to message: the club's call list."""

    def plain(self) -> str:
        return (f"Request #{self.request_id} ({_type(self.abo, self.rh)} at {self.hospital}) has nobody left to "
                f"message. Please phone these members:{self._listed()}")


def _counts(rows: tuple[tuple[Any, ...], ...]) -> str:
    """((abo, rh, n, …), …) → "O- 2 · A- 0"; a fourth number is shown as "(k covered)"."""
    return " · ".join(f"{r[0]}{r[1]} {r[2]}" + (f" ({r[3]} covered)" if len(r) > 3 else "") for r in rows)


@dataclass(frozen=True)
class LeadDigest(Message, kind="lead_digest", priority=9):
    """Weekly: the club's members able to give per type, and the requests around it. Counts only,
    never names or phones: a lead may forward it (DOMAIN.md §7)."""

    club: str
    week: str  # "2026-W49"
    members: int
    eligible: tuple[tuple[str, str, int], ...]  # (abo, rh, members able to give), Rh− first
    eligible_total: int
    paused: int
    unreachable: int
    radius_km: float
    days: int
    requests: tuple[tuple[str, str, int, int], ...]  # (abo, rh, posted, covered)
    requests_total: int
    covered_total: int

    def plain(self) -> str:
        return (f"Weekly digest for {self.club} ({self.week}): {self.members} members, {self.eligible_total} "
                f"able to give now: {_counts(self.eligible)}. Paused or deferred: {self.paused}; not reachable "
                f"on Telegram: {self.unreachable}. Requests within {self.radius_km:g} km in {self.days} days: "
                f"{self.requests_total}, {self.covered_total} covered"
                + (f": {_counts(self.requests)}" if self.requests else "") + ".")


@dataclass(frozen=True)
class MonthlyReport(Message, kind="monthly_report", priority=9):
    """On the first of the month, to a lead or staff member who asked (/monthly on): last month's
    report, in three messages (``part``: the chart, the figures, the workbook), each its own outbox
    row so a retry never sends a part twice. Only what names the report is stored: the bot reads
    the figures from the database when it sends (bot.monthly_report)."""

    scope: str  # "club" or "hospital"
    scope_id: int
    name: str  # the club's or hospital's, for the plain text
    month: str  # "2026-11"
    part: str  # "chart", "figures" or "workbook"

    def plain(self) -> str:
        return f"Monthly report ({self.part}) for {self.scope} {self.name}, {self.month}"
