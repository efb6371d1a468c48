"""A donor's keyword answer from SMS (or, later, Zalo) into the same engine call as a Telegram button.

The sender is known by her channel's address only (an E.164 phone for SMS): an unknown address, or
one whose owner did not agree to that channel, answers nothing. The request is looked up among *her*
calls only, so a code that is another donor's, a closed request's or a mistyped one can never record
an answer for anyone else; each such case gets a reply she can act on and an audit record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import col, select

from dispatcher.engine import AnswerOutcome, AnswerResult
from models.audit import audit
from models.dispatch_tables import ACTIVE_REQUEST_STATES, BloodRequest, ContactState, RequestContact
from models.tables import Donor, DonorChannel
from ground.clock import Clock, system_clock
from ground.i18n import N_, Text
from ground.logs import redact
from ground.sms_keywords import parse_keyword_answer

log = logging.getLogger(__name__)

# Her call is still waiting for an answer, or she said yes and may still change her mind ("KHONG").
_ASKED = (ContactState.queued.value, ContactState.notified.value, ContactState.no_answer.value)
_COMING = (ContactState.available.value, ContactState.en_route.value)


class Answers(Protocol):
    """What this needs of the dispatcher (dispatcher.engine.Dispatcher)."""

    async def record_answer(self, request_id: int, answer: str, token: str, *, telegram_id: int | None = None,
                            donor_id: int | None = None) -> AnswerResult: ...


@dataclass(frozen=True)
class KeywordReply:
    """What came of a message: ``outcome`` for logs and tests, ``text`` to send back (None: nothing),
    ``locale`` hers."""

    outcome: str
    text: Text | None = None
    locale: str | None = None
    request_id: int | None = None


HOW = N_("To answer a blood request, reply CO and its code if you can come, or KHONG and its code if you "
         "cannot (for example: CO 123).")


class KeywordAnswers:
    def __init__(self, sessionmaker, answers: Answers, *, clock: Clock = system_clock):
        self.sm = sessionmaker
        self.answers = answers
        self.clock = clock

    async def handle(self, channel: str, address: str, text: str) -> KeywordReply:
        now = self.clock()
        async with self.sm() as s, s.begin():
            ch = (await s.exec(select(DonorChannel).where(DonorChannel.channel == channel,
                                                          DonorChannel.address == address,
                                                          col(DonorChannel.consent_at).is_not(None)))).first()
            if ch is None:
                # Not a donor of ours on this channel (or one who has not agreed to it): no reply costs
                # money or tells a stranger anything; the log names the number only masked (DOMAIN.md §7).
                log.info("keyword answer from an unknown %s sender %s: ignored", channel, redact(address))
                audit(s, "system", "keyword_answer_unknown_sender", f"channel:{channel}", at=now)
                return KeywordReply("unknown_sender")
            donor_id, locale = ch.donor_id, await _locale(s, ch.donor_id)
            parsed = parse_keyword_answer(text)
            if parsed is None:
                return KeywordReply("not_understood", Text(HOW), locale)
            rows = (await s.exec(select(RequestContact, BloodRequest)
                                 .join(BloodRequest, col(BloodRequest.id) == RequestContact.request_id)
                                 .where(RequestContact.donor_id == donor_id,
                                        col(RequestContact.state).in_(_ASKED + _COMING)))).all()
            open_ = [(c, r) for c, r in rows if r.state in ACTIVE_REQUEST_STATES or c.state in _COMING]
            if parsed.code is not None:
                mine = [(c, r) for c, r in open_ if r.id == parsed.code]
                if not mine:
                    # She was asked for it once (told since that it is no longer needed, or it closed):
                    # "closed"; never asked, it is someone else's or a typo: the same answer to both.
                    closed = (await s.exec(select(RequestContact.id).where(
                        RequestContact.donor_id == donor_id, RequestContact.request_id == parsed.code))).first() \
                        is not None
                    audit(s, "system", "dispatch_answer_refused", f"request:{parsed.code}",
                          f"{channel} donor={donor_id} {'closed' if closed else 'not her call'}", at=now)
                    reply = N_("Request {code} is no longer asking for donors. Thank you!") if closed else \
                        N_("You have no open blood request with code {code}.")
                    return KeywordReply("closed" if closed else "no_such_call",
                                        Text(reply, {"code": parsed.code}), locale, parsed.code)
            else:
                mine = [(c, r) for c, r in open_ if c.state in _ASKED] if parsed.yes else open_
                if len(mine) != 1:
                    if not mine:
                        return KeywordReply("no_open_call", Text(N_("You have no open blood request to answer.")),
                                            locale)
                    codes = ", ".join(str(r.id) for _, r in mine)
                    return KeywordReply("which", Text(N_("You have several open requests ({codes}). Reply CO or "
                                                         "KHONG followed by the code."), {"codes": codes}), locale)
            contact, req = mine[0]
            answer = "available" if parsed.yes else "withdraw" if contact.state in _COMING else "declined"
            token = contact.token
        assert req.id is not None  # a row read from the database
        result = await self.answers.record_answer(req.id, answer, token, donor_id=donor_id)
        if result.outcome is AnswerOutcome.closed:
            return KeywordReply("closed", Text(N_("Request {code} is no longer asking for donors. Thank you!"),
                                               {"code": req.id}), locale, req.id)
        if result.outcome is AnswerOutcome.committed_elsewhere:
            return KeywordReply(result.outcome.value, Text(N_("You are already expected at another request. "
                                                              "Thank you!")), locale, req.id)
        # Accepted, declined, withdrew: what follows her call on her channel says so (dispatcher.channels).
        return KeywordReply(result.outcome.value, None, locale, req.id)


async def _locale(s, donor_id: int) -> str | None:
    donor = await s.get(Donor, donor_id)
    return None if donor is None else donor.locale


__all__ = ["KeywordAnswers", "KeywordReply"]
