"""Handler replies keep to Telegram's limits too, through the sender's own limiter.

The outbox sender paces the dispatcher's bulk messages; a handler answering a tap
sends directly. Both take their turn from one SendBudget (in process, or shared by the
instances through PostgreSQL: dispatcher.send_budget), so together they stay within 30/s
overall and 1/s per chat (DOMAIN.md §8), and a 429 pauses both. A reply
goes ahead of the outbox's messages to the same chat: the person is looking at it.
"""

from __future__ import annotations

import asyncio

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from dispatcher.send_budget import SendBudget

# Methods that put a message in a chat (an edit counts as a send, DOMAIN.md §8).
SENDING = frozenset({
    "sendMessage", "editMessageText", "editMessageReplyMarkup", "sendDocument", "sendVenue", "sendLocation",
    "sendContact", "sendPhoto",
})
MAX_WAIT_S = 10.0  # a handler waits out a short 429 once; a longer one is an error worth seeing


class LimitMiddleware(BaseRequestMiddleware):
    def __init__(self, limiter: SendBudget) -> None:
        self.limiter = limiter

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if method.__api_method__ not in SENDING or not isinstance(chat_id, int):
            return await make_request(bot, method)
        for attempt in range(2):
            slot = await self.limiter.acquire(chat_id, first=True)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                self.limiter.pause(exc.retry_after)
                if attempt or exc.retry_after > MAX_WAIT_S:
                    raise
                await asyncio.sleep(exc.retry_after)
            finally:
                self.limiter.release(slot)
        raise AssertionError("unreachable")  # pragma: no cover
