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
