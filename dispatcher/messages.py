"""What the dispatcher asks the bot to say: kinds and parameters, never wording.

Every message goes through the outbox (dispatcher.sender) as (kind, params, locale);
the bot renders it with its gettext catalogs and keyboards. ``render_plain`` is the
English used by logs, tests and the benches. Parameters are JSON-safe.

Personal data (DOMAIN.md §7): a call carries the request, never the patient; the
hospital gets a donor's name and phone only once she said "available"; call lists
(names, phones) go only to the leads of the donor's own club, never to a group.
"""

from __future__ import annotations

import enum
from typing import Any


class Kind(str, enum.Enum):
    # to a donor
    call = "call"  # the call, with "available" / "can't" buttons bound to (request_id, token)
    confirmed = "confirmed"  # edits the call after "available": where to go, show at reception
    venue = "venue"  # the hospital as a map pin, right after "confirmed"
    declined = "declined"  # edits the call after "can't": thank you
    withdrew = "withdrew"  # edits the call after "I can't come after all": thank you for telling us
    donated = "donated"  # the hospital recorded her donation: thanks, count, next date, milestone
    deferred = "deferred"  # deferred at screening: kind words and the first day she may give again (params.until)
    # edits the call: no longer needed (params.reason: covered | stopped | cancelled | expired | replaced — a
    # nearer donor will be there sooner, issue 9)
    stand_down = "stand_down"
    eligible_again = "eligible_again"  # reminder: the interval after her last donation ends today (params.count)
    # to hospital staff
    board = "board"  # the live board, edited in place; params are read when sent (dispatcher.board)
    board_moved = "board_moved"  # an old board after /board N: no longer updated, no buttons (params.time)
    posted = "posted"  # to the hospital's other staff: the request is out, /board N follows it
    nudge_arrival = "nudge_arrival"  # a donor who said available is late: check, with arrived / did-not-come buttons
    nudge_deadline = "nudge_deadline"  # not covered yet, the deadline is near
    covered = "covered"
    exhausted = "exhausted"
    expired = "expired"
    # to a club lead
    lead_rare = "lead_rare"  # a rare-type request, paged at once, with the club's call list
    lead_exhausted = "lead_exhausted"  # nobody left to message: the club's call list
    lead_digest = "lead_digest"  # weekly: the club's members able to give per type, and the requests around it


def _type(p: dict[str, Any]) -> str:
    return f"{p.get('abo', '?')}{p.get('rh', '?')}"


def _call_list(p: dict[str, Any]) -> str:
    rows = p.get("call_list") or []
    return "".join(f"\n  {r['name']} {r['phone']} ({r['type']})" for r in rows)


def _counts(rows: list) -> str:
    """[[abo, rh, n, ...], …] → "O- 2 · A- 0"; a fourth number is shown as "(k covered)"."""
    return " · ".join(f"{r[0]}{r[1]} {r[2]}" + (f" ({r[3]} covered)" if len(r) > 3 else "") for r in rows)


def render_plain(kind: str, p: dict[str, Any]) -> str:
    k = Kind(kind)
    if k is Kind.call:
        late = f" You would arrive around {p['arrive_local']}, after that." if p.get("late") else ""
        again = "Needed again. " if p.get("again") else ""
        return (f"{again}Urgent: {p['hospital']} needs {_type(p)} {p['component']} by {p['deadline_local']}. "
                f"{p['distance_km']} km, about {p['travel_min']} min away.{late} Can you come?")
    if k is Kind.confirmed:
        return f"Thank you! {p['hospital']} expects you by {p['deadline_local']}. Show this message at reception."
    if k is Kind.venue:
        return f"[map pin] {p['hospital']} {p.get('address') or ''}".rstrip()
    if k is Kind.declined:
        return "Thank you for answering. We will ask someone else."
    if k is Kind.withdrew:
        return "Thank you for telling us. We will ask someone else."
    if k is Kind.stand_down:
        return "No longer needed — thank you."
    if k is Kind.posted:
        return (f"Request #{p['request_id']}: {_type(p)} {p['component']} × {p['units']}: sent to {p['asked']} donors"
                + (", every club (rare type)" if p.get("rare") else "")
                + (f"; next wave in {p['next_wave_min']} min if needed" if p.get("next_wave_min") is not None else "")
                + (". Warning: few donors can arrive before the deadline." if p.get("warn_travel") else "."))
    if k is Kind.board:
        return (f"Board #{p['request_id']}: {_type(p)} {p['component']} × {p['units']}, {p['state']}: "
                f"{p['confirmed']}/{p['target']} confirmed, {p['donated']} donated; "
                + "; ".join(f"{d['name']} {d['state']}" for d in p.get("donors") or []))
    if k is Kind.board_moved:
        return f"Request #{p['request_id']}: this board is no longer updated; the live board is below."
    if k is Kind.nudge_arrival:
        return (f"Request #{p['request_id']}: {p['name']} said available {p['minutes']} min ago and is not marked "
                f"arrived.")
    if k is Kind.nudge_deadline:
        return (f"Request #{p['request_id']} is not covered ({p['confirmed']}/{p['target']}); deadline "
                f"{p['deadline_local']}, {p['minutes_left']} min left.")
    if k is Kind.donated:
        given = f"{p['volume_ml']} ml" if p.get("volume_ml") else p.get("component", "")
        return (f"Thank you for donating {given} at {p['hospital']}! Donation number {p['count']}."
                + (f" You may donate again from {p['next_date']}." if p.get("next_date") else ""))
    if k is Kind.deferred:
        return (f"Thank you for coming to {p['hospital']}. You cannot give blood today; you may give again "
                f"from {p['until']}.")
    if k is Kind.covered:
        return f"Request #{p['request_id']} is covered: {p['confirmed']} donors confirmed. Everyone else was stood down."
    if k is Kind.exhausted:
        return (f"Request #{p['request_id']}: no eligible donor left to message ({p['asked']} asked, "
                f"{p['confirmed']} confirmed). Club leads have their call lists.")
    if k is Kind.expired:
        return f"Request #{p['request_id']} reached its deadline with {p['confirmed']}/{p['target']} confirmed."
    if k is Kind.lead_rare:
        return (f"Rare type {_type(p)} needed at {p['hospital']} by {p['deadline_local']}; every eligible donor "
                f"has been messaged. Please phone these members:{_call_list(p)}")
    if k is Kind.lead_exhausted:
        return (f"Request #{p['request_id']} ({_type(p)} at {p['hospital']}) has nobody left to message. "
                f"Please phone these members:{_call_list(p)}")
    if k is Kind.eligible_again:
        return (f"From today you may donate blood again. Thank you for your {p['count']} donation(s)! "
                "You can turn these reminders off in /me.")
    if k is Kind.lead_digest:
        return (f"Weekly digest for {p['club']} ({p['week']}): {p['members']} members, {p['eligible_total']} "
                f"able to give now: {_counts(p['eligible'])}. Paused or deferred: {p['paused']}; not reachable "
                f"on Telegram: {p['unreachable']}. Requests within {p['radius_km']:g} km in {p['days']} days: "
                f"{p['requests_total']}, {p['covered_total']} covered" + (f": {_counts(p['requests'])}"
                                                                          if p['requests'] else "") + ".")
    raise ValueError(kind)  # pragma: no cover
