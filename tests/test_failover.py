"""Several ``redreserve run`` on one PostgreSQL (issue 14): one leader polls and runs the timers,
a follower takes over within seconds when the leader goes, and a wave due after that is sent once.

Two serve() instances in this process, each with its own engine, Bot and HTTP server, against one
Bot API simulator — and, for the SIGKILL, two ``redreserve run`` processes (bench/instance_process.py).
PostgreSQL only (the leader lock is an advisory lock; SQLite is one instance): without a server
the tests skip, saying so (tests/conftest.py postgres_url)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import text, update
from sqlmodel import select

from bench.instance_process import FOLLOWS, LEADS, start_instance
from bench.instances import FIRST_DONOR, seed_wave, wave_settings
from dispatcher.engine import Dispatcher
from ground.clock import system_clock
from models.dispatch_tables import BloodRequest, OutboxMessage, RequestContact, RequestWave
from models.engine import make_engine, make_sessionmaker
from models.leadership import LEADER_KEY
from redreserve.botapi_sim import BotAPISimulator
from tests.dispatch_helpers import LEAD_TG, STAFF_TG, contacts, post, request, town
from tests.test_service import PUBLIC, SECRET, TOKEN, Running, _settings


@pytest.fixture
async def sim():
    async with BotAPISimulator(token=TOKEN) as sim:
        yield sim


def instance(sim: BotAPISimulator, url: str, name: str, **cluster):
    return _settings(sim.base_url, url, cluster={"instance_id": name, "leader_retry_s": 0.2, **cluster})


async def role(bot: Running) -> dict:
    status, body = await bot.get("/healthz")
    assert status == 200, body
    return json.loads(body)


async def wait_role(bot: Running, want: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while (await role(bot))["role"] != want:
        assert loop.time() < until, f"no {want} within {timeout} s: {await role(bot)}"
        await asyncio.sleep(0.05)


async def wait_wave(sm, rid: int, wave_no: int, timeout: float = 15.0) -> RequestWave:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        async with sm() as s:
            wave = (await s.exec(select(RequestWave).where(RequestWave.request_id == rid,
                                                           RequestWave.wave_no == wave_no))).first()
        if wave is not None:
            return wave
        if loop.time() >= until:
            async with sm() as s:
                req = await s.get(BloodRequest, rid)
                states = Counter(c.state for c in (await s.exec(select(RequestContact))).all())
            raise AssertionError(f"wave {wave_no} not fired within {timeout} s: {req}, contacts {states}")
        await asyncio.sleep(0.05)


async def wait_outbox_sent(sm, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while True:
        async with sm() as s:
            states = Counter((await s.exec(select(OutboxMessage.state))).all())
        if set(states) <= {"sent"}:
            return
        assert loop.time() < until, f"outbox not drained within {timeout} s: {states}"
        await asyncio.sleep(0.05)


def polls(sim: BotAPISimulator, since: int = 0) -> list:
    return [c for c in sim.sent(method="getUpdates")[since:]]


def assert_one_poller(sim: BotAPISimulator) -> None:
    """Never two getUpdates at once (Telegram would answer the older one 409 Conflict)."""
    calls = sorted(polls(sim), key=lambda c: c.started_at)
    assert [c for c in calls if c.error_code == 409] == []
    for before, after in zip(calls, calls[1:]):
        assert after.started_at >= before.finished_at, f"two polls at once: {before} and {after}"


async def kill_leader_lock(url: str) -> int:
    """The leader's lock connection dies (as with a network cut): PostgreSQL frees the lock."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            killed = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' "
                "AND objid = :k AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                {"k": LEADER_KEY})).scalar()
            await conn.commit()
    finally:
        await engine.dispose()
    return int(killed or 0)


async def test_two_polling_instances_one_polls_the_other_follows_and_both_answer_nothing_twice(sim, pg):
    _, url = pg
    async with Running(instance(sim, url, "A")) as a:
        await wait_role(a, "leader")
        async with Running(instance(sim, url, "B")) as b:
            assert (await role(b))["role"] == "follower"
            assert "not polling: follower" in (await role(b))["updates"]
            for n in range(5):
                sim.push_message(600 + n, "/start", first_name=f"U{n}")
            for n in range(5):
                await sim.wait_for_call("sendMessage", chat_id=600 + n, timeout=15)
            await asyncio.sleep(1.0)  # several of the follower's retries: it must stay a follower
            assert (await role(a))["role"] == "leader" and (await role(b))["role"] == "follower"
    assert_one_poller(sim)
    replies = Counter(c.chat_id for c in sim.sent(method="sendMessage", ok=True))
    assert all(replies[600 + n] == 1 for n in range(5)), replies
    print(f"\n{len(polls(sim))} getUpdates, none at once, no 409")


