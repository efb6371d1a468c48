"""aiogram FSM storage on the project's own database."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy.ext.asyncio import async_sessionmaker

from models.bot_state import FsmRecord
from models.tables import utcnow


class SqlStorage(BaseStorage):
    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self._sessionmaker = sessionmaker
        self._keys = DefaultKeyBuilder(with_destiny=True)

    async def _record(self, session, key: StorageKey) -> FsmRecord:
        k = self._keys.build(key)
        record = await session.get(FsmRecord, k)
        if record is None:
            record = FsmRecord(key=k)
            session.add(record)
        return record

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._sessionmaker() as session:
            record = await self._record(session, key)
            record.state = value
            record.updated_at = utcnow()
            await session.commit()

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._sessionmaker() as session:
            record = await session.get(FsmRecord, self._keys.build(key))
            return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._sessionmaker() as session:
            record = await self._record(session, key)
            record.data = json.dumps(dict(data), ensure_ascii=False, default=str)
            record.updated_at = utcnow()
            await session.commit()

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._sessionmaker() as session:
            record = await session.get(FsmRecord, self._keys.build(key))
            return json.loads(record.data) if record else {}

    async def close(self) -> None:
        pass
