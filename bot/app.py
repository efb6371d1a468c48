"""Assembling the bot: one Bot, one Dispatcher, routers by audience, dependencies passed in."""

from __future__ import annotations

import logging
import random

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.memory import SimpleEventIsolation
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.i18n import make_i18n
from bot.middlewares import (
    DbSessionMiddleware,
    DedupMiddleware,
    UpdatesInFlight,
    UserLocaleMiddleware,
    UserMiddleware,
)
from bot.routers import (
    admin,
    answers,
    board,
    common,
    donor,
    errors,
    fallback,
    group,
    lead,
    lead_add,
    lead_files,
    lead_members,
    lead_roster,
    registration,
    staff,
    staff_request,
)
from bot.runtime import Runtime
from bot.storage import SqlStorage
from dispatcher.metrics import SendMetrics
from ground.clock import Clock, system_clock
from ground.config import Settings

log = logging.getLogger(__name__)


def build_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram.api_base))
    return Bot(
        token=settings.token,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def build_dispatcher(
    settings: Settings, sessionmaker: async_sessionmaker, *, clock: Clock = system_clock,
    rng: random.Random | None = None, use_scheduler: bool = True, metrics: SendMetrics | None = None,
) -> Dispatcher:
    i18n = make_i18n(settings.bot.default_locale)
    runtime = Runtime(settings, sessionmaker, i18n, clock=clock, rng=rng, use_scheduler=use_scheduler,
                      metrics=metrics)
    in_flight = UpdatesInFlight()
    # One person's updates are handled one at a time, so two quick taps cannot race
    # through the same conversation step.
    storage = SqlStorage(sessionmaker)
    dp = Dispatcher(
        storage=storage,
        events_isolation=SimpleEventIsolation(),
        settings=settings,
        clock=clock,
        sessionmaker=sessionmaker,
        engine=runtime.engine,
        reminders=runtime.reminders,
        runtime=runtime,
        updates_in_flight=in_flight,
    )
    dp.startup.register(runtime.start)
    # A stop lets the updates being handled finish (their messages reach the outbox) before the sender stops.
    dp.shutdown.register(in_flight.drain)
    dp.shutdown.register(runtime.stop)
    dp.update.outer_middleware(in_flight)
    dp.update.outer_middleware(DedupMiddleware(sessionmaker))
    dp.update.outer_middleware(DbSessionMiddleware(sessionmaker, storage))
    dp.update.outer_middleware(UserMiddleware(set(settings.bot.admins)))
    UserLocaleMiddleware(i18n).setup(dp)
    dp["i18n_instance"] = i18n
    # Order matters: lead.py's commands come before the leads' routers that read typed answers;
    # staff's /urgent and /request before group.py, which refuses them to everyone else in a group.
    routers = (common, registration, donor, lead, lead_roster, lead_members, lead_add, lead_files, admin, staff,
               staff_request, group, board, answers, fallback)
    dp.include_routers(*(m.router.build() for m in routers))
    # Outside the chain above: it only sees updates whose handler raised.
    dp.include_router(errors.router.build())
    return dp
