"""Per-update plumbing: log context and in-flight count, de-duplication, one DB session, who is writing, their language."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, Update, User
from aiogram.utils.i18n import I18nMiddleware
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.storage import SqlStorage
from models.bot_state import ProcessedUpdate
from models.directory import roles_of
from models.tables import TelegramUser
from ground.logs import log_context

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
log = logging.getLogger(__name__)


class UpdatesInFlight(BaseMiddleware):
    """The outermost middleware: every line logged while an update is handled carries its id, and a
    stop waits (:meth:`drain`) for the updates being handled, so that none is cut off half-written."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        self._count += 1
        self._idle.clear()
        try:
            with log_context(update_id=event.update_id if isinstance(event, Update) else None):
                return await handler(event, data)
        finally:
            self._count -= 1
            if not self._count:
                self._idle.set()

    async def drain(self, timeout: float = 30.0) -> None:
        if self._count:
            log.info("stopping: waiting for %d update(s) being handled", self._count)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("stopping: %d update(s) still being handled after %.0f s", self._count, timeout)


class DedupMiddleware(BaseMiddleware):
    """Skip an update_id already handled: Telegram may deliver an update twice (DOMAIN.md §8).

    The id is committed before handling, in its own short transaction, so that two
    copies arriving together cannot both pass.
    """

    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self._sessionmaker = sessionmaker

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update):
            async with self._sessionmaker() as session:
                session.add(ProcessedUpdate(update_id=event.update_id))
                try:
                    await session.commit()
                except IntegrityError:
                    return None
        return await handler(event, data)


class DbSessionMiddleware(BaseMiddleware):
    """One session per update, shared by the middlewares below, the handler and the FSM storage.

    An update holds at most one pooled connection, so no number of updates at once can
    leave each of them holding one while waiting for another (issue 10: 16 did, with a
    pool of 5 + 10). The dispatcher's own transactions take their connections one at a
    time, under its lock.
    """

    def __init__(self, sessionmaker: async_sessionmaker, storage: SqlStorage) -> None:
        self._sessionmaker = sessionmaker
        self._storage = storage

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self._sessionmaker() as session, self._storage.bound(session):
            data["session"] = session
            return await handler(event, data)


class UserMiddleware(BaseMiddleware):
    """Record that this person has written to the bot (so it may write back) and load their roles.

    ``tg_user`` is None for someone who has only ever written in a group."""

    def __init__(self, admins: set[int]) -> None:
        self._admins = admins

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or user.is_bot:
            return await handler(event, data)
        session = data["session"]
        tg_user = await session.get(TelegramUser, user.id)
        chat: Chat | None = data.get("event_chat")
        # Writing in a group neither lets the bot write to that person privately nor unblocks it
        # (DOMAIN.md §8): a TelegramUser row means "has started the bot", so groups make none.
        private = chat is None or chat.type == "private"
        if private and tg_user is None:
            tg_user = TelegramUser(telegram_id=user.id, first_name=user.first_name or "", username=user.username)
            session.add(tg_user)
            await session.commit()
        elif private and (tg_user.blocked_at is not None or tg_user.first_name != (user.first_name or "")):
            tg_user.blocked_at = None  # writing to the bot unblocks it
            tg_user.first_name = user.first_name or ""
            tg_user.username = user.username
            await session.commit()
        data["tg_user"] = tg_user
        data["roles"] = await roles_of(session, user.id)
        data["is_admin"] = user.id in self._admins
        # End the read: the handler starts holding no connection (it may first await Telegram or the dispatcher).
        await session.commit()
        return await handler(event, data)


class UserLocaleMiddleware(I18nMiddleware):
    """The user's chosen language; before they choose, the configured default (Vietnamese)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        tg_user: TelegramUser | None = data.get("tg_user")
        if tg_user is not None and tg_user.locale in self.i18n.available_locales:
            return tg_user.locale
        # Before they choose: English for an English Telegram app, else Vietnamese (the default).
        user: User | None = data.get("event_from_user")
        if user is not None and (user.language_code or "").startswith("en"):
            return "en"
        return self.i18n.default_locale