async def test_a_stopped_leader_is_replaced_within_seconds_and_the_new_leader_polls(sim, pg):
    _, url = pg
    a = await Running(instance(sim, url, "A")).__aenter__()
    try:
        await wait_role(a, "leader")
        async with Running(instance(sim, url, "B")) as b:
            assert (await role(b))["role"] == "follower"
            loop = asyncio.get_running_loop()
            gone = loop.time()
            await a.__aexit__(None, None, None)  # the leader stops (SIGTERM): it frees the lock
            mark = len(polls(sim))
            await wait_role(b, "leader", timeout=10)
            took_over = loop.time() - gone
            sim.push_message(700, "/start", first_name="Lan")
            await sim.wait_for_call("sendMessage", chat_id=700, timeout=15)
    finally:
        if not a.task.done():
            await a.__aexit__(None, None, None)
    print(f"\ntakeover counted from the leader's stop signal: {took_over:.2f} s")
    assert took_over < 10
    assert polls(sim)[mark:]  # the new leader polls
    assert_one_poller(sim)


async def test_the_leader_losing_its_lock_stops_polling_and_timers_and_the_next_fires_a_due_wave_once(sim, pg):
    sm, url = pg
    hospital, donors = await town(sm, n=40)
    chats = {d: 7_000_000_000 + i for i, d in enumerate(donors)}
    for tg in [STAFF_TG, LEAD_TG, *chats.values()]:
        sim.start_chat(tg)
    # A quick rescan: the leader finds the wave due below in the database within a second.
    settings_a = instance(sim, url, "A", rescan_s=0.3)
    # Posted before the instances start (on the wall clock; critical: quiet hours don't hold it back).
    rid = await post(Dispatcher(sm, settings_a, clock=system_clock), hospital, urgency="critical")
    first_wave = {chats[c.donor_id] for c in await contacts(sm, rid)}
    assert 0 < len(first_wave) < len(donors)
    async with Running(settings_a) as a:
        await wait_role(a, "leader")
        async with Running(instance(sim, url, "B", rescan_s=0.3)) as b:
            await sim.wait_for(lambda: {c.chat_id for c in sim.sent(method="sendMessage", ok=True)} >= first_wave,
                               timeout=30, what="the first wave delivered")
            assert (await role(b))["role"] == "follower"
            # Recorded too: a call delivered but not yet marked notified would still be outstanding below.
            await wait_outbox_sent(sm)
            await asyncio.sleep(0.5)  # the leader's rescans (rescan_s) run before it loses the lock
            loop = asyncio.get_running_loop()
            cut = loop.time()
            assert await kill_leader_lock(url) == 1
            await wait_role(b, "leader", timeout=10)
            took_over = loop.time() - cut
            await wait_role(a, "follower", timeout=5)
            # Now the first wave's response window passes in silence: the next wave is due, after the
            # takeover; the new leader finds it in the database (its rescan) and fires it.
            due = system_clock()
            async with sm() as s:
                await s.exec(update(RequestContact).where(RequestContact.request_id == rid)
                             .values(notified_at=due - timedelta(minutes=11)))
                await s.exec(update(BloodRequest).where(BloodRequest.id == rid).values(next_wave_at=due))
                await s.commit()
            mark = len(polls(sim))
            wave = await wait_wave(sm, rid, 2)
            await asyncio.sleep(1.0)  # time for a second firing, were there one
            await wait_outbox_sent(sm)
            sim.push_message(701, "/start", first_name="Mai")  # the new leader polls
            await sim.wait_for_call("sendMessage", chat_id=701, timeout=15)
            assert polls(sim)[mark:]
    print(f"\ntakeover after the leader lost its lock: {took_over:.2f} s")
    assert took_over < 10  # its next try (0.2 s), then the old leader's check interval and timeout (3.2 s)
    print(f"wave 2 fired {(wave.fired_at - due).total_seconds():+.2f} s after it came due, asked {wave.asked}")
    assert wave.fired_at >= due and wave.asked > 0
    async with sm() as s:
        assert len((await s.exec(select(RequestWave).where(RequestWave.request_id == rid,
                                                           RequestWave.wave_no == 2))).all()) == 1
    assert (await request(sm, rid)).wave_no == 2  # fired once, on one instance
    calls = Counter(c.chat_id for c in sim.sent(method="sendMessage", ok=True) if c.chat_id in chats.values())
    assert calls and max(calls.values()) == 1, [c for c, n in calls.items() if n > 1]
    assert len(calls) == len(await contacts(sm, rid))
    assert_one_poller(sim)


