"""Nudges for the hospital desk (issue 4), a reminders source (dispatcher.reminders).

- A donor said "available" but is not marked arrived after her travel time plus a
  margin: the desk is asked to check (reception, or a phone call), with one-tap
  "arrived" / "did not come" buttons.
- A request is not covered a while before its deadline: the desk is told, so that
  it can turn to the blood bank or the club leads' phone lists in time.

Each nudge is keyed by its cause (``nudge_arrival:{contact_id}``,
``nudge_deadline:{request_id}``): sent once, late if the bot was down, never twice.
They go to the chat the request was posted from; in a group, without phone numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, AsyncIterator

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher import messages as M
from dispatcher.board import is_group
from dispatcher.coverage import count_counted
from dispatcher.outbox import enqueue
from models.dispatch_tables import (
    ACTIVE_REQUEST_STATES,
    RECEIVING_REQUEST_STATES,
    BloodRequest,
    ContactState,
    OutboxMessage,
    RequestContact,
)
from models.tables import Donor, TelegramUser
from ground.clock import as_utc

UNKNOWN_TRAVEL_MIN = 60  # no location on file: an hour is what DOMAIN.md §6 expects of a nearby donor
LOOKBACK = timedelta(days=2)  # a nudge about a request older than this is no longer useful


class StaffNudges:
    name = "staff_nudges"

    def __init__(self, settings):
        self.cfg = settings.reminders
        self.tz = settings.bot.tz

    async def run(self, s: AsyncSession, now: datetime) -> datetime | None:
        upcoming = [await self._arrivals(s, now), await self._deadlines(s, now)]
        return min((t for t in upcoming if t is not None), default=None)

    async def _arrivals(self, s, now: datetime) -> datetime | None:
        margin = timedelta(minutes=self.cfg.arrival_margin_min)
        rows = (await s.exec(
            select(RequestContact, BloodRequest, Donor.full_name, Donor.phone)
            .join(BloodRequest, col(BloodRequest.id) == RequestContact.request_id)
            .join(Donor, col(Donor.id) == RequestContact.donor_id)
            .where(col(RequestContact.state).in_((ContactState.available.value, ContactState.en_route.value)),
                   col(BloodRequest.state).in_(RECEIVING_REQUEST_STATES),
                   BloodRequest.created_at >= now - LOOKBACK))).all()

        def due_at(c: RequestContact) -> datetime:
            travel = timedelta(minutes=c.travel_min if c.travel_min is not None else UNKNOWN_TRAVEL_MIN)
            assert c.answered_at is not None  # she said available or on her way: the answer has its time
            return as_utc(c.answered_at) + travel + margin

        due, nxt = _split([(due_at(row[0]), row) for row in rows], now)
        async for key, (c, req, name, phone), chat, locale in _unsent(s, [(f"nudge_arrival:{r[0].id}", r[1], r)
                                                                          for r in due]):
            await enqueue(s, key=key, chat_id=chat, locale=locale, request_id=req.id, now=now, params=M.NudgeArrival(
                request_id=req.id, contact_id=c.id, name=name, phone=None if is_group(chat) else phone,
                minutes=round((now - as_utc(c.answered_at)).total_seconds() / 60),
                en_route=c.state == ContactState.en_route.value))
        return nxt

    async def _deadlines(self, s, now: datetime) -> datetime | None:
        rows = (await s.exec(select(BloodRequest).where(col(BloodRequest.state).in_(ACTIVE_REQUEST_STATES),
                                                        BloodRequest.deadline > now))).all()

        def due_at(req: BloodRequest) -> datetime:
            deadline, created = as_utc(req.deadline), as_utc(req.created_at)
            # Never earlier than a quarter into the request's time: a 1-hour critical request is
            # nudged 15 minutes before, not at once.
            return deadline - min(timedelta(minutes=self.cfg.deadline_nudge_min), (deadline - created) / 4)

        due, nxt = _split([(due_at(req), req) for req in rows], now)
        async for key, req, chat, locale in _unsent(s, [(f"nudge_deadline:{r.id}", r, r) for r in due]):
            committed = await count_counted(s, req.id, req.deadline)  # expected in time (issue 9)
            await enqueue(s, key=key, chat_id=chat, locale=locale, request_id=req.id, now=now, params=M.NudgeDeadline(
                request_id=req.id, abo=req.abo, rh=req.rh, component=req.component, confirmed=committed,
                target=req.target_available,
                deadline_local=as_utc(req.deadline).astimezone(self.tz).strftime("%H:%M"),
                minutes_left=round((as_utc(req.deadline) - now).total_seconds() / 60)))
        return nxt


def _split(timed: list[tuple[datetime, Any]], now: datetime) -> tuple[list[Any], datetime | None]:
    """(what is due now, when the next one falls due)."""
    return [item for at, item in timed if at <= now], min((at for at, _ in timed if at > now), default=None)


async def _unsent(s, keyed: list[tuple[str, BloodRequest, Any]]) -> AsyncIterator[tuple]:
    """The due nudges not sent before, each with the chat to send it to: (key, item, chat, locale)."""
    sent = await _existing(s, [key for key, _req, _item in keyed])
    for key, req, item in keyed:
        if key in sent:
            continue
        chat, locale = await _desk(s, req)
        if chat is not None:
            yield key, item, chat, locale


async def _existing(s, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        found |= set((await s.exec(select(OutboxMessage.key).where(col(OutboxMessage.key).in_(keys[i:i + 500])))).all())
    return found


async def _desk(s, req: BloodRequest) -> tuple[int | None, str | None]:
    """Where the request is being handled: the chat it was posted from, in the poster's language."""
    chat = req.chat_id if req.chat_id is not None else req.posted_by
    locale = None
    if req.posted_by is not None:
        locale = (await s.exec(select(TelegramUser.locale).where(TelegramUser.telegram_id == req.posted_by))).first()
    return chat, locale


__all__ = ["StaffNudges"]
