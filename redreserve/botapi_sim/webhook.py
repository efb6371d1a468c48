"""Webhook delivery: once ``setWebhook`` is called, updates are POSTed to the bot instead of polled.

Telegram semantics reproduced here:

* ``setWebhook`` takes ``url``, ``secret_token`` (sent back in the
  ``X-Telegram-Bot-Api-Secret-Token`` header of every post) and ``allowed_updates``;
  ``deleteWebhook`` stops the posts, and updates then wait for ``getUpdates`` again.
* While a webhook is set, ``getUpdates`` is refused with 409 Conflict.
* Updates are posted one at a time, in ``update_id`` order; a post answered with
  anything but 2xx (or not answered) is retried, and ``getWebhookInfo`` reports the
  last error, as Telegram's does.

Telegram only posts to https URLs; a deployment puts a TLS proxy in front of the
bot's plain-HTTP server. :attr:`WebhookDelivery.routes` plays that proxy: it maps a
public URL prefix to the local address the bot listens on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from .updates import UpdateQueue

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class WebhookPost:
    update_id: int
    status: int | None  # None: no answer (connection refused, timeout)
    error: str = ""


class WebhookDelivery:
    def __init__(self, queue: UpdateQueue, *, retry_after_s: float = 0.2, timeout_s: float = 10.0) -> None:
        self.queue = queue
        self.url = ""
        self.secret_token: str | None = None
        self.routes: dict[str, str] = {}
        self.retry_after_s = retry_after_s
        self.timeout_s = timeout_s
        self.posts: list[WebhookPost] = []
        self.last_error: tuple[int, str] | None = None  # (unix time, message) for getWebhookInfo
        self.posting = False
        self._task: asyncio.Task | None = None

    @property
    def active(self) -> bool:
        return bool(self.url)

    def set(self, url: str, secret_token: str | None, allowed_updates: list[str] | None) -> None:
        self.url = url
        self.secret_token = secret_token
        if allowed_updates is not None:
            self.queue.allowed_updates = allowed_updates
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._deliver(), name="sim-webhook")

    async def delete(self) -> None:
        self.url = ""
        self.secret_token = None
        await self._cancel()

    async def _cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def close(self) -> None:
        await self._cancel()

    def target(self, url: str) -> str:
        for public, local in self.routes.items():
            if url.startswith(public):
                return local.rstrip("/") + url[len(public):]
        return url

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.url, "has_custom_certificate": False,
                                "pending_update_count": len(self.queue.pending)}
        if self.last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.last_error
        if self.queue.allowed_updates is not None and self.url:
            info["allowed_updates"] = list(self.queue.allowed_updates)
        return info

    async def _deliver(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as http:
            while self.url:
                batch = self.queue.take(1)
                if not batch:
                    if self.queue.closed:
                        return
                    await self.queue.pulse.wait(1.0)
                    continue
                update = batch[0]
                ok = await self._post(http, update)
                if ok:
                    self.queue.confirm(update["update_id"] + 1)
                else:
                    self.queue.undeliver(update["update_id"])
                    await asyncio.sleep(self.retry_after_s)
                self.queue.pulse.notify()

    async def _post(self, http: aiohttp.ClientSession, update: dict[str, Any]) -> bool:
        headers = {SECRET_HEADER: self.secret_token} if self.secret_token else {}
        self.posting = True
        try:
            async with http.post(self.target(self.url), json=update, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self.posts.append(WebhookPost(update["update_id"], None, str(exc) or type(exc).__name__))
            self.last_error = (int(time.time()), f"Connection failed: {exc}")
            return False
        finally:
            self.posting = False
        self.posts.append(WebhookPost(update["update_id"], status))
        if 200 <= status < 300:
            return True
        self.last_error = (int(time.time()), f"Wrong response from the webhook: {status}")
        return False
