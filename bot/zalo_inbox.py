"""What a Zalo user writes to the club's bot: a linking code, her agreement, a keyword answer, or else help.

The chat is known by its Zalo user id only. An id no donor linked gets guidance on how to link (a code
from /me zalo on Telegram or from her lead); a linked one that has not agreed yet is asked to reply
"DONG Y"; an agreed one's text goes to dispatcher.keyword_answers, the same path as an SMS, which can
only ever record an answer for the donor of that chat. Events other than text (a sticker, a photo)
are logged and left; replies go straight back to the chat, they are not calls and not in the outbox.
"""

from __future__ import annotations

import collections
import logging
from functools import partial
from typing import Protocol

from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from bot.zalo_api import ZaloMessage
from dispatcher.channel_links import is_consent, record_consent, redeem
from dispatcher.keyword_answers import HOW, KeywordAnswers
from dispatcher.sender import PermanentError, RetryAfter, TransientError, Unreachable
from ground.clock import Clock
from ground.i18n import N_, Text
from ground.logs import redact
from models.tables import Channel, Donor, DonorChannel

log = logging.getLogger(__name__)

TEXT_EVENT = "message.text.received"
ZALO = Channel.zalo.value

LINK_FIRST = N_("Hello! This is the blood donor bot of your club. To get emergency calls here, link your "
                "Zalo: on Telegram send /me zalo to the RedReserve bot, or ask your club lead for a code, "
                "then send the code here.")
ASK_CONSENT = N_("Your Zalo is linked to your donor record. Reply DONG Y to agree to receive emergency blood "
                 "requests here on Zalo. You can stop at any time with /me zalo on Telegram.")
CONSENTED = N_("Thank you! Emergency blood requests will now also reach you here. To answer one, reply CO "
               "and its code if you can come, or KHONG and its code if you cannot (for example: CO 123).")
REFUSED = {
    "unknown": N_("This code is not valid. Please check it, or get a new one with /me zalo on Telegram or "
                  "from your club lead."),
    "expired": N_("This code has expired. Please get a new one with /me zalo on Telegram or from your club "
                  "lead."),
    "used": N_("This code was already used. Please get a new one with /me zalo on Telegram or from your "
               "club lead."),
    "taken": N_("This Zalo account is already linked to another donor. Please ask your club lead."),
}


class ZaloSend(Protocol):
    async def send_message(self, chat_id: str, text: str) -> str: ...


class ZaloInbox:
    def __init__(self, sessionmaker: async_sessionmaker, answers: KeywordAnswers, api: ZaloSend, i18n: I18n,
                 default_locale: str, *, clock: Clock, policy_version: str) -> None:
        self.sm = sessionmaker
        self.answers = answers
        self.api = api
        self.i18n = i18n
        self.default_locale = default_locale
        self.clock = clock
        self.policy_version = policy_version
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()  # recent message ids

    async def handle(self, msg: ZaloMessage) -> str:
        """Answer one message; what came of it (for logs and tests)."""
        if msg.message_id and msg.message_id in self._seen:
            return "repeated"  # Zalo delivers at least once: a retried post is answered once
        self._remember(msg.message_id)
        if msg.event != TEXT_EVENT or not msg.text:
            log.info("zalo: a %s from %s ignored", msg.event or "update of no kind", redact(msg.user_id))
            return "unsupported"
        outcome, text, locale = await self._answer(msg.user_id, msg.text)
        log.info("zalo message from %s: %s", redact(msg.user_id), outcome)
        if text is not None:
            await self._reply(msg.chat_id, text, locale)
        return outcome

    async def _answer(self, user_id: str, text: str) -> tuple[str, Text | None, str | None]:
        now = self.clock()
        async with self.sm() as s, s.begin():
            ch = (await s.exec(select(DonorChannel).where(DonorChannel.channel == ZALO,
                                                          DonorChannel.address == user_id))).first()
            locale = None
            if ch is not None:
                if ch.unreachable_at is not None:
                    # Zalo said it could not reach her (she had blocked the bot); she writes again: it can.
                    ch.unreachable_at = None
                    s.add(ch)
                donor = await s.get(Donor, ch.donor_id)
                locale = donor.locale if donor is not None else None
                if ch.consent_at is None and is_consent(text):
                    await record_consent(s, ch, now=now, policy_version=self.policy_version)
                    return "consented", Text(CONSENTED), locale
            linked = await redeem(s, ZALO, user_id, text, now=now)
            if linked.outcome == "linked":
                return "linked", Text(ASK_CONSENT), linked.locale
            if linked.outcome != "not_a_code":
                return f"code_{linked.outcome}", Text(REFUSED[linked.outcome]), linked.locale or locale
            if ch is None:
                return "unknown_user", Text(LINK_FIRST), None
            if ch.consent_at is None:
                return "consent_pending", Text(ASK_CONSENT), locale
        reply = await self.answers.handle(ZALO, user_id, text)
        return reply.outcome, reply.text, reply.locale

    def _locale(self, locale: str | None) -> str:
        return locale if locale in self.i18n.available_locales else self.default_locale

    async def _reply(self, chat_id: str, text: Text, locale: str | None) -> None:
        said = text.render(partial(self.i18n.gettext, locale=self._locale(locale)))
        try:
            await self.api.send_message(chat_id, said)
        except (RetryAfter, TransientError, PermanentError, Unreachable) as exc:
            log.warning("zalo: the reply to %s was not sent: %s", redact(chat_id), exc)

    def _remember(self, message_id: str) -> None:
        if message_id:
            self._seen[message_id] = None
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)


__all__ = ["ASK_CONSENT", "CONSENTED", "HOW", "LINK_FIRST", "REFUSED", "ZaloInbox"]
