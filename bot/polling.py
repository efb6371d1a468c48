"""Long polling that one unreadable update cannot stop (issue 10).

aiogram parses a whole getUpdates batch at once: one update it cannot read (a field
newer than the library, a malformed object) fails the batch, the offset never moves,
and polling retries the same batch forever — nobody is answered again. This request
middleware reads such a batch update by update instead, logs and skips the ones that
cannot be read, and moves the offset past them on the next call.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import ClientDecodeError
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Update
from pydantic import ValidationError

log = logging.getLogger(__name__)


class SkipUnreadableUpdates(BaseRequestMiddleware):
    def __init__(self) -> None:
        self._offset = 0  # past every update skipped so far

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> TelegramType:
        if not isinstance(method, GetUpdates):
            return await make_request(bot, method)
        if self._offset and (method.offset or 0) < self._offset:
            method.offset = self._offset  # aiogram moves the offset only past updates it yielded
        try:
            return await make_request(bot, method)
        except ClientDecodeError as exc:
            data = exc.data
            if not (isinstance(data, dict) and data.get("ok") and isinstance(data.get("result"), list)):
                raise
            return self._readable(bot, data["result"])  # type: ignore[return-value]

    def _readable(self, bot: Bot, raw_updates: list) -> list[Update]:
        updates = []
        for raw in raw_updates:
            try:
                updates.append(Update.model_validate(raw, context={"bot": bot}))
            except ValidationError as exc:
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                log.error("skipping update %s: aiogram cannot read it (%s); raw: %.500r",
                          update_id, exc.errors(include_url=False)[:3], raw)
                if isinstance(update_id, int):
                    self._offset = max(self._offset, update_id + 1)
        return updates
