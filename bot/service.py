"""``redreserve run``: the bot as a long-running service.

In order, so that a refusal changes nothing: the token's form, the database (reachable;
its schema is the CLI's check before this, see redreserve.cli.run), the
HTTP server's address (a port in use is refused before a webhook is set), then
Telegram (getMe: a rejected token stops here; an unreachable API is retried with
backoff, one log line per attempt). Then polling or the webhook until SIGTERM or
SIGINT, and a clean stop: no new updates, the updates being handled finish, the
sender finishes the sends in flight (rows not started stay ``pending`` for the next
start), the webhook is removed, the database closed.

Several instances on one PostgreSQL (issue 14): every instance runs the outbox sender and
the HTTP server (and, in webhook mode, handles the updates posted to it); the leader
(bot.leadership) alone polls or registers the webhook, and runs the timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import User
from aiogram.utils.token import TokenValidationError, validate_token
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.exc import SQLAlchemyError

from bot.app import build_bot, build_dispatcher, updates_admitted
from bot.commands import set_default_commands
from bot.isolation import PostgresEventIsolation
from bot.leadership import Leadership, Poller
from bot.ops_server import Health, OpsServer, UpdateActivity, WebhookReceiver
from bot.runtime import Runtime
from bot.sms_webhook import SMS_WEBHOOK_PATH
from bot.zalo_channel import ZALO_WEBHOOK_PATH
from dispatcher.metrics import Metrics
from models.engine import InstanceLocked, make_engine, make_sessionmaker, single_instance, sqlite_path_problem
from models.leadership import LeaderLock
from ground.clock import Clock, system_clock
from ground.config import Settings

log = logging.getLogger("redreserve.run")

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 60.0


class StartupError(Exception):
    """The bot cannot start; the message names the key to fix. Nothing was changed."""


def check_token(settings: Settings) -> str:
    token = settings.token
    if not token:
        raise StartupError("no Telegram bot token: set [telegram] token in config.toml "
                           "or the BOT_TOKEN environment variable")
    try:
        validate_token(token)
    except TokenValidationError:
        raise StartupError("[telegram] token (or BOT_TOKEN) is malformed: a bot token looks like "
                           "123456789:AA… as @BotFather gives it") from None
    return token


async def wait_for_telegram(bot: Bot, api_base: str, stop: asyncio.Event, *, first_retry_s: float = FIRST_RETRY_S,
                            max_retry_s: float = MAX_RETRY_S) -> User | None:
    """getMe until it answers: the bot's user; None if ``stop`` was set while waiting.

    A rejected token is a configuration error (StartupError); a network error or a 5xx
    is Telegram or the network being down for a while, worth waiting for.
    """
    delay = first_retry_s
    attempt = 1
    while not stop.is_set():
        try:
            return await bot.get_me()
        except TelegramUnauthorizedError:
            raise StartupError("Telegram rejected the token (401): check [telegram] token or BOT_TOKEN") from None
        except TelegramRetryAfter as exc:
            reason, wait = "asked to retry later (429)", max(float(exc.retry_after), delay)
        except (TelegramNetworkError, TelegramServerError, OSError, asyncio.TimeoutError) as exc:
            reason, wait = _reason(exc), delay
        except TelegramAPIError as exc:  # 404 and the like: the address is wrong, waiting will not help
            raise StartupError(f"the Bot API at [telegram] api_base {api_base} answered getMe with "
                               f"{_reason(exc)}: check [telegram] api_base") from None
        log.warning("Telegram not reachable at %s (attempt %d: %s); next try in %.0f s",
                    api_base, attempt, reason, wait)
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except asyncio.TimeoutError:
            pass
        delay = min(delay * 2, max_retry_s)
        attempt += 1
    return None


async def serve(settings: Settings, *, stop: asyncio.Event | None = None, clock: Clock = system_clock,
                on_ready: Callable[[OpsServer | None], None] | None = None,  # once serving (tests)
                first_retry_s: float = FIRST_RETRY_S) -> None:
    """Run until ``stop`` is set (by default: until SIGTERM or SIGINT). Raises StartupError."""
    check_token(settings)
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _stop_on_signal, sig, stop)
    engine = make_engine(settings.database.url, **settings.database.pool_options())
    # The leader lock's connection comes from a pool of its own: held as long as this instance leads,
    # and never waiting behind the sender's and the handlers' checkouts (with the shared pool
    # exhausted by a wave, a follower's first try waited out pool_timeout, 30 s).
    lock_engine = (make_engine(settings.database.url, pool_size=1, max_overflow=0)
                   if engine.dialect.name == "postgresql" else engine)
    bot: Bot | None = None
    isolation: PostgresEventIsolation | None = None
    server: OpsServer | None = None
    instance = contextlib.ExitStack()
    try:
        await _check_database(engine, settings.database.url)
        try:
            instance.enter_context(single_instance(settings.database.url))
        except InstanceLocked:
            raise StartupError(
                f"[database] url: another RedReserve is already running on {make_url(settings.database.url).database}; "
                "a SQLite database serves one running bot (stop the other, or use PostgreSQL)") from None
        sessionmaker = make_sessionmaker(engine)
        metrics = Metrics()
        bot = build_bot(settings)
        if settings.telegram.mode == "webhook" and engine.dialect.name == "postgresql":
            # Behind one webhook address, one user's two taps may reach two instances.
            isolation = PostgresEventIsolation.for_admission(
                settings.database.url, updates_admitted(engine, settings.database.reserved_connections))
        dp = build_dispatcher(settings, sessionmaker, clock=clock, metrics=metrics, lifecycle=False,
                              events_isolation=isolation)
        runtime: Runtime = dp["runtime"]
        activity = UpdateActivity(settings.telegram.mode)
        receiver = None
        if settings.telegram.mode == "webhook":
            receiver = WebhookReceiver(dp, bot, settings.telegram.webhook_secret.get_secret_value(), activity)
        else:
            bot.session.middleware(activity.poll_watch)
        failure: list[BaseException] = []
        leadership = _leadership(settings, engine, lock_engine, dp, bot, runtime, activity, receiver, stop, failure)
        if settings.http.listen:
            health = Health(sessionmaker, lambda: runtime.sender is not None and runtime.sender.running, activity,
                            settings.http.max_poll_age_s, role=lambda: leadership.role)
            host, port = settings.http.address
            webhook = (urlsplit(settings.telegram.webhook_url).path or "/", receiver) if receiver else None
            posts = {SMS_WEBHOOK_PATH: runtime.sms.handle} if runtime.sms is not None else None  # issue 15
            routes = runtime.answer_page.routes() if runtime.answer_page is not None else None  # issue 15
            if runtime.zalo is not None and settings.zalo.mode == "webhook":
                posts = {**(posts or {}), urlsplit(settings.zalo.webhook_url or "").path or ZALO_WEBHOOK_PATH:
                         runtime.zalo.handle}
            server = OpsServer(host, port, health=health, metrics=metrics, clock=clock, webhook=webhook, posts=posts,
                               routes=routes)
            try:
                await server.start()
            except OSError as exc:
                server = None
                raise StartupError(f"[http] listen {settings.http.listen}: cannot listen there: "
                                   f"{exc.strerror or exc}") from None
            log.info("HTTP server on %s:%d: /healthz, /metrics%s", host, server.port,
                     f", webhook at {webhook[0]}" if webhook else "")
        me = await wait_for_telegram(bot, settings.telegram.api_base, stop, first_retry_s=first_retry_s)
        if me is None:
            return
        log.info("Telegram accepted the token: @%s (id %d), %s mode", me.username, me.id, settings.telegram.mode)
        await set_default_commands(bot, dp["i18n_instance"])
        await _run(dp, bot, runtime, leadership, receiver, stop, lambda: on_ready(server) if on_ready else None)
        if failure:
            raise failure[0]
    finally:
        if own_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        if server is not None:
            await server.stop()
        if bot is not None:
            await bot.session.close()
        await engine.dispose()
        if lock_engine is not engine:
            await lock_engine.dispose()
        if isolation is not None:
            await isolation.engine.dispose()
        instance.close()
        log.info("stopped")


def _leadership(settings: Settings, engine: AsyncEngine, lock_engine: AsyncEngine, dp: Dispatcher, bot: Bot,
                runtime: Runtime, activity: UpdateActivity, receiver: WebhookReceiver | None, stop: asyncio.Event,
                failure: list[BaseException]) -> Leadership:
    """What the leader runs beyond every instance's sender: polling or the webhook, and the timers."""
    def polling_failed(exc: BaseException) -> None:
        failure.append(exc)
        stop.set()

    poller = Poller(dp, bot, polling_failed) if receiver is None else None

    async def lead() -> None:
        await runtime.lead()
        if poller is not None:
            activity.restart()
            await poller.start()
        else:
            await bot.set_webhook(settings.telegram.webhook_url,
                                  secret_token=settings.telegram.webhook_secret.get_secret_value(),
                                  allowed_updates=dp.resolve_used_update_types())
            log.info("webhook set: Telegram posts updates to %s", settings.telegram.webhook_url)

    async def follow() -> None:
        # Polling first: another instance may poll a moment from now, and two pollers get 409 Conflict.
        if poller is not None:
            await poller.stop()
        elif stop.is_set():
            # Removed at the leader's stop: Telegram keeps what arrives from now on for the next leader.
            # A leader that only lost the lock leaves it: the next one sets the same address again.
            try:
                await bot.delete_webhook()
                log.info("webhook removed")
            except (TelegramAPIError, OSError) as exc:
                log.warning("webhook not removed: %s", _reason(exc))
        await runtime.follow()

    # On PostgreSQL other instances may arm wake-ups the leader never hears of (see Runtime.rescan).
    rescan = runtime.rescan if engine.dialect.name == "postgresql" else None
    return Leadership(LeaderLock(lock_engine), lead=lead, follow=follow, retry_s=settings.cluster.leader_retry_s,
                      instance_id=settings.cluster.resolved_id(), rescan=rescan, rescan_s=settings.cluster.rescan_s)


