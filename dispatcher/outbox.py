"""Writing to the outbox: the first half of the one outbound path (the sender is the second).

A message is written in the same transaction as the state change that causes it, under
a key that names that cause, so a crash loses nothing and a retried transaction cannot
write it twice (DOMAIN.md §8: updates arrive at least once).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import select

from models.dispatch_tables import OutboxMessage, OutboxState

# Lower goes first. A board edit goes ahead even of calls: the per-chat limit holds it to about one
# a second per board (a thirtieth of the budget), and a nurse watching a frozen board phones around.
# Reminders wait behind everything else.
PRIORITY = {"board": 0, "call": 1, "stand_down": 1, "confirmed": 2, "venue": 2, "declined": 3, "withdrew": 3,
            "lead_rare": 2, "donated": 3, "nudge_arrival": 3, "nudge_deadline": 3, "eligible_again": 9, "lead_digest": 9}


# What a message's parameters say about a person, by kind. Once the message has left (or never
# will), those are cleared: the outbox keeps no copy of a call list's phones, a nudge's name or a
# donor's donation after Telegram has them, and /forget has nothing to chase (DOMAIN.md §7).
PERSONAL_PARAMS = {"lead_rare": ("call_list",), "lead_exhausted": ("call_list",), "nudge_arrival": ("name", "phone"),
                   "donated": ("volume_ml", "count", "next_date", "milestone"), "eligible_again": ("count",)}
TERMINAL_STATES = (OutboxState.sent.value, OutboxState.failed.value, OutboxState.cancelled.value,
                   OutboxState.unreachable.value)


def scrubbed(kind: str, params: dict) -> dict | None:
    """``params`` without what names or describes a person, or None when the kind carries nothing such."""
    keys = PERSONAL_PARAMS.get(kind)
    if not keys or not any(k in params for k in keys):
        return None
    return {k: v for k, v in params.items() if k not in keys}


async def scrub_delivered(session) -> int:
    """Clear the personal parameters of every message already done with (rows written before
    messages were scrubbed as they left, or by a process that died in between)."""
    rows = (await session.exec(select(OutboxMessage).where(
        OutboxMessage.kind.in_(list(PERSONAL_PARAMS)), OutboxMessage.state.in_(TERMINAL_STATES)))).all()
    n = 0
    for row in rows:
        kept = scrubbed(row.kind, row.params)
        if kept is not None:
            await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id).values(params=kept))
            n += 1
    return n


async def enqueue(session, *, key: str, chat_id: int, kind: str, params: dict, now: datetime,
                  locale: str | None = None, request_id: int | None = None, contact_id: int | None = None,
                  edit_of_key: str | None = None) -> bool:
    """Add a message unless one with ``key`` exists; True when added."""
    exists = (await session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key))).first()
    if exists is not None:
        return False
    session.add(OutboxMessage(key=key, chat_id=chat_id, kind=kind, params=params, locale=locale,
                              priority=PRIORITY.get(kind, 5), next_attempt_at=now, created_at=now,
                              request_id=request_id, contact_id=contact_id, edit_of_key=edit_of_key))
    return True


async def cancel_pending(session, keys: list[str]) -> None:
    """Calls not yet handed to Telegram are dropped when no longer wanted (rows being sent are not)."""
    for i in range(0, len(keys), 500):
        await session.exec(update(OutboxMessage)
                           .where(OutboxMessage.key.in_(keys[i:i + 500]),
                                  OutboxMessage.state == OutboxState.pending.value)
                           .values(state=OutboxState.cancelled.value))
