"""The dispatcher's moving parts around one Bot: the engine, the reminders, the outbox sender, the scheduler.

Two parts with two lifetimes (issue 14): the outbox sender runs on every instance (it claims
rows, so several can share one outbox), the timers — waves and reminders — only on the leader
(:meth:`Runtime.lead` / :meth:`Runtime.follow`), so that they fire once across instances. One
instance (the demo, the tests, SQLite) starts both with the polling loop and stops them with it
(:meth:`start` / :meth:`stop` as aiogram's startup/shutdown hooks); ``bot.service`` drives them
itself, following the leadership.
"""

from __future__ import annotations

import asyncio
import random
from functools import partial

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.answer_page import AnswerPage
from bot.polling import SkipUnreadableUpdates
from bot.monthly_report import MonthlyReportParts
from bot.render import render_outgoing
from bot.sms_channel import SmsChannel
from bot.throttle import LimitMiddleware
from bot.transport import AiogramTransport
from bot.zalo_channel import ZaloChannel
from dispatcher.channels import next_channel
from dispatcher.engine import Dispatcher as DispatchEngine
from dispatcher.eligible_again import EligibleAgain
from dispatcher.lead_digest import LeadDigest
from dispatcher.monthly_reports import MonthlyReports
from dispatcher.link_answers import LinkAnswers
from dispatcher import messages as M
from dispatcher.metrics import SendMetrics
from dispatcher.reminders import Reminders
from dispatcher.scheduling import DispatchScheduler, ReminderScheduler
from dispatcher.staff_nudges import StaffNudges
from dispatcher.send_budget import make_budget
from dispatcher.sender import Sender, replace_unreachable
from dispatcher.wakeups import Wakeups
from ground.clock import Clock
from ground.config import Settings
from models.tables import Channel


# How long a new follower lets the timers' work under way finish before cancelling it.
FOLLOW_WAIT_S = 10.0


