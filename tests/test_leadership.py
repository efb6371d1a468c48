"""Leader election by advisory lock: one holder at a time, passed on when the holder's connection dies."""

import asyncio

from models.engine import make_engine
from models.leadership import LeaderLock


def test_one_leader_and_takeover_on_postgres(postgres_url):
    async def run():
        a_engine, b_engine = make_engine(postgres_url), make_engine(postgres_url)
        a, b = LeaderLock(a_engine, key=4242), LeaderLock(b_engine, key=4242)
        try:
            assert await a.try_acquire()
            assert not await b.try_acquire()
            assert await a.alive()
            await a_engine.dispose()  # the leader's process dies: its connections close
            await a._conn.invalidate() if a._conn is not None else None
            loop = asyncio.get_running_loop()
            started = loop.time()
            while not await b.try_acquire():
                assert loop.time() - started < 5, "follower did not take over within 5 s"
                await asyncio.sleep(0.1)
            print(f"failover {loop.time() - started:.3f} s")
            assert await b.alive()
            await b.release()
            assert not b.held
        finally:
            await a_engine.dispose()
            await b_engine.dispose()

    asyncio.run(run())


def test_sqlite_is_always_leader(tmp_path):
    async def run():
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
        lock = LeaderLock(engine)
        assert lock.held and await lock.try_acquire() and await lock.alive()
        await engine.dispose()

    asyncio.run(run())


def test_leader_notices_lost_connection(postgres_url):
    async def run():
        engine, admin = make_engine(postgres_url), make_engine(postgres_url)
        lock = LeaderLock(engine, key=4243)
        try:
            assert await lock.try_acquire()
            async with admin.connect() as conn:  # the server drops the leader's connection
                from sqlalchemy import text
                await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                                        "WHERE locktype = 'advisory' AND objid = 4243"))
                await conn.commit()
            assert not await lock.alive()
            assert not lock.held
            assert await lock.try_acquire()  # the lock went with the connection: free again
        finally:
            await lock.release()
            await engine.dispose()
            await admin.dispose()

    asyncio.run(run())
