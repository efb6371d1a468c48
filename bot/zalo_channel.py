"""The Zalo channel's moving parts beside the Telegram sender (bot.runtime): its transport and sender,
paced and retried by ``[zalo]``, and how the donors' messages come in — a long poll of getUpdates, or
Zalo's webhook on the bot's own server (bot.ops_server), checked against ``[zalo] webhook_secret``.

What a donor gets on Zalo is the text of the SMS renderings (bot.sms_render: one home per message
kind), with the diacritics kept and the hospital's name never shortened: Zalo is not paid per part.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import partial

import aiohttp
from aiogram.utils.i18n import I18n
from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.sms_render import SMS_RENDERERS
from bot.zalo_api import SECRET_HEADER, ZaloBotApi, parse_update, secret_ok
from bot.zalo_inbox import ZaloInbox
from dispatcher.channels import next_channel
from dispatcher.engine import Dispatcher as DispatchEngine
from dispatcher.keyword_answers import KeywordAnswers
from dispatcher.sender import (
    DeliveryResult,
    OnUnreachable,
    Outgoing,
    PermanentError,
    RetryAfter,
    Sender,
    TransientError,
    Unreachable,
)
from ground.clock import Clock
from ground.config import Settings
from models.tables import Channel

log = logging.getLogger(__name__)

ZALO_WEBHOOK_PATH = "/zalo/webhook"
NAME_ROOM = 200  # the hospital's name in full
POLL_TIMEOUT_S = 30


def render_zalo(message: Outgoing, i18n: I18n, default_locale: str) -> str | None:
    """The Zalo text of ``message``, or None when its kind does not reach a donor off Telegram."""
    fn = SMS_RENDERERS.get(type(message.params))
    if fn is None:
        return None
    locale = message.locale if message.locale in i18n.available_locales else default_locale
    return fn(message.params, partial(i18n.gettext, locale=locale), NAME_ROOM)


class ZaloTransport:
    def __init__(self, api: ZaloBotApi, i18n: I18n, default_locale: str) -> None:
        self.api = api
        self.i18n = i18n
        self.default_locale = default_locale

    async def deliver(self, message: Outgoing) -> DeliveryResult:
        if not message.address:
            raise PermanentError("zalo: no chat (forgotten since it was written)")
        text = render_zalo(message, self.i18n, self.default_locale)
        if text is None:
            raise PermanentError(f"zalo: {message.kind} is not sent by Zalo")
        await self.api.send_message(message.address, text)
        return DeliveryResult(None)  # Zalo has no edits: what follows a call is a new message


class ZaloChannel:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker, engine: DispatchEngine, i18n: I18n,
                 *, clock: Clock) -> None:
        self.settings = settings
        self.sm = sessionmaker
        self.engine = engine
        self.i18n = i18n
        self.clock = clock
        self._http: aiohttp.ClientSession | None = None
        self.api: ZaloBotApi | None = None
        self.sender: Sender | None = None
        self.inbox: ZaloInbox | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self, on_unreachable: OnUnreachable) -> None:
        cfg = self.settings.zalo
        assert cfg.token is not None  # checked with the settings
        self._http = aiohttp.ClientSession()
        self.api = api = ZaloBotApi(self._http, cfg.api_url, cfg.token.get_secret_value())
        locale = self.settings.bot.default_locale
        # A Zalo that cannot reach her moves the call on, as Telegram's 403 does (dispatcher.channels).
        self.sender = Sender(self.sm, ZaloTransport(api, self.i18n, locale), cfg.send_config(), clock=self.clock,
                             channel=Channel.zalo.value, on_unreachable=on_unreachable,
                             reroute=partial(next_channel, sms=self.settings.sms, zalo=True),
                             instance_id=self.settings.cluster.resolved_id(), lease_s=self.settings.cluster.lease_s)
        self.inbox = ZaloInbox(self.sm, KeywordAnswers(self.sm, self.engine, clock=self.clock), api, self.i18n,
                               locale, clock=self.clock, policy_version=self.settings.bot.policy_version)
        await self.sender.start()
        try:
            if cfg.mode == "webhook":
                assert cfg.webhook_url is not None and cfg.webhook_secret is not None  # checked with the settings
                await api.set_webhook(cfg.webhook_url, cfg.webhook_secret.get_secret_value())
            else:
                await api.delete_webhook()  # getUpdates answers nothing while a webhook is set
        except (RetryAfter, TransientError, PermanentError, Unreachable) as exc:
            # Sending still works; incoming messages wait until Zalo answers (logged, not fatal).
            log.error("zalo: %s mode not set up: %s", cfg.mode, exc)

    def start_polling(self) -> None:
        """In polling mode, ask Zalo for what donors write: on one instance only (the leader, bot.runtime),
        as one token is polled by one process."""
        if self.settings.zalo.mode == "polling" and self.api is not None \
                and (self._poller is None or self._poller.done()):
            self._poller = asyncio.create_task(self._poll(), name="zalo-poll")

    async def stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    async def _poll(self) -> None:
        assert self.api is not None and self.inbox is not None
        backoff = 1.0
        while True:
            try:
                for update in await self.api.get_updates(POLL_TIMEOUT_S):
                    msg = parse_update(update)
                    if msg is None:
                        log.info("zalo: an update that is not a message ignored")
                        continue
                    await self.inbox.handle(msg)
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                await asyncio.sleep(exc.seconds)
            except Exception as exc:  # a bad update or a network error must not end the poll
                log.warning("zalo: polling: %s; again in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Zalo's webhook post: 401 without the secret; any other post is acknowledged once read, so
        that Zalo does not post again what was handled (or cannot be)."""
        cfg = self.settings.zalo
        expected = cfg.webhook_secret.get_secret_value() if cfg.webhook_secret else ""
        if not secret_ok(expected, request.headers.get(SECRET_HEADER)):
            log.warning("zalo webhook: refused a post from %s: %s", request.remote,
                        "no [zalo] webhook_secret set" if not expected else "wrong secret token")
            return web.Response(status=401, text="Unauthorized")
        if self.inbox is None:
            return web.Response(status=503, text="Not ready")
        try:
            update = json.loads(await request.read())
        except ValueError:
            log.warning("zalo webhook: a post that is not JSON ignored")
            return web.Response(status=400, text="Not JSON")
        msg = parse_update(update)
        if msg is None:
            log.info("zalo webhook: an update that is not a message ignored")
        else:
            await self.inbox.handle(msg)
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        await self.stop_polling()
        if self.sender is not None:
            await self.sender.stop()
        if self._http is not None:
            await self._http.close()


__all__ = ["ZALO_WEBHOOK_PATH", "ZaloChannel", "ZaloTransport", "render_zalo"]