class Runtime:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker, i18n: I18n, *, clock: Clock,
                 rng: random.Random | None = None, use_scheduler: bool = True,
                 metrics: SendMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessionmaker = sessionmaker
        self.i18n = i18n
        self.clock = clock
        # Who answers which bell (dispatcher.wakeups): the sender hears of written messages once it
        # exists (start), the schedulers of due moments, the reminders of moved requests.
        self.wakeups = Wakeups()
        # Each channel besides Telegram whose sender runs here; its donors are asked on it (issue 15).
        off_telegram = ([Channel.sms.value] if settings.sms.enabled else []) + (
            [Channel.zalo.value] if settings.zalo.enabled else [])
        self.engine = DispatchEngine(sessionmaker, settings, clock=clock, rng=rng, wakeups=self.wakeups,
                                     channels=off_telegram)
        # Tests and simulations drive time themselves (engine.tick after moving their clock);
        # APScheduler only ever runs on the wall clock.
        self.scheduler = DispatchScheduler(self.engine) if use_scheduler else None
        # Each source is one kind of scheduled message (dispatcher.reminders); tests call reminders.run_due().
        self.reminders = Reminders(sessionmaker, settings, clock=clock, wakeups=self.wakeups,
                                   sources=[EligibleAgain(settings), LeadDigest(settings), StaffNudges(settings),
                                            MonthlyReports(settings)])
        self.wakeups.on_requests_changed(self.reminders.poke)  # an answer may bring a staff nudge forward
        self.reminder_scheduler = (ReminderScheduler(self.reminders, self.scheduler.scheduler)
                                   if self.scheduler is not None else None)
        self.sender: Sender | None = None
        self.leading = False
        # SMS beside Telegram (issue 15), when [sms] is set up: its own sender and webhook.
        self.sms = SmsChannel(settings, sessionmaker, self.engine, i18n, clock=clock) if settings.sms.enabled else None
        # The signed answer links' page (issue 15), served by the bot's own HTTP server when it has a public URL.
        http = settings.http
        self.answer_page = AnswerPage(LinkAnswers(sessionmaker, self.engine, clock=clock),
                                      http.link_secret.get_secret_value(), i18n, settings.bot.default_locale,
                                      settings.bot.tz, clock=clock) if http.public_url and http.link_secret else None
        self.zalo = ZaloChannel(settings, sessionmaker, self.engine, i18n, clock=clock) if settings.zalo.enabled else None
        self.started = asyncio.Event()

    async def start(self, bot: Bot) -> None:
        """One instance: the sender and the timers."""
        await self.start_sender(bot)
        await self.lead()
        self.started.set()

    async def start_sender(self, bot: Bot) -> None:
        """What every instance runs: the outbox sender, and the token's budget for the handlers' replies."""
        send = self.settings.dispatch.send
        # One budget for the token: in this process, or shared with the other instances (issue 14).
        limiter = make_budget(self.settings, self.sessionmaker, _dialect(self.sessionmaker))
        bot.session.middleware(LimitMiddleware(limiter))
        bot.session.middleware(SkipUnreadableUpdates())  # one unreadable update must not stop polling
        # The outbox talks through a Bot of its own, without that middleware: the sender
        # takes its turns from the same limiter itself and handles 429s for its rows.
        self._outbox_bot = Bot(token=bot.token, session=AiohttpSession(api=bot.session.api), default=bot.default)
        render = partial(render_outgoing, i18n=self.i18n, default_locale=self.settings.bot.default_locale)
        reports = MonthlyReportParts(self.sessionmaker, self.settings, self.i18n, clock=self.clock)
        transport = AiogramTransport(self._outbox_bot, render, reports=reports)
        self.sender = Sender(self.sessionmaker, transport, send, clock=self.clock,
                             on_unreachable=replace_unreachable(self.engine), limiter=limiter,
                             prepare={M.Board.kind: self.engine.board_message}, metrics=self.metrics,
                             instance_id=self.settings.cluster.resolved_id(), lease_s=self.settings.cluster.lease_s,
                             reroute=(partial(next_channel, sms=self.settings.sms, zalo=True) if self.zalo is not None
                                      else self.sms.reroute if self.sms is not None else None))
        self.wakeups.on_outbox_written(self.sender.kick)
        await self.sender.start()
        if self.sms is not None:
            await self.sms.start(replace_unreachable(self.engine))
            assert self.sms.sender is not None  # made by start
            self.wakeups.on_outbox_written(self.sms.sender.kick)
        if self.zalo is not None:
            await self.zalo.start(replace_unreachable(self.engine))
            assert self.zalo.sender is not None  # made by start
            self.wakeups.on_outbox_written(self.zalo.sender.kick)

    async def lead(self) -> None:
        """This instance took the leadership (or is the only one): the timers start from the database."""
        if self.zalo is not None:
            self.zalo.start_polling()  # one poller per Zalo token, like the timers: the leader's
        if self.scheduler is None or self.leading:
            return
        self.leading = True
        # Wake-ups armed while following were never run: the database is the truth, re-armed just below.
        self.scheduler.scheduler.remove_all_jobs()
        await self.scheduler.start()  # re-arms open requests from the database; a missed wave fires once
        await self.reminder_scheduler.start()  # one run: makes up what is overdue, arms the next

    async def follow(self) -> None:
        """The leadership is gone (or was never ours): no timer may fire here any more."""
        if self.zalo is not None:
            await self.zalo.stop_polling()
        if self.scheduler is None:
            return
        if self.leading:
            self.leading = False
            apscheduler = self.scheduler.scheduler
            if apscheduler.running:
                apscheduler.remove_all_jobs()
                apscheduler.shutdown(wait=False)
            # A tick or reminders run under way finishes (milliseconds, usually; the database guards it
            # against doing twice what the next leader does) instead of being cancelled in the middle
            # of a transaction, whose row locks could hold up the next leader's tick.
            alarms = (self.scheduler.alarm, self.reminder_scheduler.alarm)
            try:
                await asyncio.wait_for(asyncio.gather(*(a.wait_idle() for a in alarms)), FOLLOW_WAIT_S)
            except asyncio.TimeoutError:
                for alarm in alarms:
                    alarm.cancel()
            # AsyncIOScheduler.shutdown only schedules itself on the loop: let it happen, or a lead()
            # right after would find it "running", skip its start, and then see it stop under it.
            while apscheduler.running:
                await asyncio.sleep(0)
        # A follower's handlers and sender still ring the scheduler (a request answered here): with it
        # stopped, APScheduler keeps those jobs pending; forget them, the leader rescans the database.
        self.scheduler.scheduler.remove_all_jobs()

    async def rescan(self) -> None:
        """The leader looks at every open request and the reminders again: another instance may have
        posted or moved one and armed its wake-up there, where no timer runs."""
        if self.scheduler is None or not self.leading:
            return
        for request_id in await self.engine.open_request_ids():
            self.scheduler.alarm.ring(request_id)
        self.reminder_scheduler.run_soon()

    async def stop(self) -> None:
        await self.follow()
        if self.sms is not None:
            await self.sms.stop()
        if self.zalo is not None:
            await self.zalo.stop()
        if self.sender is not None:
            await self.sender.stop()
            await self._outbox_bot.session.close()


def _dialect(sessionmaker: async_sessionmaker) -> str:
    bind = sessionmaker.kw.get("bind")
    return bind.dialect.name if bind is not None else ""
