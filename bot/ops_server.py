"""The bot's own HTTP server (aiohttp): /healthz, /metrics, in webhook mode the webhook, the SMS gateway's, and
the signed answer links' page.

One server for all three, bound to ``[http] listen``. In webhook mode Telegram posts
each update to the path of ``[telegram] webhook_url`` (through the operator's TLS
proxy); the post is answered as soon as the update is accepted, and the update is
handled in a task of its own, so that a slow handler never makes Telegram wait,
time out and send the update again.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from dispatcher.metrics import Metrics
from ground.clock import Clock

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DB_CHECK_TIMEOUT_S = 5.0


class UpdateActivity:
    """When updates last arrived: a successful getUpdates (even an empty one) or an accepted webhook post."""

    def __init__(self, mode: str, *, now: Callable[[], float] = time.monotonic) -> None:
        self.mode = mode
        self.now = now
        self.since = now()  # before the first poll, the age counts from the start
        self.last: float | None = None

    def restart(self) -> None:
        """This instance starts polling (it became the leader): the age counts from now."""
        self.since = self.now()
        self.last = None

    def seen(self) -> None:
        self.last = self.now()

    def age(self) -> float:
        return self.now() - (self.last if self.last is not None else self.since)

    async def poll_watch(self, make_request, bot: Bot, method):
        """An aiogram session middleware: a getUpdates that came back is a successful poll."""
        result = await make_request(bot, method)
        if type(method).__name__ == "GetUpdates":
            self.seen()
        return result


@dataclass
class Health:
    """The three things that make the bot sick: no database, no sender loop, no updates arriving."""

    sessionmaker: async_sessionmaker
    sender_running: Callable[[], bool]
    activity: UpdateActivity
    max_poll_age_s: float
    role: Callable[[], str] = lambda: "leader"  # a follower does not poll: its updates are the leader's


    async def check(self) -> tuple[bool, dict[str, str]]:
        checks: dict[str, str] = {}
        failing: list[str] = []
        try:
            async with self.sessionmaker() as s:
                await asyncio.wait_for(s.exec(text("SELECT 1")), DB_CHECK_TIMEOUT_S)
            checks["database"] = "ok"
        except Exception as exc:  # any driver error or a timeout: the database is what is sick
            checks["database"] = f"unreachable: {_first_line(exc)}"
            failing.append("database")
        if self.sender_running():
            checks["sender"] = "ok"
        else:
            checks["sender"] = "not running"
            failing.append("sender")
        age = self.activity.age()
        role = self.role()
        checks["role"] = role
        if self.activity.mode == "polling" and role != "leader":
            checks["updates"] = "not polling: follower (the leader polls)"
        elif self.activity.mode == "polling":
            if age > self.max_poll_age_s:
                checks["updates"] = f"no successful poll for {age:.0f} s"
                failing.append("updates")
            else:
                checks["updates"] = f"ok, last poll {age:.0f} s ago"
        else:
            # Telegram posts only when someone writes: a quiet webhook is not a sick one.
            last = "none yet" if self.activity.last is None else f"{age:.0f} s ago"
            checks["updates"] = f"ok, last webhook post {last}"
        return not failing, {"status": "ok" if not failing else "failing: " + ", ".join(failing), **checks}


class WebhookReceiver:
    """Checks the secret, answers at once, handles the update in a task of its own."""

    def __init__(self, dp: Dispatcher, bot: Bot, secret: str, activity: UpdateActivity) -> None:
        self.dp = dp
        self.bot = bot
        self.secret = secret.encode()
        self.activity = activity
        self.accepting = False
        self._tasks: set[asyncio.Task] = set()

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), self.secret):
            log.warning("webhook: refused a post from %s: %s secret token", request.remote,
                        "missing" if given is None else "wrong")
            return web.Response(status=401, text="Unauthorized")
        if not self.accepting:  # starting or stopping: Telegram keeps the update and posts it again
            return web.Response(status=503, text="Not ready")
        try:
            update: dict[str, Any] = await request.json()
            update_id = int(update["update_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("webhook: refused a post that is not an update")
            return web.Response(status=400, text="Not an update")
        self.activity.seen()
        task = asyncio.create_task(self._feed(update, update_id), name=f"update-{update_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=200)

    async def _feed(self, update: dict[str, Any], update_id: int) -> None:
        try:
            await self.dp.feed_raw_update(self.bot, update)
        except Exception:  # aiogram logs handler errors itself; this catches what it lets through
            log.exception("webhook: update %s failed", update_id)

    async def drain(self) -> None:
        """Stop accepting posts and wait for the updates already accepted."""
        self.accepting = False
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class OpsServer:
    def __init__(self, host: str, port: int, *, health: Health, metrics: Metrics, clock: Clock,
                 webhook: tuple[str, WebhookReceiver] | None = None,
                 posts: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] | None = None,
                 routes: list[web.RouteDef] | None = None) -> None:
        self.host = host
        # Other channels' webhooks on the same server: path -> handler (the SMS gateway's, bot.sms_webhook).
        self.posts = dict(posts or {})
        self.routes = list(routes or [])  # pages of their own (the answer links', bot.answer_page)
        self.port = port
        self.health = health
        self.metrics = metrics
        self.clock = clock
        self.webhook = webhook
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind the address; an address in use raises OSError here, before anything else happened."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.webhook is not None:
            path, receiver = self.webhook
            app.router.add_post(path, receiver.handle)
        for path, handler in self.posts.items():
            app.router.add_post(path, handler)
        app.router.add_routes(self.routes)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, body = await self.health.check()
        if not ok:
            log.warning("health: %s", body["status"])
        return web.json_response(body, status=200 if ok else 503, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            await self.metrics.refresh(self.health.sessionmaker, self.clock())
        except Exception as exc:  # the counters are still worth serving; /healthz says what is wrong
            log.warning("metrics: database figures not read: %s", _first_line(exc))
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__

