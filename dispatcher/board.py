"""The hospital's live board: one message per request and chat, edited in place (issue 4).

A board is an outbox row of kind ``board`` that was sent by the bot (the posting
handler or ``/board N``) and registered with ``attach``. Whenever the request
changes, ``refresh_boards`` queues one edit per board *unless one is already
waiting*: a burst of answers becomes one edit, and the sender's per-chat limit
(1/s in a private chat, 20/min in a group; DOMAIN.md §8) spaces the edits. The edit
carries no content: the sender asks ``snapshot`` for the request as it is at the
moment of sending, so a coalesced edit is never stale.

Privacy (DOMAIN.md §7): donors who have not accepted are counted, never named; a
board in a group chat never carries a phone number — it is left out of the snapshot,
not just hidden by the renderer.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlmodel import col, select

from dispatcher.channels import reached_by
from dispatcher.coverage import COMING_STATES, arrives_in_time, count_counted
from dispatcher import messages as M
from ground.eligibility import max_volume_ml
from dispatcher.headline import request_headline
from dispatcher.outbox import enqueue
from dispatcher.ranking import LATE_SCORE
from models.dispatch_tables import (
    ACTIVE_REQUEST_STATES,
    SAID_AVAILABLE_STATES,
    BloodRequest,
    ContactState,
    OutboxMessage,
    OutboxState,
    RequestContact,
    RequestState,
)
from models.tables import Channel, Donor, Hospital
from ground.clock import as_utc

KIND = M.Board.kind
MOVED = M.BoardMoved.kind  # an old board after /board N: edited once to point at the live one

# Every asked donor is in exactly one bucket on the board and in the report (issue 9): the one
# mapping from contact states, in the order the board lists them. A state missing here fails
# tests/test_board_buckets.py.
BUCKETS = ("waiting", "available", "en_route", "arrived", "donated", "declined", "withdrew", "no_answer",
           "unreachable", "not_needed", "deferred", "no_show")
BUCKET_OF: dict[str, str] = {
    ContactState.queued.value: "waiting",  # the call is about to go out
    ContactState.notified.value: "waiting",
    ContactState.available.value: "available",
    ContactState.en_route.value: "en_route",
    ContactState.arrived.value: "arrived",
    ContactState.donated.value: "donated",
    ContactState.declined.value: "declined",
    ContactState.withdrew.value: "withdrew",
    ContactState.no_answer.value: "no_answer",
    ContactState.unreachable.value: "unreachable",
    ContactState.stood_down.value: "not_needed",  # thanked: no longer needed
    ContactState.released.value: "not_needed",
    ContactState.cancelled.value: "not_needed",  # the call was withdrawn before it went out
    ContactState.deferred.value: "deferred",
    ContactState.no_show.value: "no_show",
}


def buckets(counts: dict[str, int]) -> dict[str, int]:
    """Contacts per state → asked donors per board bucket (every bucket present, zeros included)."""
    out = dict.fromkeys(BUCKETS, 0)
    for state, n in counts.items():
        out[BUCKET_OF[state]] += n
    return out
_LIVE = (OutboxState.sent.value, OutboxState.pending.value, OutboxState.sending.value)


# "Enough now" pressed by staff: asking stops at their word, which is not coverage (issue 9).
STOPPED_BY_STAFF = "stopped"
# A desk mark (arrived, donated, deferred, did not come) may be undone this long after it was made.
UNDO_WINDOW = timedelta(minutes=10)


def undo_action(contact: RequestContact, now: datetime) -> str | None:
    """The desk mark on this contact that may still be undone, or None."""
    u = contact.undo
    if not u or now - datetime.fromisoformat(u["at"]) > UNDO_WINDOW:
        return None
    return u["action"]


async def donated_by(s, request_id: int, at: datetime | None) -> int:
    """Donations recorded for the request up to ``at`` (all of them when None)."""
    q = select(func.count()).select_from(RequestContact).where(
        RequestContact.request_id == request_id, RequestContact.state == ContactState.donated.value)
    if at is not None:
        q = q.where(col(RequestContact.outcome_at) <= at)
    return (await s.exec(q)).one()


def is_group(chat_id: int) -> bool:
    """Telegram gives groups and channels negative ids; private chats are the user's own id."""
    return chat_id < 0


async def attach(s, request_id: int, chat_id: int, message_id: int, locale: str | None, now: datetime,
                 *, local_time: str = "") -> str:
    """Register a board the bot just sent. An older board of the request in that chat stops being edited:
    it is edited once more to say the live board is below (``local_time``: when it was posted) and
    loses its buttons, so nobody presses stale counts (issue 9)."""
    older = (await s.exec(select(OutboxMessage).where(
        OutboxMessage.request_id == request_id, OutboxMessage.kind == KIND, OutboxMessage.chat_id == chat_id,
        col(OutboxMessage.edit_of_key).is_(None), OutboxMessage.message_id != message_id))).all()
    for old in older:
        await s.exec(update(OutboxMessage).where(col(OutboxMessage.edit_of_key) == old.key,
                                                 col(OutboxMessage.state) == OutboxState.pending.value)
                     .values(state=OutboxState.cancelled.value))
        if old.state == OutboxState.sent.value:
            old.kind = MOVED  # no longer a board: refresh_boards passes it by
            await enqueue(s, key=f"{old.key}:moved", chat_id=chat_id, locale=old.locale,
                          params=M.BoardMoved(request_id=request_id, time=local_time), request_id=request_id,
                          edit_of_key=old.key, now=now)
        else:
            old.state = OutboxState.cancelled.value
    key = f"board:{request_id}:{chat_id}:{message_id}"
    s.add(OutboxMessage(key=key, chat_id=chat_id, kind=KIND, params=M.Board(request_id=request_id).to_json(),
                        locale=locale,
                        state=OutboxState.sent.value, request_id=request_id, message_id=message_id,
                        created_at=now, sent_at=now, next_attempt_at=now))
    return key


