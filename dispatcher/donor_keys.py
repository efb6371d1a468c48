"""The outbox keys of what one donor is told about one request, and who may be asked again.

A key names the message's cause (DOMAIN.md §8: a retried update must not write it twice), and a
donor may hear about the same request more than once when it changes course: told "no longer
needed" when it was covered, asked again when it reopened, thanked and released when donations
fulfilled it. Each of those is its own message, so each key carries the cause and the wave the
donor was (last) asked in; the same cause in the same wave is written once.

A request that reopens (a counted donor withdrew, a donation was undone, staff added units) asks
again, ranked with everyone else, the donors it had told it no longer needed them — but only in a
wave after the one they were last asked in, so nobody gets two calls for one wave.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from models.dispatch_tables import ContactState, OutboxMessage, RequestContact

# Told the request no longer needed them, through no doing of their own: they may be asked again
# if it reopens. "cancelled": their call never went out. Declines, silences, withdrawals and the
# hospital's outcomes are not here: those donors answered, or the desk decided.
REASKABLE_STATES = (ContactState.stood_down.value, ContactState.released.value, ContactState.cancelled.value)


def call_key(request_id: int, donor_id: int | None, wave_no: int | None = None) -> str:
    """The first call has the key it always had; a call again names the wave it belongs to."""
    base = f"call:{request_id}:{donor_id}"
    return base if wave_no is None else f"{base}:w{wave_no}"


def stand_down_key(contact: RequestContact, cause: str) -> str:
    """``cause``: covered | stopped | fulfilled | cancelled | expired | exhausted."""
    return f"stand_down:{contact.request_id}:{contact.donor_id}:w{contact.wave_no}:{cause}"


def per_ask_key(kind: str, contact: RequestContact) -> str:
    """A message sent at most once per time she is asked (replaced, withdrew, venue)."""
    return f"{kind}:{contact.request_id}:{contact.donor_id}:w{contact.wave_no}"


async def current_call_keys(session: Any, request_id: int, contact_ids: list[int]) -> dict[int, str]:
    """The key of the latest call each contact got: the message her later news edits."""
    if not contact_ids:
        return {}
    out: dict[int, tuple[int, str]] = {}
    for i in range(0, len(contact_ids), 500):
        rows = (await session.exec(select(OutboxMessage.contact_id, OutboxMessage.id, OutboxMessage.key).where(
            OutboxMessage.request_id == request_id, OutboxMessage.kind == "call",
            col(OutboxMessage.contact_id).in_(contact_ids[i:i + 500])))).all()
        for contact_id, row_id, key in rows:
            if contact_id not in out or out[contact_id][0] < row_id:
                out[contact_id] = (row_id, key)
    return {cid: key for cid, (_, key) in out.items()}


async def current_call_key(session: Any, contact: RequestContact) -> str:
    found = {} if contact.id is None else await current_call_keys(session, contact.request_id, [contact.id])
    return found.get(contact.id or 0) or call_key(contact.request_id, contact.donor_id)
