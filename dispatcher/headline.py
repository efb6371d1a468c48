"""The headline times of a request, computed in one place (issue 9).

Minutes from posting to the first "available", to coverage (enough donors saying
available, reached by the dispatcher — never a staff "enough now"), to the first
donation and to fulfilment (donations covering the units). The board, ``/report``, the
demo's summary and the benches all read them from here, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.dispatch_tables import SAID_AVAILABLE_STATES, BloodRequest, ContactState, RequestContact, RequestState
from ground.clock import as_utc


@dataclass(frozen=True)
class Headline:
    """Whole minutes after posting; None when it has not happened."""

    first_available: int | None
    covered: int | None
    first_donation: int | None
    fulfilled: int | None

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


def minutes_after(start: datetime, at: datetime | None) -> int | None:
    """Whole minutes from ``start`` to ``at``, rounded down: "covered in 4 min" means within the 5th minute."""
    if at is None:
        return None
    return max(0, int((as_utc(at) - as_utc(start)).total_seconds() // 60))


def headline(posted: datetime, *, first_available: datetime | None, covered: datetime | None,
             first_donation: datetime | None, fulfilled: datetime | None) -> Headline:
    return Headline(minutes_after(posted, first_available), minutes_after(posted, covered),
                    minutes_after(posted, first_donation), minutes_after(posted, fulfilled))


async def request_headline(s: AsyncSession, req: BloodRequest) -> Headline:
    """The request's headline times, read from its contacts and its own timestamps."""
    C = RequestContact
    first_available = (await s.exec(select(func.min(C.answered_at)).where(
        C.request_id == req.id, col(C.state).in_(SAID_AVAILABLE_STATES)))).one()
    first_donation = (await s.exec(select(func.min(C.outcome_at)).where(
        C.request_id == req.id, C.state == ContactState.donated.value))).one()
    fulfilled = req.closed_at if (req.state == RequestState.fulfilled.value
                                  and req.close_reason == "donations") else None
    return headline(req.created_at, first_available=first_available, covered=req.covered_at,
                    first_donation=first_donation, fulfilled=fulfilled)


__all__ = ["Headline", "headline", "minutes_after", "request_headline"]