async def refresh_boards(s, request_id: int, now: datetime) -> int:
    """Queue an edit of every board of the request that has none waiting; returns how many were queued."""
    origins = (await s.exec(select(OutboxMessage.key, OutboxMessage.chat_id, OutboxMessage.locale)
                            .where(OutboxMessage.request_id == request_id, OutboxMessage.kind == KIND,
                                   col(OutboxMessage.edit_of_key).is_(None), col(OutboxMessage.state).in_(_LIVE)))).all()
    queued = 0
    for key, chat_id, locale in origins:
        waiting = (await s.exec(select(OutboxMessage.id).where(OutboxMessage.edit_of_key == key,
                                                               OutboxMessage.state == OutboxState.pending.value)
                                .limit(1))).first()
        if waiting is not None:
            continue  # the waiting edit will show this change too: it renders at send time
        queued += await enqueue(s, key=f"{key}:{secrets.token_hex(6)}", chat_id=chat_id,
                                params=M.Board(request_id=request_id), locale=locale, request_id=request_id,
                                edit_of_key=key, now=now)
    return queued


async def snapshot(s, request_id: int, *, chat_id: int, tz: ZoneInfo, now: datetime) -> dict | None:
    """The board's content as JSON-safe parameters, read now; None when the request is gone."""
    req = await s.get(BloodRequest, request_id)
    if req is None:
        return None
    hospital = await s.get(Hospital, req.hospital_id)
    counts = dict((await s.exec(select(RequestContact.state, func.count())
                                .where(RequestContact.request_id == request_id)
                                .group_by(RequestContact.state))).all())
    group = is_group(chat_id)
    donors = await _said_available(s, req, group=group, tz=tz, now=now)
    # The score puts the ranking group first (dispatcher.ranking): donors who cannot arrive in time.
    late = (await s.exec(select(func.count()).select_from(RequestContact).where(
        RequestContact.request_id == request_id, col(RequestContact.score) >= LATE_SCORE))).one()
    per_bucket = buckets(counts)
    asked = sum(per_bucket.values())
    active = req.state in ACTIVE_REQUEST_STATES
    stopped_donated = None
    if req.state == RequestState.covered.value and req.close_reason == STOPPED_BY_STAFF:
        stopped_donated = await donated_by(s, req.id, req.closed_at)
    times = await request_headline(s, req)
    return {
        "request_id": req.id, "hospital": hospital.name if hospital else "", "abo": req.abo, "rh": req.rh,
        "component": req.component, "units": req.units, "urgency": req.urgency, "rare": req.rare,
        "state": req.state, "close_reason": req.close_reason, "note": req.note,
        "deadline_local": as_utc(req.deadline).astimezone(tz).strftime("%H:%M %d/%m"),
        "target": req.target_available,
        # Only those expected before the deadline count (dispatcher.coverage, issue 9).
        "confirmed": await count_counted(s, request_id, req.deadline),
        "donated": counts.get(ContactState.donated.value, 0),
        "arrived": counts.get(ContactState.arrived.value, 0),
        "asked": asked,
        "buckets": per_bucket,
        "stopped_donated": stopped_donated,
        "headline": times.as_dict(),
        "wave_no": req.wave_no,
        "next_wave_local": _hh_mm(req.next_wave_at, tz) if active else None,
        "warn_travel": active and asked > 0 and late * 2 >= asked,
        "group": group,
        "updated_local": _hh_mm(now, tz),
        "donors": donors,
    }


async def _said_available(s, req: BloodRequest, *, group: bool, tz: ZoneInfo, now: datetime) -> list[dict]:
    """The board's donors: those who said available, in the order they did; no phone in a group."""
    rows = (await s.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() for at most four columns
            RequestContact, Donor.full_name, Donor.phone, Donor.abo, Donor.rh, Donor.weight_kg)
        .join(Donor, col(Donor.id) == RequestContact.donor_id)
        .where(RequestContact.request_id == req.id, col(RequestContact.state).in_(SAID_AVAILABLE_STATES))
        .order_by(col(RequestContact.answered_at), col(RequestContact.id)))).all()
    assert req.id is not None  # a row read from the database
    via = await reached_by(s, req.id) if rows else {}
    return [{
        "contact_id": c.id, "name": name, "phone": None if group else phone, "type": f"{abo}{rh}",
        "state": c.state, "distance_km": None if c.distance_km is None else round(c.distance_km, 1),
        "travel_min": None if c.travel_min is None else round(c.travel_min), "reasons": c.reasons,
        "volume_ml": c.volume_ml, "max_volume": max_volume_ml(weight),
        # Expected arrival beside the deadline; "late" when still to come and expected after it (issue 9).
        "arrive_local": _hh_mm(c.expected_arrival_at, tz),
        "late": c.state in COMING_STATES and not arrives_in_time(
            None if c.expected_arrival_at is None else as_utc(c.expected_arrival_at), as_utc(req.deadline)),
        "component": c.component, "undo": undo_action(c, now),
        # The channel her call reached her on (issue 15): staff know an SMS donor has no buttons to tap.
        "channel": via.get(c.id or 0, Channel.telegram.value),
    } for c, name, phone, abo, rh, weight in rows]


def _hh_mm(dt: datetime | None, tz: ZoneInfo) -> str | None:
    return None if dt is None else as_utc(dt).astimezone(tz).strftime("%H:%M")
