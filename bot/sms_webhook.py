"""Incoming SMS: the gateway's ``sms:received`` webhook, mounted on the bot's own server (bot.ops_server).

Only posts signed with ``[sms] webhook_secret`` are read; any other is refused with 401 and a log
line. The sender's number and text go to dispatcher.keyword_answers, which records an answer for the
donor of that number only; its reply, if any, goes back by SMS in her language. Other events (sent,
delivered, a ping) are acknowledged and ignored; the gateway retries a post it got no 2xx for, so an
event seen already is acknowledged again without a second reply.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import Any

from aiogram.utils.i18n import I18n
from aiohttp import web

from bot.sms_gateway import SIGNATURE_HEADER, TIMESTAMP_HEADER, message_id, signature_ok
from bot.sms_transport import Gateway
from dispatcher.keyword_answers import KeywordAnswers
from dispatcher.sender import PermanentError, RetryAfter, TransientError, Unreachable
from ground.config import SmsConfig
from ground.logs import redact
from ground.parsing import ParseError, parse_phone
from ground.sms_text import unaccented

log = logging.getLogger(__name__)

SMS_WEBHOOK_PATH = "/sms/webhook"


class SmsWebhook:
    def __init__(self, answers: KeywordAnswers, gateway: Gateway, i18n: I18n, default_locale: str, cfg: SmsConfig,
                 *, phone_region: str = "VN"):
        self.answers = answers
        self.gateway = gateway
        self.i18n = i18n
        self.default_locale = default_locale
        self.cfg = cfg
        self.region = phone_region
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()  # recent event ids

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.cfg.webhook_secret.get_secret_value() if self.cfg.webhook_secret else ""
        if not signature_ok(secret, body, request.headers.get(TIMESTAMP_HEADER),
                            request.headers.get(SIGNATURE_HEADER)):
            log.warning("sms webhook: refused a post from %s: %s", request.remote,
                        "no [sms] webhook_secret set" if not secret else "bad or old signature")
            return web.Response(status=401, text="Unauthorized")
        try:
            event: dict[str, Any] = json.loads(body)
            kind, event_id, payload = event["event"], str(event.get("id", "")), event.get("payload") or {}
        except (ValueError, KeyError, TypeError):
            log.warning("sms webhook: refused a post that is not an event")
            return web.Response(status=400, text="Not an event")
        if kind != "sms:received":
            log.debug("sms webhook: %s ignored", kind)
            return web.Response(status=200)
        if event_id and event_id in self._seen:
            return web.Response(status=200)  # the gateway's retry of an event already handled
        try:
            phone = parse_phone(payload["phoneNumber"], self.region)
            text = str(payload["message"])
        except (KeyError, ParseError):
            log.info("sms webhook: an SMS from %s that is not a mobile number: ignored",
                     redact(str(payload.get("phoneNumber"))))
            return web.Response(status=200)
        reply = await self.answers.handle("sms", phone, text)
        self._remember(event_id)
        log.info("sms answer from %s: %s", redact(phone), reply.outcome)
        if reply.text is not None:
            locale = reply.locale if reply.locale in self.i18n.available_locales else self.default_locale
            said = reply.text.render(lambda m: self.i18n.gettext(m, locale=locale))
            try:
                await self.gateway.send(phone, unaccented(said) if self.cfg.unaccented else said,
                                        id=message_id(f"reply:{event_id or phone + text}"))
            except (RetryAfter, TransientError, PermanentError, Unreachable) as exc:
                log.warning("sms webhook: the reply to %s was not sent: %s", redact(phone), exc)
        return web.Response(status=200)

    def _remember(self, event_id: str) -> None:
        if event_id:
            self._seen[event_id] = None
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)


__all__ = ["SMS_WEBHOOK_PATH", "SmsWebhook"]
