"""``ZaloBotSimulator``: the Zalo Bot Platform's API on localhost, in the style of redreserve.botapi_sim.

The product's adapter (bot.zalo_api) talks to it over HTTP exactly as to Zalo: ``/bot{token}/{method}``,
``{"ok": ..., "result" | "error_code", "description"}``. Tests and the demo play the Zalo users:

* ``user_says(user_id, text)`` — a user writes to the bot: queued for getUpdates, or posted to the
  webhook with the secret header when one is set (its HTTP status is returned then);
* ``user_sends(user_id, event)`` — any other kind of event (a sticker, an image);
* ``texts_to(user_id)`` / ``sent`` — what the bot sent;
* ``blocked`` (users who blocked the bot: 403), ``fail_next`` (any error, e.g. 500), ``per_second``
  (the bot's rate limit: 429 with ``retry_after``), ``delay_s`` (each send takes this long).

A chat the bot was never written to is unknown to Zalo (400 "chat not found"), as Telegram's
"can't initiate conversation": a bot answers people, it does not find them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bot.zalo_api import SECRET_HEADER

TEXT_EVENT = "message.text.received"


@dataclass(frozen=True)
class SimZaloMessage:
    message_id: str
    chat_id: str
    text: str | None
    photo: str | None
    at: float


@dataclass
class _Failure:
    code: int
    description: str
    count: int


class ZaloBotSimulator:
    def __init__(self, *, token: str = "1234:sim-zalo-token", name: str = "Bot RedReserve",
                 per_second: float | None = None, delay_s: float = 0.0):
        self.token = token
        self.name = name
        self.per_second = per_second  # None: no limit
        self.delay_s = delay_s
        self.blocked: set[str] = set()
        self.sent: list[SimZaloMessage] = []
        self.refused = 0  # calls answered with an error
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.known: set[str] = set()  # chats that wrote to the bot
        self._updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._failures: list[_Failure] = []
        self._window: list[float] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---------------------------------------------------------------- lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        # A long poll may be waiting when a test ends: it is cut short, not waited for.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ZaloBotSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- what tests do
    def fail_next(self, code: int = 500, description: str = "Internal error", *, count: int = 1) -> None:
        self._failures.append(_Failure(code, description, count))

    def texts_to(self, user_id: str) -> list[str]:
        return [m.text for m in self.sent if m.chat_id == user_id and m.text is not None]

    async def user_says(self, user_id: str, text: str, *, name: str = "Zalo user",
                        secret: str | None = None) -> int | None:
        """``user_id`` writes ``text`` to the bot. With a webhook set, its HTTP status; else None."""
        return await self.user_sends(user_id, TEXT_EVENT, {"text": text}, name=name, secret=secret)

    async def user_sends(self, user_id: str, event: str, content: dict[str, Any] | None = None, *,
                         name: str = "Zalo user", secret: str | None = None) -> int | None:
        self.known.add(user_id)
        message = {"message_id": uuid.uuid4().hex[:16], "from": {"id": user_id, "display_name": name, "is_bot": False},
                   "chat": {"id": user_id, "chat_type": "PRIVATE"}, "date": int(time.time() * 1000),
                   **(content or {})}
        update = {"event_name": event, "message": message}
        if self.webhook_url is None:
            await self._updates.put(update)
            return None
        headers = {SECRET_HEADER: self.webhook_secret if secret is None else secret}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.webhook_url, json={"ok": True, "result": update},
                                    headers={k: v for k, v in headers.items() if v is not None}) as resp:
                return resp.status

    # ---------------------------------------------------------------- the API
    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        try:
            body: dict[str, Any] = await request.json() if request.can_read_body else {}
        except ValueError:
            return _error(400, "Bad Request: invalid JSON")
        method = request.match_info["method"]
        if method == "getMe":
            return _ok({"id": self.token.split(":")[0], "account_name": "bot.redreserve", "account_type": "BASIC",
                        "can_join_groups": False, "display_name": self.name})
        if method == "getUpdates":
            return await self._get_updates(request, body)
        if method == "setWebhook":
            url, secret = body.get("url"), body.get("secret_token")
            if not isinstance(url, str) or not isinstance(secret, str) or not 8 <= len(secret) <= 256:
                return _error(400, "Bad Request: url and secret_token (8-256 characters) are required")
            self.webhook_url, self.webhook_secret = url, secret
            return _ok({"url": url, "updated_at": int(time.time() * 1000)})
        if method == "deleteWebhook":
            self.webhook_url = self.webhook_secret = None
            return _ok({"url": "", "updated_at": int(time.time() * 1000)})
        if method == "getWebhookInfo":
            return _ok({"url": self.webhook_url or "", "updated_at": int(time.time() * 1000)})
        if method in ("sendMessage", "sendPhoto"):
            return await self._send(method, body)
        return _error(404, f"Not Found: method {method}")

    async def _get_updates(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        if self.webhook_url is not None:
            return _error(409, "Conflict: a webhook is set; getUpdates is not available")
        try:
            timeout = min(float(body.get("timeout") or 0), 60.0)
        except (TypeError, ValueError):
            return _error(400, "Bad Request: timeout")
        try:
            update = await asyncio.wait_for(self._updates.get(), timeout) if timeout else self._updates.get_nowait()
        except (asyncio.TimeoutError, asyncio.QueueEmpty):
            return _error(408, "Request timeout")
        if request.transport is None or request.transport.is_closing():
            # The poller went away while waiting (it stopped, or lost the leadership): the update is
            # kept for the next poll rather than lost with a dead request.
            self._updates.put_nowait(update)
            return _error(408, "Request timeout")
        return _ok(update)

    async def _send(self, method: str, body: dict[str, Any]) -> web.Response:
        if self._failures:
            f = self._failures[0]
            f.count -= 1
            if f.count <= 0:
                self._failures.pop(0)
            self.refused += 1
            return _error(f.code, f.description)
        if self.per_second is not None:
            now = time.monotonic()
            self._window = [t for t in self._window if now - t < 1.0]
            if len(self._window) >= self.per_second:
                self.refused += 1
                return _error(429, "Too Many Requests", retry_after=1)
            self._window.append(now)
        chat_id = body.get("chat_id")
        text, photo = body.get("text"), body.get("photo")
        if not isinstance(chat_id, str) or not chat_id:
            return _error(400, "Bad Request: chat_id is required")
        if method == "sendMessage" and (not isinstance(text, str) or not text.strip() or len(text) > 2000):
            return _error(400, "Bad Request: text must be 1 to 2000 characters")
        if method == "sendPhoto" and not isinstance(photo, str):
            return _error(400, "Bad Request: photo is required")
        if chat_id in self.blocked:
            self.refused += 1
            return _error(403, "Forbidden: the user has blocked the bot")
        if chat_id not in self.known:
            self.refused += 1
            return _error(400, "Bad Request: chat not found")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        msg = SimZaloMessage(uuid.uuid4().hex[:16], chat_id, text if method == "sendMessage" else body.get("caption"),
                             photo if method == "sendPhoto" else None, time.monotonic())
        self.sent.append(msg)
        return _ok({"message_id": msg.message_id, "date": int(time.time() * 1000)})


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str, *, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code if code != 408 else 200)


__all__ = ["SimZaloMessage", "TEXT_EVENT", "ZaloBotSimulator"]
