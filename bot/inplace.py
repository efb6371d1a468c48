"""Editing the message a button was pressed on: the one place that knows Telegram's ways.

A press may come from a message Telegram no longer shows the bot (an
``InaccessibleMessage``, ``date == 0``: it has a chat and an id, but no text and no
``edit_*`` methods), and a second tap that changes nothing makes Telegram answer
400 "message is not modified". Handlers edit through these functions, so neither
leaves the person without an answer.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, MaybeInaccessibleMessage

log = logging.getLogger(__name__)


def not_modified(err: TelegramBadRequest) -> bool:
    """Telegram refuses an edit to identical content; for us that edit is done."""
    return "not modified" in str(err)


def _gone(err: TelegramBadRequest) -> bool:
    # Deleted, too old, or never ours to edit: Telegram's wordings for "it cannot be edited".
    text = str(err)
    return "not found" in text or "can't be edited" in text or "MESSAGE_ID_INVALID" in text


async def edit_text(message: MaybeInaccessibleMessage | None, text: str,
                    reply_markup: InlineKeyboardMarkup | None = None) -> None:
    """Show ``text`` (and ``reply_markup``) on ``message``; sent anew where it cannot be edited.

    Edits go by chat and message id, which an inaccessible message still has (Telegram
    may still let the bot edit it). When it does not, the person sees the new state in
    a new message rather than nothing.
    """
    if message is None:  # an inline-mode message: not used by this bot
        return
    try:
        await message.bot.edit_message_text(text=text, chat_id=message.chat.id, message_id=message.message_id,
                                            reply_markup=reply_markup)
    except TelegramBadRequest as err:
        if not_modified(err):
            return
        if not _gone(err):
            raise
        log.info("message %s in chat %s not edited (%s): sent anew", message.message_id, message.chat.id, err)
        await message.answer(text, reply_markup=reply_markup)


async def edit_markup(message: MaybeInaccessibleMessage | None,
                      reply_markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace (None: remove) the message's buttons; a message that cannot be edited keeps its own.

    Its old buttons then answer "no longer active" when pressed, as every handler re-checks.
    """
    if message is not None:
        await _set_markup(message.bot, message.chat.id, message.message_id, reply_markup)


async def remove_buttons(bot: Bot, chat_id: int, message_id: int) -> None:
    """The buttons of an earlier form, known by id: one already without them, or deleted, is fine."""
    await _set_markup(bot, chat_id, message_id, None)


async def _set_markup(bot: Bot, chat_id: int, message_id: int, reply_markup: InlineKeyboardMarkup | None) -> None:
    try:
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=reply_markup)
    except TelegramBadRequest as err:
        if not (not_modified(err) or _gone(err)):
            raise
        log.info("buttons of message %s in chat %s not edited: %s", message_id, chat_id, err)