@pytest.mark.slow
async def test_sigkill_of_the_leader_mid_wave_another_instance_completes_it_duplicates_at_most_those_in_flight(
        pg, tmp_path):
    """Two ``redreserve run`` processes; the leader is SIGKILLed a third or more into a 300-donor wave."""
    sm, url = pg
    donors = 300
    rate = 60  # twice Telegram's 30/s, to halve the wave's time; test_instances holds the instances to 30/s
    async with BotAPISimulator(token=TOKEN) as sim:
        await seed_wave(sm, sim, donors, wave_settings(donors, rate))
        sim.set_limits(global_per_second=rate, per_chat_per_second=1, group_per_minute=20)
        chats = set(range(FIRST_DONOR, FIRST_DONOR + donors))

        def calls() -> list:
            return [c for c in sim.sent(method="sendMessage", ok=True) if c.chat_id in chats]

        start = dict(api_base=sim.base_url, token=TOKEN, db_url=url, rate=rate, lease_s=2.0, retry_s=0.3)
        both = await asyncio.gather(*(start_instance(tmp_path, n, **start) for n in ("A", "B")))
        try:
            await asyncio.gather(*(i.wait_log("leadership: ", timeout=90) for i in both))
            await sim.wait_for(lambda: any(LEADS in i.text() for i in both), timeout=30, what="a leader")
            leader, other = both if LEADS in both[0].text() else both[::-1]
            await other.wait_log(FOLLOWS)
            await sim.wait_for(lambda: len(calls()) >= donors // 3, timeout=60, what="a third of the wave")
            leader.kill()
            killed = time.monotonic()
            await leader.proc.wait()
            before = len(calls())
            async with sm() as s:  # claimed by the leader, perhaps delivered, not recorded: what a kill can repeat
                in_flight = len((await s.exec(select(OutboxMessage).where(
                    OutboxMessage.state == "sending", OutboxMessage.claimed_by == leader.name))).all())
            took_over = await other.wait_log(LEADS, timeout=30) - killed
            await sim.wait_for(lambda: {c.chat_id for c in calls()} == chats, timeout=60, what="every donor called")
            finished = time.monotonic() - killed
        finally:
            results = [await i.stop() for i in both]
        assert results[both.index(other)] == 0, other.text()
        got = Counter(c.chat_id for c in calls())
        duplicates = sum(n - 1 for n in got.values())
        print(f"\nSIGKILL of the leader after {before} of {donors} calls: {in_flight} in flight, "
              f"{duplicates} duplicates; {other.name} led {took_over:.2f} s after the kill, the wave done "
              f"{finished:.2f} s after it; {sim.violations} limit violations")
    assert set(got) == chats  # every donor called
    assert duplicates <= in_flight
    # Limit violations are printed, not asserted: on a loaded 2-core machine at twice Telegram's rate
    # a late start made 1; tests/test_instances.py holds instances to 30/s with none.


async def test_in_webhook_mode_the_leader_sets_the_webhook_and_a_follower_handles_updates_posted_to_it(sim, pg):
    _, url = pg
    hook = {"mode": "webhook", "webhook_url": f"{PUBLIC}/tg/hook", "webhook_secret": SECRET}

    def webhook_instance(name: str):
        return _settings(sim.base_url, url, telegram=hook, cluster={"instance_id": name, "leader_retry_s": 0.2})

    async with Running(webhook_instance("A"), sim=sim) as a:  # the TLS proxy forwards to A
        await wait_role(a, "leader")
        async with Running(webhook_instance("B")) as b:
            assert (await role(b))["role"] == "follower"
            sim.push_message(601, "/start", first_name="Lan")
            await sim.wait_for_call("sendMessage", chat_id=601, timeout=15)
            update = {"update_id": 90_001, "message": {
                "message_id": 1, "date": 0, "chat": {"id": 602, "type": "private"}, "text": "/start",
                "from": {"id": 602, "is_bot": False, "first_name": "Mai"}}}
            async with aiohttp.ClientSession() as http:  # the proxy forwards this one to B
                async with http.post(f"http://127.0.0.1:{b.server.port}/tg/hook", json=update,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                    assert response.status == 200
            await sim.wait_for_call("sendMessage", chat_id=602, timeout=15)
        assert not sim.sent(method="deleteWebhook")  # a follower's stop leaves the leader's webhook
    assert len(sim.sent(method="setWebhook")) == 1 and len(sim.sent(method="deleteWebhook")) == 1


async def test_a_runtime_that_follows_has_no_timer_and_leading_again_rearms_them_from_the_database(
        sqlite_template, tmp_path):
    """The timers' half of the Runtime stops and starts with the leadership (SQLite is enough here)."""
    import shutil

    from bot.app import build_dispatcher

    shutil.copyfile(sqlite_template, tmp_path / "one.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    hospital, _ = await town(sm, n=6)
    runtime = build_dispatcher(_settings("http://127.0.0.1:1", url), sm,
                               lifecycle=False)["runtime"]
    rid = await post(runtime.engine, hospital, urgency="critical")
    try:
        await runtime.lead()
        armed = runtime.scheduler.job_ids()
        assert f"wave-{rid}" in armed and f"deadline-{rid}" in armed
        await runtime.follow()
        assert runtime.scheduler.job_ids() == [] and not runtime.scheduler.scheduler.running
        runtime.scheduler.arm(rid, system_clock() + timedelta(seconds=1))  # a follower's handler rang
        await runtime.follow()
        assert runtime.scheduler.job_ids() == []  # forgotten: the leader rescans the database
        await runtime.lead()
        assert runtime.scheduler.job_ids() == armed and runtime.scheduler.scheduler.running
    finally:
        await runtime.stop()
        await engine.dispose()
    assert not runtime.scheduler.scheduler.running
