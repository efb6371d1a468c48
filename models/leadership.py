"""Who leads several instances on one PostgreSQL: a session-level advisory lock (issue 14).

The lock lives on one connection checked out for the life of the role, not on the
handlers' sessions: PostgreSQL frees it the moment that connection closes, so a
killed leader's lock passes to a follower without any lease to wait out.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# One constant key for the whole deployment: every instance of one database competes for it.
LEADER_KEY = 0x52_52_4C_44  # "RRLD"


class LeaderLock:
    """One instance's claim to the leadership; on SQLite (one instance by file lock) always held."""

    def __init__(self, engine: AsyncEngine, *, key: int = LEADER_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None
        self._always = engine.dialect.name != "postgresql"

    @property
    def held(self) -> bool:
        return self._always or self._conn is not None

    async def try_acquire(self) -> bool:
        """Take the lock if free; never waits, so a follower can retry on its own schedule."""
        if self.held:
            return True
        conn = await self.engine.connect()
        try:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar()
            await conn.commit()  # the lock is session-level; no transaction should stay open on it
        except BaseException:
            await conn.close()
            raise
        if got:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def alive(self, timeout: float | None = None) -> bool:
        """Whether the lock connection still answers (within ``timeout`` s); False means we may no
        longer be leader. A network cut can leave a query hanging for minutes while PostgreSQL,
        its side of the connection gone, has already given the lock to another instance."""
        if self._always:
            return True
        if self._conn is None:
            return False
        try:
            await asyncio.wait_for(self._check(self._conn), timeout)
            return True
        except Exception as exc:  # a lost connection lost the lock with it; an unanswered one may have
            log.warning("leadership: lock connection lost (%s)", str(exc) or type(exc).__name__)
            await self._drop()
            return False

    @staticmethod
    async def _check(conn: AsyncConnection) -> None:
        await conn.execute(text("SELECT 1"))
        await conn.commit()

    async def release(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            await self._conn.commit()
        except Exception:  # closing the connection frees it anyway
            pass
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()  # never hand a broken or lock-holding connection back to the pool
            except Exception:
                pass
            try:
                await conn.close()
            except Exception:
                pass
