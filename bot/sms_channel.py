"""The SMS channel's moving parts beside the Telegram sender (bot.runtime): its own sender, paced and
retried by ``[sms]``, the gateway it talks to, and the webhook incoming SMS arrive by (bot.ops_server)."""

from __future__ import annotations

from functools import partial

import aiohttp
from aiogram.utils.i18n import I18n
from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.answer_page import call_links
from bot.sms_gateway import make_gateway
from bot.sms_transport import Gateway, SmsTransport
from bot.sms_webhook import SmsWebhook
from dispatcher.channels import next_channel
from dispatcher.engine import Dispatcher as DispatchEngine
from dispatcher.keyword_answers import KeywordAnswers
from dispatcher.sender import OnUnreachable, Reroute, Sender
from ground.clock import Clock
from ground.config import Settings
from models.tables import Channel


class SmsChannel:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker, engine: DispatchEngine, i18n: I18n,
                 *, clock: Clock, gateway: Gateway | None = None) -> None:
        self.settings = settings
        self.sm = sessionmaker
        self.engine = engine
        self.i18n = i18n
        self.clock = clock
        self._gateway = gateway  # tests pass one; otherwise the one [sms] gateway names
        self._http: aiohttp.ClientSession | None = None
        self.sender: Sender | None = None
        self.webhook: SmsWebhook | None = None

    @property
    def reroute(self) -> Reroute:
        """For the Telegram sender: a call it cannot deliver goes on by SMS, within [sms]'s budget."""
        return partial(next_channel, sms=self.settings.sms)

    async def start(self, on_unreachable: OnUnreachable) -> None:
        cfg = self.settings.sms
        gateway = self._gateway
        if gateway is None:  # the Android gateway or a commercial provider, as [sms] gateway says
            self._http = aiohttp.ClientSession()
            gateway = make_gateway(self._http, cfg)
        locale = self.settings.bot.default_locale
        http = self.settings.http
        links = (call_links(http.public_url, http.link_secret.get_secret_value())
                 if http.public_url and http.link_secret else None)
        self.sender = Sender(self.sm, SmsTransport(gateway, self.i18n, locale, cfg, links), cfg.send_config(),
                             clock=self.clock, channel=Channel.sms.value, on_unreachable=on_unreachable,
                             instance_id=self.settings.cluster.resolved_id(), lease_s=self.settings.cluster.lease_s)
        self.webhook = SmsWebhook(KeywordAnswers(self.sm, self.engine, clock=self.clock), gateway, self.i18n,
                                  locale, cfg, phone_region=self.settings.bot.phone_region)
        await self.sender.start()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The gateway's webhook: until the channel has started, "not ready" (the gateway posts again)."""
        if self.webhook is None:
            return web.Response(status=503, text="Not ready")
        return await self.webhook.handle(request)

    async def stop(self) -> None:
        if self.sender is not None:
            await self.sender.stop()
        if self._http is not None:
            await self._http.close()


__all__ = ["SmsChannel"]
