"""One user's updates one at a time across instances (bot.isolation): a PostgreSQL advisory lock
on the FSM key, each instance with its own engine. PostgreSQL only."""

from __future__ import annotations

import asyncio

from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import text

from bot.isolation import PostgresEventIsolation, advisory_key
from models.engine import make_engine


async def waiting_for_advisory_locks(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))).scalar() or 0)


async def test_one_users_update_waits_for_the_other_instance_and_another_user_does_not(postgres_url):
    a = PostgresEventIsolation.for_admission(postgres_url, 2)
    b = PostgresEventIsolation.for_admission(postgres_url, 2)
    watch = make_engine(postgres_url)
    lan = StorageKey(bot_id=1, chat_id=501, user_id=501)
    mai = StorageKey(bot_id=1, chat_id=502, user_id=502)
    order: list[str] = []

    async def handle(iso: PostgresEventIsolation, key: StorageKey, name: str, hold: asyncio.Event | None = None):
        async with iso.lock(key):
            order.append(f"{name} in")
            if hold is not None:
                await hold.wait()
            order.append(f"{name} out")

    try:
        release = asyncio.Event()
        first = asyncio.create_task(handle(a, lan, "A/Lan", release))
        while order != ["A/Lan in"]:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(handle(b, lan, "B/Lan"))
        while await waiting_for_advisory_locks(watch) < 1:  # B's update waits in PostgreSQL
            await asyncio.sleep(0.01)
        await handle(b, mai, "B/Mai")  # another user passes while Lan's first update is handled
        assert not second.done()
        release.set()
        await asyncio.gather(first, second)
        assert order == ["A/Lan in", "B/Mai in", "B/Mai out", "A/Lan out", "B/Lan in", "B/Lan out"]
        assert await waiting_for_advisory_locks(watch) == 0
    finally:
        for engine in (a.engine, b.engine, watch):
            await engine.dispose()


async def test_a_waiting_update_of_the_same_user_in_one_process_holds_no_connection(postgres_url):
    iso = PostgresEventIsolation.for_admission(postgres_url, 1)  # one lock connection in all
    lan = StorageKey(bot_id=1, chat_id=501, user_id=501)
    release = asyncio.Event()
    entered: list[int] = []

    async def handle(n: int) -> None:
        async with iso.lock(lan):
            entered.append(n)
            await release.wait()

    try:
        tasks = [asyncio.create_task(handle(n)) for n in range(5)]
        while not entered:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        assert iso.engine.pool.checkedout() == 1 and entered == [0]  # the other four wait in memory
        release.set()
        await asyncio.gather(*tasks)
        assert sorted(entered) == [0, 1, 2, 3, 4]
    finally:
        await iso.engine.dispose()


def test_the_lock_key_is_a_bigint_and_tells_users_chats_and_bots_apart():
    keys = {advisory_key(StorageKey(bot_id=b, chat_id=c, user_id=u)) for b in (1, 2) for c in (5, 6) for u in (5, 7)}
    assert len(keys) == 8 and all(-2**63 <= k < 2**63 for k in keys)
