"""The SMS channel's transport: an outbox row rendered as SMS text (bot.sms_render) and handed to the
gateway (bot.sms_gateway). The sender (dispatcher.sender, ``channel="sms"``) paces and retries it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiogram.utils.i18n import I18n

from bot.sms_gateway import SentSms, message_id
from bot.sms_render import render_sms
from dispatcher.sender import DeliveryResult, Outgoing, PermanentError
from ground.config import SmsConfig


class Gateway(Protocol):
    async def send(self, phone: str, text: str, *, id: str) -> SentSms: ...


class SmsTransport:
    def __init__(self, gateway: Gateway, i18n: I18n, default_locale: str, cfg: SmsConfig,
                 link: Callable[[Outgoing], str | None] | None = None):
        self.gateway = gateway
        self.i18n = i18n
        self.default_locale = default_locale
        self.cfg = cfg
        self.link = link  # a call's signed answer link, when [http] public_url is set (bot.answer_page)

    async def deliver(self, message: Outgoing) -> DeliveryResult:
        if not message.address:
            raise PermanentError("sms: no phone number (forgotten since it was written)")
        text = render_sms(message, self.i18n, self.default_locale, self.cfg,
                          self.link(message) if self.link is not None else None)
        if text is None:
            raise PermanentError(f"sms: {message.kind} is not sent by SMS")
        await self.gateway.send(message.address, text, id=message_id(message.key))
        return DeliveryResult(None)  # an SMS cannot be edited: nothing to remember


__all__ = ["SmsTransport"]
