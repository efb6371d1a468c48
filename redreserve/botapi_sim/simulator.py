"""``BotAPISimulator``: a local Telegram Bot API server for tests, demos and the playground.

The real aiogram ``Bot`` talks to it over HTTP exactly as it talks to
api.telegram.org, so everything between handlers and the wire (serialisation,
multipart uploads, error classes, polling, retries) is exercised for real.
Tests play the users: they *push* updates (a donor typing, sharing a contact,
pressing a button) and *read* what the bot did, either as the call log or as
each chat currently looks.

Typical use::

    async with BotAPISimulator() as sim:
        bot = sim.create_bot()
        sim.push_message(1001, "/start")
        ...  # run the dispatcher
        await sim.wait_for_call("sendMessage", chat_id=1001)
        assert "Chào" in sim.last_message(1001)["text"]
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .calls import APICall, matches
from .errors import BotAPIError, injected
from .limits import RateLimiter, RateLimits
from .methods import BotAPIMethods
from .params import loggable, read_params
from .state import SimFile, World
from .updates import Pulse, UpdateQueue
from .users import SimulatedUsers
from .webhook import WebhookDelivery

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

DEFAULT_BOT_ID = 7_000_000_001
_MAX_UPLOAD = 50 * 1024 * 1024  # bots may upload up to 50 MB


class _Failure:
    """An error scheduled with ``fail_next``."""

    def __init__(self, method: str, chat_id: int | None, error: Callable[[], BotAPIError], count: int):
        self.method = method.lower()
        self.chat_id = chat_id
        self.error = error
        self.remaining = count

    def applies(self, method: str, params: dict[str, Any]) -> bool:
        if self.remaining <= 0:
            return False
        if self.method == "*":
            # Wildcards spare getUpdates, or a polling bot would swallow them.
            if method == "getUpdates":
                return False
        elif self.method != method.lower():
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id


class Hold:
    """A call held in flight until released (see ``BotAPISimulator.hold_next``)."""

    def __init__(self, method: str, chat_id: int | None) -> None:
        self.method = method.lower()
        self.chat_id = chat_id
        self.reached = False  # the call arrived and is waiting
        self._release = asyncio.Event()

    def applies(self, method: str, params: dict[str, Any]) -> bool:
        return (not self.reached and self.method == method.lower()
                and (self.chat_id is None or params.get("chat_id") == self.chat_id))

    def release(self) -> None:
        self._release.set()


class BotAPISimulator(SimulatedUsers):
    """A fake Bot API server holding one bot identity and any number of simulated users.

    A Telegram token starts with the bot's id, and aiogram's ``bot.id`` is read
    from the token. So unless ``bot_id`` is given, the simulator adopts the id
    of the first token it is called with, keeping ``bot.id``, ``getMe`` and the
    ``from`` of sent messages consistent. Any token is accepted.

    ``group_privacy`` is Telegram's privacy mode (on by default, as for a new bot): a
    group message that is neither a command for this bot nor a reply to one of its
    messages stays in the chat but is not delivered (see :attr:`withheld`).

    ``clock`` only drives flood limits (inject a fake one to test them
    deterministically); waiting helpers always use real time.
    """

    def __init__(
        self,
        *,
        bot_id: int | None = None,
        bot_username: str = "redreserve_bot",
        bot_first_name: str = "RedReserve",
        token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        group_privacy: bool = True,
    ) -> None:
        self._bot_id_fixed = bot_id is not None or token is not None
        if bot_id is None:
            bot_id = _token_bot_id(token) if token else DEFAULT_BOT_ID
        self.token = token or f"{bot_id}:TEST-redreserve-simulator"
        bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": not group_privacy,
            "supports_inline_queries": False,
        }
        self.world = World(bot_user)
        # Telegram's default for bots: in groups only commands and replies to the bot arrive
        # (see SimulatedUsers.meant_for_bot); False is a bot made group admin or with privacy off.
        self.group_privacy = group_privacy
        self.withheld: list[dict[str, Any]] = []
        # One pulse for everything: waiters re-check their condition on any change.
        self._changed = Pulse()
        self.queue = UpdateQueue(self._changed)
        self.limiter = RateLimiter(clock)
        # After setWebhook, updates are posted to the bot (see webhook.py); ``webhook.routes`` plays the TLS proxy.
        self.webhook = WebhookDelivery(self.queue)
        self.methods = BotAPIMethods(self.world, self.queue, self.limiter, self.webhook)
        self._log: list[APICall] = []
        self._failures: list[_Failure] = []
        self._holds: list[Hold] = []
        # Simulator bugs, answered as 500s; fixtures may assert this stays empty.
        self.internal_errors: list[Exception] = []
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._push_mark = 0
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port``; port 0 picks a free one (see :attr:`base_url`)."""
        app = web.Application(client_max_size=_MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # handler_cancellation: when aiogram cancels a long poll (stop_polling),
        # the server side must stop waiting too, or it would take the next update.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        self.queue.closed = False

    async def stop(self) -> None:
        """Answer pending long polls with ``[]`` at once, then shut the server down."""
        self.queue.close()
        await self.webhook.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotAPISimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("BotAPISimulator is not started")
        return self._base_url

    def create_bot(self, token: str | None = None, **bot_kwargs: Any) -> Bot:
        """An aiogram Bot wired to this simulator (the caller closes its session)."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        class LocalSession(AiohttpSession):
            async def close(self) -> None:
                # aiogram waits 250 ms here for TLS connections to wind down;
                # the simulator speaks plain HTTP, and test suites close many bots.
                if self._session is not None and not self._session.closed:
                    await self._session.close()

        session = LocalSession(api=TelegramAPIServer.from_base(self.base_url))
        return Bot(token or self.token, session=session, **bot_kwargs)

    # ------------------------------------------------------------------ HTTP side

    async def _handle_method(self, request: web.Request) -> web.Response:
        if not self._bot_id_fixed:
            self._bot_id_fixed = True
            self.world.bot_user["id"] = _token_bot_id(request.match_info["token"])
        method = self.methods.canonical(request.match_info["method"])
        polling = method == "getUpdates"
        started_at = time.monotonic()
        if not polling:
            self._in_flight += 1
        record = APICall(seq=0, method=method, params={}, token=request.match_info["token"],
                         started_at=started_at, finished_at=started_at)
        body: dict[str, Any] | None = None
        try:
            params = await read_params(request)
            record.params = loggable(params)
            record.chat_id = self._chat_of(method, params)
            await self._wait_if_held(method, params)
            self._raise_scheduled_failure(method, params)
            record.result = await self.methods.call(
                method, params, client_alive=lambda: _client_alive(request)
            )
            body = {"ok": True, "result": record.result}
        except BotAPIError as exc:
            body = exc.to_response()
        except Exception as exc:  # a simulator bug must surface, not hang the bot
            log.exception("Bot API simulator failed on %s", method)
            self.internal_errors.append(exc)
            body = BotAPIError(500, f"Internal Server Error: simulator bug: {exc!r}").to_response()
        except asyncio.CancelledError:  # the client hung up (handler_cancellation)
            record.cancelled = True
            raise
        finally:
            if not polling:
                self._in_flight -= 1
            self._record(record, body)
        return web.json_response(body, status=200 if body["ok"] else body["error_code"])

    async def _handle_file(self, request: web.Request) -> web.Response:
        sim_file = self.world.file_by_path(request.match_info["path"])
        if sim_file is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(
            body=sim_file.data, content_type=sim_file.mime_type or "application/octet-stream"
        )

    def _chat_of(self, method: str, params: dict[str, Any]) -> int | str | None:
        if method == "answerCallbackQuery":
            record = self.world.callbacks.get(str(params.get("callback_query_id")))
            return record.chat_id if record else None
        return params.get("chat_id")

    async def _wait_if_held(self, method: str, params: dict[str, Any]) -> None:
        for hold in self._holds:
            if hold.applies(method, params):
                hold.reached = True
                self._changed.notify()
                await hold._release.wait()
                return

    def _raise_scheduled_failure(self, method: str, params: dict[str, Any]) -> None:
        for failure in self._failures:
            if failure.applies(method, params):
                failure.remaining -= 1
                raise failure.error()

    def _record(self, record: APICall, body: dict[str, Any] | None) -> None:
        record.seq = len(self._log) + 1
        record.finished_at = time.monotonic()
        if body is not None and not body["ok"]:
            record.error = {k: v for k, v in body.items() if k != "ok"}
            record.result = None
        self._log.append(record)
        if record.method != "getUpdates" or record.result:
            self._last_activity = record.finished_at
        self._changed.notify()

    # ------------------------------------------------------------------ configuration

    def set_limits(
        self,
        global_per_second: int | None = 30,
        per_chat_per_second: int | None = 1,
        group_per_minute: int | None = 20,
        retry_after: int | None = None,
    ) -> None:
        """Enforce flood limits (defaults: Telegram's documented ones); None disables one.

        ``retry_after`` fixes the value answered in 429s; by default it is the
        real time until the oldest send leaves the window, rounded up.
        Windows start empty.
        """
        self.limiter.limits = RateLimits(
            global_per_second, per_chat_per_second, group_per_minute, retry_after
        )
        self.limiter.reset()

    def clear_limits(self) -> None:
        self.limiter.limits = RateLimits()

    @property
    def violations(self) -> int:
        """How many 429s were answered because a flood limit was exceeded (not ``fail_next``)."""
        return self.methods.violations

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
        *,
        chat_id: int | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (``"*"``: any but getUpdates) with an error.

        Matching calls fail before any validation and leave no trace in the
        chats. ``description`` defaults to Telegram's wording for the code; a
        429 gets ``retry_after`` (default 1) so aiogram raises TelegramRetryAfter.
        """
        self._failures.append(_Failure(
            method, chat_id, lambda: injected(error_code, description, retry_after), count
        ))

    def hold_next(self, method: str, *, chat_id: int | None = None) -> Hold:
        """Hold the next ``method`` call (to ``chat_id``) in flight until ``release()``: a slow
        Telegram on cue, e.g. to stop the bot while a send is under way."""
        hold = Hold(method, chat_id)
        self._holds.append(hold)
        return hold

    # ------------------------------------------------------------------ queueing what users do

    def _push(self, update: dict[str, Any], *, redeliver: bool = False) -> dict[str, Any]:
        self._push_mark = len(self._log)
        self._last_activity = time.monotonic()
        return copy.deepcopy(self.queue.push(update, redeliver=redeliver))  # notifies waiters

    # ------------------------------------------------------------------ readers

    @property
    def calls(self) -> list[APICall]:
        """Every request so far, getUpdates included, in completion order."""
        return list(self._log)

    def sent(
        self,
        chat_id: int | str | None = None,
        method: str | Iterable[str] | None = None,
        *,
        ok: bool | None = None,
    ) -> list[APICall]:
        """Calls the bot made (failed ones too, see ``ok``); getUpdates only if asked for."""
        return [
            call for call in self._log
            if matches(call, method, chat_id, ok) and (method is not None or call.method != "getUpdates")
        ]

    def mark(self) -> int:
        """A position in the call log, for ``wait_for_call(..., since=mark)``."""
        return len(self._log)

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The chat as it looks now: both sides, edits applied, deleted messages gone.

        ``reply_markup`` holds whatever the bot attached, reply keyboards included.
        """
        return self.world.messages(chat_id)

    def last_message(self, chat_id: int, *, from_bot: bool | None = True) -> dict[str, Any] | None:
        """The newest message still in the chat; by default the bot's (``from_bot=None``: anyone's)."""
        for message in reversed(self.world.messages(chat_id)):
            if from_bot is None or self.world.is_from_bot(message) == from_bot:
                return message
        return None

    def reply_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard the user currently sees in the chat, if any."""
        return copy.deepcopy(self.world.reply_keyboards.get(chat_id))

    def callback_answers(
        self, callback_query_id: str | None = None, *, user_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Answers given to pushed callback queries, with the query's id, user, chat and data."""
        return [
            {"callback_query_id": r.query_id, "user_id": r.user_id, "chat_id": r.chat_id,
             "message_id": r.message_id, "data": r.data, **r.answer}
            for r in self.world.callbacks.values()
            if r.answer is not None
            and (callback_query_id is None or r.query_id == callback_query_id)
            and (user_id is None or r.user_id == user_id)
        ]

    def documents(self, chat_id: int | None = None) -> list[SimFile]:
        """Documents the bot sent, one record per message, bytes included."""
        return [d for d in self.world.sent_documents if chat_id is None or d.chat_id == chat_id]

    def photos(self, chat_id: int | None = None) -> list[SimFile]:
        """Photos the bot sent, one record per message, bytes included."""
        return [p for p in self.world.sent_photos if chat_id is None or p.chat_id == chat_id]

    def file(self, file_id: str) -> SimFile | None:
        return self.world.files.get(file_id)

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, Any]]:
        """The command list set for ``scope`` (default scope if None) and language."""
        return self.methods.commands_for(scope, language_code)

    def is_started(self, user_id: int) -> bool:
        return user_id in self.world.started

    def is_blocked(self, user_id: int) -> bool:
        return user_id in self.world.blocked

    @property
    def polls_waiting(self) -> int:
        """getUpdates requests currently held open (1 while a polling bot is connected and idle)."""
        return self.queue.polls_waiting

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet."""
        return copy.deepcopy(self.queue.pending)

    @property
    def dropped_updates(self) -> list[dict[str, Any]]:
        """Updates discarded because the bot's ``allowed_updates`` excluded their type."""
        return copy.deepcopy(self.queue.dropped)

    # ------------------------------------------------------------------ waiting

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, *, what: str | None = None
    ) -> Any:
        """Wait until ``predicate()`` is truthy, re-checking after every call and push; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._timeout_report(what or f"{predicate!r}", timeout))
            await self._changed.wait(remaining)

    async def wait_for_call(
        self,
        method: str | Iterable[str],
        chat_id: int | str | None = None,
        count: int = 1,
        timeout: float = 5.0,
        *,
        since: int | None = None,
        ok: bool | None = None,
    ) -> list[APICall]:
        """Wait for ``count`` matching calls and return all matching ones.

        Only calls made after ``since`` count; by default after the latest
        ``push_*``, so "push, then wait for the reply" never returns an answer
        to an earlier message. Pass ``since=0`` to search the whole log.
        """
        start = self._push_mark if since is None else since

        def found() -> list[APICall] | None:
            hits = [c for c in self._log[start:] if matches(c, method, chat_id, ok)]
            return hits if len(hits) >= count else None

        what = f"{count} x {method}" + (f" to chat {chat_id}" if chat_id is not None else "")
        return await self.wait_for(found, timeout, what=what)

    async def wait_idle(self, quiet: float = 0.2, timeout: float = 5.0) -> None:
        """Wait until every pushed update was delivered and the bot made no call for ``quiet`` s."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            busy = self.queue.undelivered > 0 or self._in_flight > 0 or self.webhook.posting
            quiet_left = self._last_activity + quiet - now
            if not busy and quiet_left <= 0:
                return
            remaining = deadline - now
            if remaining <= 0:
                raise AssertionError(self._timeout_report(
                    f"idle ({self.queue.undelivered} updates undelivered - is the bot polling?, "
                    f"{self._in_flight} requests in flight)", timeout))
            await self._changed.wait(remaining if busy else min(remaining, quiet_left))

    def _timeout_report(self, what: str, timeout: float, last: int = 8) -> str:
        recent = "\n".join(f"  {call}" for call in self._log[-last:]) or "  (none)"
        return f"timed out after {timeout}s waiting for {what}; last calls:\n{recent}"


def _token_bot_id(token: str) -> int:
    prefix = token.split(":", 1)[0]
    return int(prefix) if prefix.isdigit() else DEFAULT_BOT_ID


def _client_alive(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()
