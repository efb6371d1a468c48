"""A call that one channel cannot deliver goes to the donor's next one (issue 15, DOMAIN.md §9).

A donor's channels are hers, in her order, each with its own consent (models.tables.DonorChannel).
When a channel says it cannot deliver a call (Telegram's 403, an SMS gateway's undeliverable), the
same call is written again for her next agreed, still reachable channel, under the failed row's key
plus ``@<channel>``: one key family, so a retried transaction or a second 403 writes it once. SMS
costs money per part: it is used within ``[sms]`` (which requests, how many per request and per day);
past that the donor is left to the lead's call list, as a donor without any channel always was.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.messages import Message, StandDown, load
from dispatcher.outbox import enqueue, enqueue_many, message
from models.audit import audit
from models.dispatch_tables import (
    ACTIVE_REQUEST_STATES,
    BloodRequest,
    ContactState,
    OutboxMessage,
    OutboxState,
    RequestContact,
)
from models.tables import Channel, DonorChannel
from ground.config import SmsConfig


def tried_channels(row: OutboxMessage) -> set[str]:
    """The channels this call's key family has already gone through."""
    return {row.channel, *row.key.split("@")[1:]}


async def sms_left(s: AsyncSession, req: BloodRequest, now: datetime, cfg: SmsConfig) -> tuple[int, str | None]:
    """How many more SMS may go for ``req``, and why no more once that is none (for the audit record)."""
    if not cfg.enabled:
        return 0, "sms off"
    if cfg.only_for == "critical_or_rare" and not (req.rare or req.urgency == "critical"):
        return 0, "sms only for critical or rare-type requests"
    spent = OutboxMessage.channel == Channel.sms.value, col(OutboxMessage.state) != OutboxState.cancelled.value
    per_request = (await s.exec(select(func.count()).select_from(OutboxMessage)
                                .where(*spent, OutboxMessage.request_id == req.id))).one()
    # A day is the last 24 hours: a budget that resets at midnight would allow twice it around midnight.
    today = (await s.exec(select(func.count()).select_from(OutboxMessage)
                          .where(*spent, col(OutboxMessage.created_at) > now - timedelta(days=1)))).one()
    left_request, left_day = cfg.max_per_request - per_request, cfg.max_per_day - today
    if left_request <= 0:
        return 0, f"sms budget of the request spent ({cfg.max_per_request})"
    if left_day <= 0:
        return 0, f"sms budget of the day spent ({cfg.max_per_day})"
    return min(left_request, left_day), None


async def sms_allowed(s: AsyncSession, req: BloodRequest, now: datetime, cfg: SmsConfig) -> str | None:
    """None when one more SMS may go for ``req``; else why not (for the audit record)."""
    return (await sms_left(s, req, now, cfg))[1]


async def usable(s: AsyncSession, req: BloodRequest, now: datetime, running: Collection[str],
                 sms: SmsConfig) -> tuple[str, ...]:
    """The channels besides Telegram on which ``req`` may call a donor now: those whose sender runs
    (``running``), SMS only within ``[sms]`` (which requests, the budget left). A donor reachable on
    none of them and not on Telegram is the lead's to phone (dispatcher.candidates.call_list)."""
    out = []
    for ch in running:
        if ch == Channel.telegram.value:
            continue
        if ch == Channel.sms.value and (await sms_left(s, req, now, sms))[0] <= 0:
            continue
        out.append(ch)
    return tuple(out)


async def next_channel(s: AsyncSession, row: OutboxMessage, now: datetime, sms: SmsConfig,
                       zalo: bool = False) -> OutboxMessage | None:
    """Write ``row``'s call for the donor's next channel; the new row, or None when she has none left
    (or SMS may not be spent on it: audited on the request). ``zalo``: the Zalo channel runs (it is
    free, no budget). The caller commits."""
    if row.kind != "call" or row.contact_id is None:
        return None
    contact = await s.get(RequestContact, row.contact_id)
    if contact is None or contact.state not in (ContactState.queued.value, ContactState.notified.value):
        return None
    req = await s.get(BloodRequest, contact.request_id)
    if req is None or req.state not in ACTIVE_REQUEST_STATES:
        return None
    tried = tried_channels(row)
    channels = (await s.exec(select(DonorChannel).where(
        DonorChannel.donor_id == contact.donor_id, col(DonorChannel.consent_at).is_not(None),
        col(DonorChannel.unreachable_at).is_(None), col(DonorChannel.channel).not_in(tried))
        .order_by(col(DonorChannel.rank), col(DonorChannel.id)))).all()
    for ch in channels:
        if ch.channel == Channel.zalo.value:
            if not zalo:
                continue
        elif ch.channel != Channel.sms.value:
            continue
        elif (refused := await sms_allowed(s, req, now, sms)) is not None:
            audit(s, "system", "channel_refused", f"request:{req.id}",
                  f"donor:{contact.donor_id} sms: {refused}", at=now)
            continue
        assert ch.id is not None  # a row read from the database
        new = message(key=f"{row.key}@{ch.channel}", chat_id=ch.id, params=load(row.kind, row.params), now=now,
                      locale=row.locale, request_id=row.request_id, contact_id=row.contact_id)
        new.channel, new.address = ch.channel, ch.address
        if (await s.exec(select(OutboxMessage.id).where(OutboxMessage.key == new.key))).first() is not None:
            return None  # written already (a second 403 for the same call): once
        s.add(new)
        return new
    return None


