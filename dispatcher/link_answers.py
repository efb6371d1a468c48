"""A donor's answer through the signed link's page (bot.answer_page) into the same engine call as a button.

The token (ground.answer_link) names one ask: one donor, one request. Nothing else is trusted: the ask
must still exist and belong to that request (a forgotten donor's asks have no donor any more), and the
engine checks the ask's own token as for a Telegram press, so the page can never record an answer for
anyone else. What the page may show is the request's hospital, its time and its code: no name, no phone,
no blood type of hers (DOMAIN.md §7).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.engine import AnswerOutcome, AnswerResult
from dispatcher.keyword_answers import Answers
from models.audit import audit
from models.dispatch_tables import ACTIVE_REQUEST_STATES, BloodRequest, ContactState, RequestContact
from models.tables import Donor, Hospital
from ground.answer_link import LinkClaim
from ground.clock import Clock, as_utc

log = logging.getLogger(__name__)

# The page's three buttons, as the engine names the answers.
CHOICES = ("available", "declined", "withdraw")
_COMING = (ContactState.available.value, ContactState.en_route.value)
_ASKED = (ContactState.queued.value, ContactState.notified.value, ContactState.no_answer.value)


@dataclass(frozen=True)
class AskView:
    """One screen: the request's code, hospital and time; where her answer stands."""

    request_id: int
    hospital: str
    deadline: datetime
    standing: str  # asked | coming | declined | closed
    locale: str | None


class LinkAnswers:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], answers: Answers, *, clock: Clock) -> None:
        self.sm = sessionmaker
        self.answers = answers
        self.clock = clock

    async def _ask(self, s: AsyncSession, claim: LinkClaim) -> tuple[RequestContact, BloodRequest] | None:
        contact = await s.get(RequestContact, claim.contact_id)
        if contact is None or contact.request_id != claim.request_id or contact.donor_id is None:
            return None
        req = await s.get(BloodRequest, claim.request_id)
        return None if req is None else (contact, req)

    async def view(self, claim: LinkClaim) -> AskView | None:
        """What the page shows for a valid token; None when its ask is gone (forgotten, or never ours)."""
        async with self.sm() as s:
            found = await self._ask(s, claim)
            if found is None:
                return None
            contact, req = found
            hospital = await s.get(Hospital, req.hospital_id)
            donor = await s.get(Donor, contact.donor_id)
            if contact.state in _COMING:
                standing = "coming"
            elif req.state not in ACTIVE_REQUEST_STATES or contact.state not in _ASKED + (
                    ContactState.declined.value,):
                standing = "closed"
            else:
                standing = "declined" if contact.state == ContactState.declined.value else "asked"
            assert req.id is not None  # a row read from the database
            return AskView(req.id, hospital.name if hospital else "", as_utc(req.deadline), standing,
                           donor.locale if donor else None)

    async def answer(self, claim: LinkClaim, choice: str) -> AnswerResult:
        """Her press on the page, recorded as the engine records a Telegram button's."""
        async with self.sm() as s, s.begin():
            found = await self._ask(s, claim) if choice in CHOICES else None
            if found is None:
                audit(s, "system", "dispatch_answer_refused", f"request:{claim.request_id}",
                      f"link contact={claim.contact_id} answer={choice[:20]}", at=self.clock())
                return AnswerResult(AnswerOutcome.refused, claim.request_id)
            contact, _req = found
            donor_id, token = contact.donor_id, contact.token
        return await self.answers.record_answer(claim.request_id, choice, token, donor_id=donor_id)

    async def expired(self, claim: LinkClaim) -> None:
        """An expired link was opened or pressed: on the request's record, for the hospital's questions."""
        async with self.sm() as s, s.begin():
            audit(s, "system", "answer_link_expired", f"request:{claim.request_id}",
                  f"contact={claim.contact_id}", at=self.clock())


__all__ = ["AskView", "CHOICES", "LinkAnswers"]