async def _run(dp: Dispatcher, bot: Bot, runtime: Runtime, leadership: Leadership,
               receiver: WebhookReceiver | None, stop: asyncio.Event, ready: Callable[[], None]) -> None:
    """The sender for the whole run, the leader's work while leading; then a clean stop."""
    await runtime.start_sender(bot)
    try:
        if receiver is not None:
            receiver.accepting = True  # every instance handles the updates posted to it
        await leadership.step()  # the first try at once: a lone instance leads from the start
        if not leadership.leading:
            log.info("leadership: %s follows (another instance leads); sending from the outbox",
                     leadership.instance_id)
        runtime.started.set()
        ready()
        await leadership.run(stop)  # until stop; ends by stopping polling and the timers, freeing the lock
    finally:
        if leadership.leading:  # an error under way: the leader's work stops all the same
            await leadership.stand_down()
        if receiver is not None:
            await receiver.drain()
        # The updates being handled finish (their messages reach the outbox) before the sender stops.
        await dp["updates_in_flight"].drain()
        await runtime.stop()


async def _check_database(engine, url: str) -> None:
    where = make_url(url).render_as_string(hide_password=True)
    problem = sqlite_path_problem(url)
    if problem:
        raise StartupError(f"[database] url: cannot use the database {where}: {problem}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError) as exc:
        raise StartupError(f"[database] url: cannot use the database {where}: {_reason(exc)}") from None


def _stop_on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("%s received: stopping", sig.name)
    stop.set()


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__
