"""Assembling the bot: one Bot, one Dispatcher, routers by audience, dependencies passed in."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.pool import QueuePool

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
    admin_stats,
    answers,
    board,
    common,
    donor,
    donor_zalo,
    errors,
    fallback,
    group,
    lead,
    lead_add,
    lead_files,
    lead_members,
    lead_roster,
    monthly,
    registration,
    staff,
    staff_request,
    staff_stats,
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


def updates_admitted(engine: AsyncEngine, reserved_connections: int) -> int | None:
    """How many updates may be handled at once on ``engine``: its pool's capacity less the
    connections kept for the sender, the dispatcher and scheduled work (at least one update).
    None: a pool without a bound (or a single shared connection) — nothing to protect."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    max_overflow = pool._max_overflow  # no public accessor; -1 means unbounded
    if max_overflow < 0:
        return None
    return max(1, pool.size() + max_overflow - reserved_connections)


class AdmittingDispatcher(Dispatcher):
    """A Dispatcher that handles at most ``admitted`` updates at once; the others wait in memory.

    Every update takes pooled connections (de-duplication, FSM state, its session, the dispatcher's
    transactions). Unbounded, a burst of 300 answers queued on the pool and some waited past its
    timeout: `QueuePool limit … reached`, the answer not recorded (issue 10). Admitting fewer updates
    than the pool holds means a checkout finds a connection, and the wait moves here, where it has
    no timeout. Wrapping feed_update (not a middleware) puts the limit before aiogram's own FSM
    middleware, which reads the state in a connection of its own; it covers polling and webhooks.
    """

    def __init__(self, *, admitted: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.admitted = admitted
        self._admission = asyncio.Semaphore(admitted) if admitted else None

    async def feed_update(self, bot: Bot, update: Update, **kwargs: Any) -> Any:
        if self._admission is None:
            return await super().feed_update(bot, update, **kwargs)
        async with self._admission:
            return await super().feed_update(bot, update, **kwargs)


def build_dispatcher(
    settings: Settings, sessionmaker: async_sessionmaker, *, clock: Clock = system_clock,
    rng: random.Random | None = None, use_scheduler: bool = True, metrics: SendMetrics | None = None,
    lifecycle: bool = True, events_isolation: BaseEventIsolation | None = None,
) -> Dispatcher:
    """``lifecycle``: the runtime starts and stops with polling (aiogram's startup/shutdown hooks), as
    one instance does. False: the caller drives it (``bot.service``: the sender for the whole run,
    polling and timers only while leading), and polling can stop and start again in between.
    ``events_isolation``: one user's updates one at a time; by default within this process
    (several instances behind one webhook: bot.isolation)."""
    i18n = make_i18n(settings.bot.default_locale)
    runtime = Runtime(settings, sessionmaker, i18n, clock=clock, rng=rng, use_scheduler=use_scheduler,
                      metrics=metrics)
    in_flight = UpdatesInFlight()
    # One person's updates are handled one at a time, so two quick taps cannot race
    # through the same conversation step.
    storage = SqlStorage(sessionmaker)
    dp = AdmittingDispatcher(
        admitted=updates_admitted(sessionmaker.kw["bind"], settings.database.reserved_connections),
        storage=storage,
        events_isolation=events_isolation or SimpleEventIsolation(),
        settings=settings,
        clock=clock,
        sessionmaker=sessionmaker,
        engine=runtime.engine,
        reminders=runtime.reminders,
        runtime=runtime,
        updates_in_flight=in_flight,
    )
    if lifecycle:
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
    routers = (common, registration, donor, donor_zalo, lead, lead_roster, lead_members, lead_add, lead_files, admin,
               admin_stats, staff, staff_request, staff_stats, monthly, group, board, answers, fallback)
    dp.include_routers(*(m.router.build() for m in routers))
    # Outside the chain above: it only sees updates whose handler raised.
    dp.include_router(errors.router.build())
    return dp
