"""The last line: an update whose handler failed is logged whole and its sender still answered.

Each failure found is fixed where it belongs (bot/inplace.py, ground/parsing.py,
bot/commands.py); this only makes sure a bug not yet found leaves nobody in silence
(UX.md: every press answered, never silence).
"""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

from bot.routing import RouterTemplate

log = logging.getLogger(__name__)
router = RouterTemplate("errors")


@router.errors()
async def something_went_wrong(event: ErrorEvent) -> bool:
    update = event.update
    log.error("update %s failed: %r; update: %s", update.update_id, event.exception,
              update.model_dump_json(exclude_none=True), exc_info=event.exception)
    text = _("Sorry, something went wrong on my side. Please try again.")
    query, message = update.callback_query, update.message
    try:
        if query is not None:
            try:
                await query.answer(text, show_alert=True)
                return True
            except TelegramAPIError:  # answered before the failure: Telegram takes one answer per press
                message = query.message
        if message is not None:
            await message.answer(text)
    except TelegramAPIError as err:
        log.warning("could not tell the sender of update %s: %s", update.update_id, err)
    return True
