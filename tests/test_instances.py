"""Several instances on one PostgreSQL (issue 14): the outbox is claimed, not grabbed, and the token's
budget is one. Measured before: two instances sent 65 of 300 calls twice, at twice Telegram's rate."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import select

from bench.instances import drain, measure, seed_wave, wave_settings
from dispatcher import messages as M
from dispatcher.outbox import enqueue
from dispatcher.sender import DeliveryResult, RateLimiter, Sender
from ground.clock import system_clock
from models.dispatch_tables import OutboxMessage
from models.engine import make_engine, make_sessionmaker
from redreserve.botapi_sim import BotAPISimulator
from tests.dispatch_helpers import FakeTelegram, settings



def unlimited() -> RateLimiter:
    return RateLimiter(10_000, 10_000, 10_000, 0)


async def add(sm, key: str, chat: int, *, state: str = "pending", claimed_by: str | None = None,
              lease_s: float | None = None) -> None:
    now = system_clock()
    async with sm() as s:
        await enqueue(s, key=key, chat_id=chat, params=M.Declined(request_id=1), now=now)
        await s.flush()
        row = (await s.exec(select(OutboxMessage).where(OutboxMessage.key == key))).one()
        row.state, row.claimed_by = state, claimed_by
        row.lease_until = None if lease_s is None else now + timedelta(seconds=lease_s)
        await s.commit()


async def rows(sm) -> dict[str, tuple[str, str | None]]:
    async with sm() as s:
        return {r.key: (r.state, r.claimed_by) for r in (await s.exec(select(OutboxMessage))).all()}


async def test_three_instances_drain_a_300_donor_wave_each_donor_called_once_within_the_limits(pg):
    sm, url = pg
    donors = 300
    cfg = wave_settings(donors, 30.0)
    async with BotAPISimulator() as sim:
        await seed_wave(sm, sim, donors, cfg)
        sim.set_limits(global_per_second=30, per_chat_per_second=1, group_per_minute=20)
        t0 = time.monotonic()
        senders, budgets = await drain(url, sim, 3, cfg)
        run = measure(sim, 3, donors, senders, budgets, time.monotonic() - t0)
        per_chat = Counter(c.chat_id for c in sim.sent(method="sendMessage", ok=True))
    print(f"\n3 instances, {donors} donors: {run.rate:.2f} msg/s aggregate, {run.violations} violations, "
          f"{run.duplicates} duplicates, budget reservation {run.reserve_ms:.2f} ms mean")
    assert run.donors_called == donors and run.duplicates == 0  # every donor called exactly once
    assert all(n == 1 for n in per_chat.values())  # nobody else (the staff's board) twice either
    assert run.violations == 0
    assert await rows(sm) and {st for st, _ in (await rows(sm)).values()} == {"sent"}
    assert {s.instance_id for s in senders} == {"instance-0", "instance-1", "instance-2"}


async def test_recover_of_one_instance_puts_back_its_own_dead_and_unclaimed_rows_never_a_live_ones(pg):
    sm, _ = pg
    await add(sm, "a_live", 1, state="sending", claimed_by="A", lease_s=30)
    await add(sm, "dead", 2, state="sending", claimed_by="D", lease_s=-1)
    await add(sm, "legacy", 3, state="sending")  # written before leases existed: no claimer
    await add(sm, "mine", 4, state="sending", claimed_by="B", lease_s=30)  # B's before it restarted
    b = Sender(sm, FakeTelegram(), settings().dispatch.send, limiter=unlimited(), instance_id="B")
    assert await b.recover() == 3
    assert await rows(sm) == {"a_live": ("sending", "A"), "dead": ("pending", None), "legacy": ("pending", None),
                              "mine": ("pending", None)}


async def test_an_expired_lease_is_taken_over_and_a_live_one_is_not_nor_its_chat(pg):
    sm, _ = pg
    await add(sm, "a_live", 1, state="sending", claimed_by="A", lease_s=30)
    await add(sm, "a_next", 1)  # the same chat as A's message in flight: waits for it
    await add(sm, "dead", 2, state="sending", claimed_by="D", lease_s=-1)
    await add(sm, "free", 3)
    tg = FakeTelegram()
    b = Sender(sm, tg, settings().dispatch.send, limiter=unlimited(), instance_id="B")
    await b.run_until_idle(timeout=10)  # no recover: a live instance finding a dead one's row
    assert sorted(key for *_, key, _ in tg.sent) == ["dead", "free"]
    assert b.takeovers == 1
    after = await rows(sm)
    assert after["a_live"] == ("sending", "A") and after["a_next"] == ("pending", None)
    assert after["dead"] == ("sent", "B")


class SlowTelegram:
    """Takes a while per message and notes any chat with two messages in flight at once."""

    def __init__(self, inflight: Counter, overlaps: list[int], sent: list[str]) -> None:
        self.inflight, self.overlaps, self.sent = inflight, overlaps, sent

    async def deliver(self, m) -> DeliveryResult:
        self.inflight[m.chat_id] += 1
        if self.inflight[m.chat_id] > 1:
            self.overlaps.append(m.chat_id)
        try:
            await asyncio.sleep(0.02)
            self.sent.append(m.key)
            return DeliveryResult(len(self.sent))
        finally:
            self.inflight[m.chat_id] -= 1


async def test_two_instances_claiming_at_once_never_send_one_chat_two_messages_at_a_time(pg):
    sm, url = pg
    for i in range(60):
        await add(sm, f"k{i}", 100 + i % 12)  # 12 chats, five messages each
    inflight: Counter = Counter()
    overlaps: list[int] = []
    sent: list[str] = []
    engines = [make_engine(url) for _ in range(2)]
    try:
        senders = [Sender(make_sessionmaker(e), SlowTelegram(inflight, overlaps, sent), settings().dispatch.send,
                          limiter=unlimited(), instance_id=f"I{n}") for n, e in enumerate(engines)]
        for _ in range(20):
            await asyncio.gather(*(s.run_until_idle(timeout=30) for s in senders))
            if len(sent) >= 60:
                break
    finally:
        for e in engines:
            await e.dispose()
    assert overlaps == []
    assert sorted(sent) == sorted(f"k{i}" for i in range(60))  # each once


async def test_on_sqlite_one_instance_puts_back_every_row_left_sending_whoever_claimed_it(sqlite_template, tmp_path):
    """SQLite has one instance (an OS file lock): a row left ``sending`` is a crash's, whatever it names."""
    shutil.copyfile(sqlite_template, tmp_path / "one.db")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    sm = make_sessionmaker(engine)
    await add(sm, "crashed", 1, state="sending", claimed_by="host-123", lease_s=30)
    await add(sm, "waiting", 2)
    tg = FakeTelegram()
    sender = Sender(sm, tg, settings().dispatch.send, limiter=unlimited(), instance_id="host-456")
    await sender.start()
    for _ in range(100):
        if {st for st, _ in (await rows(sm)).values()} == {"sent"}:
            break
        await asyncio.sleep(0.02)
    await sender.stop()
    assert sorted(key for *_, key, _ in tg.sent) == ["crashed", "waiting"]
    assert sender.takeovers == 0
    await engine.dispose()
