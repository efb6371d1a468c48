"""The dispatcher's Transport over an aiogram Bot: the only aiogram-aware piece of sending.

Maps aiogram's errors onto dispatcher.sender's: 429 → RetryAfter, 403 → Unreachable,
network and 5xx → TransientError, any other 400 → PermanentError. The wording and
keyboards come from ``render`` (supplied by the bot, which owns the catalogs).
"""

from __future__ import annotations

from typing import Any, Callable

from aiogram import Bot
from aiogram.types import BufferedInputFile
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot.monthly_report import MonthlyReportParts
from dispatcher import messages as M
from dispatcher.sender import (
    DeliveryResult,
    Outgoing,
    PermanentError,
    RetryAfter,
    TransientError,
    Unreachable,
)

Render = Callable[[Outgoing], tuple[str, Any]]  # -> (text, reply_markup or None)


class AiogramTransport:
    def __init__(self, bot: Bot, render: Render, *, reports: MonthlyReportParts | None = None):
        self.bot = bot
        self.render = render
        self.reports = reports

    async def deliver(self, message: Outgoing) -> DeliveryResult:
        text, markup = self.render(message)
        try:
            if isinstance(message.params, M.MonthlyReport) and self.reports is not None:
                return await self._report_part(message, message.params, self.reports)
            if message.edit_message_id is not None:
                try:
                    await self.bot.edit_message_text(text=text, chat_id=message.chat_id,
                                                     message_id=message.edit_message_id, reply_markup=markup)
                    return DeliveryResult(message.edit_message_id)
                except (TelegramBadRequest, TelegramNotFound) as exc:
                    if "not modified" in str(exc):  # DOMAIN.md §8: identical content is a 400, and done
                        return DeliveryResult(message.edit_message_id)
                    if "can't be edited" not in str(exc) and "not found" not in str(exc):
                        raise
                    if isinstance(message.params, M.BoardMoved):
                        return DeliveryResult(message.edit_message_id)  # an old board gone: nothing to say
                    # Too old or deleted: a stand-down must still reach the donor, so send it anew.
            if isinstance(message.params, M.Venue):
                p = message.params
                sent = await self.bot.send_venue(chat_id=message.chat_id, latitude=p.lat, longitude=p.lon,
                                                 title=p.hospital, address=p.address or text)
                return DeliveryResult(sent.message_id)
            sent = await self.bot.send_message(chat_id=message.chat_id, text=text, reply_markup=markup)
            return DeliveryResult(sent.message_id)
        except TelegramRetryAfter as exc:
            raise RetryAfter(exc.retry_after) from exc
        except TelegramForbiddenError as exc:
            raise Unreachable(str(exc)) from exc
        except TelegramNotFound as exc:  # chat not found: as good as unreachable
            raise Unreachable(str(exc)) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise TransientError(str(exc)) from exc
        except TelegramBadRequest as exc:
            raise PermanentError(str(exc)) from exc

    async def _report_part(self, message: Outgoing, p: M.MonthlyReport, reports: MonthlyReportParts) -> DeliveryResult:
        part = await reports.part(p, message.chat_id, message.locale)
        if part.kind == "photo":
            sent = await self.bot.send_photo(chat_id=message.chat_id, caption=part.text,
                                             photo=BufferedInputFile(part.data, filename=part.filename))
        elif part.kind == "document":
            sent = await self.bot.send_document(chat_id=message.chat_id, caption=part.text,
                                                document=BufferedInputFile(part.data, filename=part.filename))
        else:
            sent = await self.bot.send_message(chat_id=message.chat_id, text=part.text)
        return DeliveryResult(sent.message_id)
