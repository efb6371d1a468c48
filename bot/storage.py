"""aiogram FSM storage on the project's own database, in the update's own session.

During an update the storage works in the session the update was given
(bot.middlewares.DbSessionMiddleware binds it with ``SqlStorage.bound``): one update holds
at most one pooled connection. With a session of its own for every state read and write,
an update held the handler's connection while it waited for the storage's, and sixteen
updates at once took the whole pool (5 + 10) and waited 30 s for each other (issue 10).
Outside an update (aiogram's own state read before the middlewares run, tools) it opens a
short session per call. It never leaves a transaction of its own open: no connection is
held while the handler goes on to await something else (Telegram, the dispatcher).

A state write commits, as it always did, and that commits whatever the handler had
written in the same session so far: handlers here commit their own writes before
moving the conversation on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.bot_state import FsmRecord
from models.tables import utcnow

T = TypeVar("T")


class SqlStorage(BaseStorage):
    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self._sessionmaker = sessionmaker
        self._keys = DefaultKeyBuilder(with_destiny=True)
        self._update_session: ContextVar[AsyncSession | None] = ContextVar("fsm_update_session", default=None)

    @asynccontextmanager
    async def bound(self, session: AsyncSession) -> AsyncIterator[None]:
        """Within this block (one update's handling), state is read and written in ``session``."""
        token = self._update_session.set(session)
        try:
            yield
        finally:
            self._update_session.reset(token)

    async def _run(self, op: Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T:
        shared = self._update_session.get()
        if shared is None:
            async with self._sessionmaker() as session:
                result = await op(session)
                if write:
                    await session.commit()
                return result
        began_here = not shared.in_transaction()
        result = await op(shared)
        if write or (began_here and not (shared.new or shared.dirty or shared.deleted)):
            await shared.commit()  # a read that began the transaction ends it: the connection goes back
        return result

    async def _record(self, session: AsyncSession, key: StorageKey) -> FsmRecord:
        k = self._keys.build(key)
        record = await session.get(FsmRecord, k)
        if record is None:
            record = FsmRecord(key=k)
            session.add(record)
        return record

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state

        async def op(session: AsyncSession) -> None:
            record = await self._record(session, key)
            record.state = value
            record.updated_at = utcnow()

        await self._run(op, write=True)

    async def get_state(self, key: StorageKey) -> str | None:
        async def op(session: AsyncSession) -> str | None:
            record = await session.get(FsmRecord, self._keys.build(key))
            return record.state if record else None

        return await self._run(op, write=False)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async def op(session: AsyncSession) -> None:
            record = await self._record(session, key)
            record.data = json.dumps(dict(data), ensure_ascii=False, default=str)
            record.updated_at = utcnow()

        await self._run(op, write=True)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async def op(session: AsyncSession) -> dict[str, Any]:
            record = await session.get(FsmRecord, self._keys.build(key))
            return json.loads(record.data) if record else {}

        return await self._run(op, write=False)

    async def close(self) -> None:
        pass
