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
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, update
from sqlmodel import select

from dispatcher.coverage import COMING_STATES, arrives_in_time, count_counted
from dispatcher.eligibility import max_volume_ml
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
)
from models.tables import Donor, Hospital
from redreserve.clock import as_utc

KIND = "board"
_LIVE = (OutboxState.sent.value, OutboxState.pending.value, OutboxState.sending.value)


def is_group(chat_id: int) -> bool:
    """Telegram gives groups and channels negative ids; private chats are the user's own id."""
    return chat_id < 0


async def attach(s, request_id: int, chat_id: int, message_id: int, locale: str | None, now: datetime) -> str:
    """Register a board the bot just sent; an older board of the request in that chat stops being edited."""
    await s.exec(update(OutboxMessage)
                 .where(OutboxMessage.request_id == request_id, OutboxMessage.kind == KIND,
                        OutboxMessage.chat_id == chat_id, OutboxMessage.edit_of_key.is_(None))
                 .values(state=OutboxState.cancelled.value))
    key = f"board:{request_id}:{chat_id}:{message_id}"
    s.add(OutboxMessage(key=key, chat_id=chat_id, kind=KIND, params={"request_id": request_id}, locale=locale,
                        state=OutboxState.sent.value, request_id=request_id, message_id=message_id,
                        created_at=now, sent_at=now, next_attempt_at=now))
    return key


async def refresh_boards(s, request_id: int, now: datetime) -> int:
    """Queue an edit of every board of the request that has none waiting; returns how many were queued."""
    origins = (await s.exec(select(OutboxMessage.key, OutboxMessage.chat_id, OutboxMessage.locale)
                            .where(OutboxMessage.request_id == request_id, OutboxMessage.kind == KIND,
                                   OutboxMessage.edit_of_key.is_(None), OutboxMessage.state.in_(_LIVE)))).all()
    queued = 0
    for key, chat_id, locale in origins:
        waiting = (await s.exec(select(OutboxMessage.id).where(OutboxMessage.edit_of_key == key,
                                                               OutboxMessage.state == OutboxState.pending.value)
                                .limit(1))).first()
        if waiting is not None:
            continue  # the waiting edit will show this change too: it renders at send time
        queued += await enqueue(s, key=f"{key}:{secrets.token_hex(6)}", chat_id=chat_id, kind=KIND,
                                params={"request_id": request_id}, locale=locale, request_id=request_id,
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
    rows = (await s.exec(select(RequestContact, Donor.full_name, Donor.phone, Donor.abo, Donor.rh, Donor.weight_kg)
                         .join(Donor, Donor.id == RequestContact.donor_id)
                         .where(RequestContact.request_id == request_id,
                                RequestContact.state.in_(SAID_AVAILABLE_STATES))
                         .order_by(RequestContact.answered_at, RequestContact.id))).all()
    group = is_group(chat_id)
    # The score puts the ranking group first (dispatcher.ranking): donors who cannot arrive in time.
    late = (await s.exec(select(func.count()).select_from(RequestContact).where(
        RequestContact.request_id == request_id, RequestContact.score >= LATE_SCORE))).one()
    asked = sum(counts.values())
    active = req.state in ACTIVE_REQUEST_STATES

    def local(dt: datetime | None) -> str | None:
        return None if dt is None else as_utc(dt).astimezone(tz).strftime("%H:%M")

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
        "waiting": counts.get(ContactState.queued.value, 0) + counts.get(ContactState.notified.value, 0),
        "declined": counts.get(ContactState.declined.value, 0),
        "no_answer": counts.get(ContactState.no_answer.value, 0),
        "unreachable": counts.get(ContactState.unreachable.value, 0),
        "no_show": counts.get(ContactState.no_show.value, 0),
        "wave_no": req.wave_no,
        "next_wave_local": local(req.next_wave_at) if active else None,
        "warn_travel": active and asked > 0 and late * 2 >= asked,
        "group": group,
        "updated_local": local(now),
        "donors": [{
            "contact_id": c.id, "name": name, "phone": None if group else phone, "type": f"{abo}{rh}",
            "state": c.state, "distance_km": None if c.distance_km is None else round(c.distance_km, 1),
            "travel_min": None if c.travel_min is None else round(c.travel_min), "reasons": c.reasons,
            "volume_ml": c.volume_ml, "max_volume": max_volume_ml(weight),
            # Expected arrival beside the deadline; "late" when still to come and expected after it (issue 9).
            "arrive_local": local(c.expected_arrival_at),
            "late": c.state in COMING_STATES and not arrives_in_time(
                None if c.expected_arrival_at is None else as_utc(c.expected_arrival_at), as_utc(req.deadline)),
        } for c, name, phone, abo, rh, weight in rows],
    }
