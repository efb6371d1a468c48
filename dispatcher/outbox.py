"""Writing to the outbox: the first half of the one outbound path (the sender is the second).

A message is written in the same transaction as the state change that causes it, under
a key that names that cause, so a crash loses nothing and a retried transaction cannot
write it twice (DOMAIN.md §8: updates arrive at least once).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.messages import KINDS, Message, personal_fields
from models.dispatch_tables import OutboxMessage, OutboxState

# Each kind's priority and personal fields are declared with it (dispatcher.messages). Once a message
# has left (or never will), its personal fields are cleared: the outbox keeps no copy of a call list's
# phones, a nudge's name or a donor's donation after Telegram has them, and /forget has nothing to
# chase (DOMAIN.md §7).
TERMINAL_STATES = (OutboxState.sent.value, OutboxState.failed.value, OutboxState.cancelled.value,
                   OutboxState.unreachable.value)


def scrubbed(kind: str, params: dict) -> dict | None:
    """``params`` without what names or describes a person, or None when the kind carries nothing such."""
    keys = personal_fields(kind)
    if not keys or not any(k in params for k in keys):
        return None
    return {k: v for k, v in params.items() if k not in keys}


async def scrub_delivered(session) -> int:
    """Clear the personal parameters of every message already done with (rows written before
    messages were scrubbed as they left, or by a process that died in between)."""
    with_personal = [kind for kind, cls in KINDS.items() if cls.personal]
    rows = (await session.exec(select(OutboxMessage).where(
        col(OutboxMessage.kind).in_(with_personal), col(OutboxMessage.state).in_(TERMINAL_STATES)))).all()
    n = 0
    for row in rows:
        kept = scrubbed(row.kind, row.params)
        if kept is not None:
            await session.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(params=kept))
            n += 1
    return n


def message(*, key: str, chat_id: int, params: Message, now: datetime, locale: str | None = None,
            request_id: int | None = None, contact_id: int | None = None,
            edit_of_key: str | None = None) -> OutboxMessage:
    """An outbox row, not yet added: for ``enqueue_many``. ``params`` is one of dispatcher.messages'
    kinds, already checked when it was built; the row stores its kind and its JSON."""
    if not isinstance(params, Message):
        raise TypeError(f"outbox message {key!r}: params must be a message kind (dispatcher.messages), "
                        f"not {type(params).__name__}")
    return OutboxMessage(key=key, chat_id=chat_id, kind=params.kind, params=params.to_json(), locale=locale,
                         priority=params.priority, next_attempt_at=now, created_at=now,
                         request_id=request_id, contact_id=contact_id, edit_of_key=edit_of_key)


async def enqueue(session: AsyncSession, *, key: str, chat_id: int, params: Message, now: datetime,
                  locale: str | None = None, request_id: int | None = None, contact_id: int | None = None,
                  edit_of_key: str | None = None) -> bool:
    """Add a message unless one with ``key`` exists; True when added."""
    return bool(await enqueue_many(session, [message(
        key=key, chat_id=chat_id, params=params, now=now, locale=locale, request_id=request_id,
        contact_id=contact_id, edit_of_key=edit_of_key)]))


async def enqueue_many(session, messages: list[OutboxMessage]) -> int:
    """Add each message whose key is new, with one look-up per 500 (a 300-donor wave's calls: issue 10)."""
    keys = [m.key for m in messages]
    existing: set[str] = set()
    for i in range(0, len(keys), 500):
        existing.update((await session.exec(select(OutboxMessage.key)
                                            .where(col(OutboxMessage.key).in_(keys[i:i + 500])))).all())
    added = []
    for m in messages:
        if m.key not in existing:
            existing.add(m.key)  # twice in one batch: once
            added.append(m)
    session.add_all(added)
    return len(added)


async def cancel_pending(session, keys: list[str]) -> None:
    """Calls not yet handed to Telegram are dropped when no longer wanted (rows being sent are not)."""
    for i in range(0, len(keys), 500):
        await session.exec(update(OutboxMessage)
                           .where(col(OutboxMessage.key).in_(keys[i:i + 500]),
                                  col(OutboxMessage.state) == OutboxState.pending.value)
                           .values(state=OutboxState.cancelled.value))