_OFF_TELEGRAM = (Channel.sms.value, Channel.zalo.value)


def family(call_key: str) -> list[str]:
    """The keys a call can have taken on other channels (``next_channel``): one or two moves on."""
    one = [f"{call_key}@{a}" for a in _OFF_TELEGRAM]
    return one + [f"{call_key}@{a}@{b}" for a in _OFF_TELEGRAM for b in _OFF_TELEGRAM if a != b]


async def moved_calls(s: AsyncSession, call_keys: list[str]) -> dict[str, OutboxMessage]:
    """For each call that went on to another channel, its latest row there not given up on. A key may
    name the first call or already a later row of its family (the latest call row: donor_keys)."""
    wanted = {k: given for given in call_keys for k in family(given.split("@", 1)[0])}
    found: dict[str, OutboxMessage] = {}
    keys = list(wanted)
    for i in range(0, len(keys), 500):
        rows = (await s.exec(select(OutboxMessage).where(
            col(OutboxMessage.key).in_(keys[i:i + 500]),
            col(OutboxMessage.state).not_in((OutboxState.failed.value, OutboxState.unreachable.value,
                                             OutboxState.cancelled.value))))).all()
        for row in rows:
            base = wanted[row.key]  # the key asked about
            if base not in found or (row.id or 0) > (found[base].id or 0):
                found[base] = row
    return found


async def reached_by(s: AsyncSession, request_id: int) -> dict[int, str]:
    """Per contact of the request, the channel her call last reached her on (a sent call row): the board
    and the report say which channel reached whom."""
    rows = (await s.exec(select(OutboxMessage.contact_id, OutboxMessage.id, OutboxMessage.channel).where(
        OutboxMessage.request_id == request_id, OutboxMessage.kind == "call",
        OutboxMessage.state == OutboxState.sent.value, col(OutboxMessage.contact_id).is_not(None))
        .order_by(col(OutboxMessage.id)))).all()
    return {contact_id: channel for contact_id, _, channel in rows if contact_id is not None}


_NO_LOOKUP = object()


async def enqueue_for_donor(s: AsyncSession, *, key: str, chat_id: int | None, params: Message, now: datetime,
                            locale: str | None = None, request_id: int | None = None,
                            edit_of_key: str | None = None, moved: object = _NO_LOOKUP) -> bool:
    """A message that follows a donor's call (its answer, a stand-down) goes where the call went.

    On Telegram it edits the call, as always. When the call went on by another channel, it follows it
    there as a new message (an SMS cannot be edited); a stand-down of a call still waiting to go drops
    that call instead. ``moved``: the caller's ``moved_calls`` look-up for ``edit_of_key``, when it
    made one for many donors at once. True when something was written."""
    if edit_of_key is not None:
        row = (await moved_calls(s, [edit_of_key])).get(edit_of_key) if moved is _NO_LOOKUP else moved
        if isinstance(row, OutboxMessage):
            if isinstance(params, StandDown) and row.state == OutboxState.pending.value:
                row.state = OutboxState.cancelled.value
                s.add(row)
                return False
            follow = message(key=f"{key}@{row.channel}", chat_id=row.chat_id, params=params, now=now,
                             locale=locale, request_id=request_id)
            follow.channel, follow.address = row.channel, row.address
            return bool(await enqueue_many(s, [follow]))
    if chat_id is None:
        return False  # neither Telegram nor a channel her call went by: nothing to follow
    return await enqueue(s, key=key, chat_id=chat_id, params=params, now=now, locale=locale,
                         request_id=request_id, edit_of_key=edit_of_key)


__all__ = ["enqueue_for_donor", "family", "moved_calls", "next_channel", "reached_by", "sms_allowed", "sms_left",
           "tried_channels", "usable"]
