"""One user's updates one at a time across instances (issue 14, webhook mode on PostgreSQL).

In one process aiogram's SimpleEventIsolation queues a user's updates on an asyncio lock. With
several instances behind one webhook address, two taps of one user may reach two processes:
:class:`PostgresEventIsolation` adds a PostgreSQL transaction advisory lock keyed on the update's
FSM key (bot, chat, user, thread, destiny), held while the update is handled.

The pool: the in-process lock is taken first, so updates of one user waiting in this process
hold no connection; and aiogram takes the isolation inside ``feed_update``, that is inside the
AdmittingDispatcher's admission (bot.app), so only admitted updates reach it. The lock's
connection comes from an engine of its own sized to that admission: an admitted update always
finds one at once, and the handlers' pool (sized by ``[database] reserved_connections``) is
untouched — no update can hold a handler connection while waiting for a lock connection, or the
reverse. PostgreSQL must allow that many more connections per instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from models.engine import make_engine


def advisory_key(key: StorageKey) -> int:
    """A signed 64-bit lock key for the FSM key (pg_advisory_xact_lock takes a bigint)."""
    raw = f"{key.bot_id}:{key.chat_id}:{key.user_id}:{key.thread_id}:{key.business_connection_id}:{key.destiny}"
    return int.from_bytes(hashlib.blake2b(raw.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresEventIsolation(BaseEventIsolation):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine  # its own pool (see the module's docstring)
        self._local = SimpleEventIsolation()

    @classmethod
    def for_admission(cls, url: str, admitted: int | None) -> "PostgresEventIsolation":
        """A lock connection per admitted update; unbounded admission: SQLAlchemy's default pool."""
        if admitted is None:
            return cls(make_engine(url))
        return cls(make_engine(url, pool_size=admitted, max_overflow=0))

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        async with self._local.lock(key):  # this process's updates of the user wait here, without a connection
            async with self.engine.connect() as conn:
                # Transaction-scoped: the rollback below (or the connection's loss) frees it.
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key(key)})
                try:
                    yield
                finally:
                    await conn.rollback()

    async def close(self) -> None:
        # aiogram calls this at every dispatcher shutdown (each stop of polling); the engine is the
        # service's to dispose (bot.service), once, at the end of the run.
        await self._local.close()
