"""The scheduler only wakes the dispatcher; the database decides what is due."""

import asyncio
import random

from sqlmodel import select

from dispatcher.engine import Dispatcher
from dispatcher.scheduling import Alarm, DispatchScheduler
from dispatcher.sender import RateLimiter, Sender
from models.dispatch_tables import BloodRequest, RequestWave
from redreserve.clock import system_clock
from tests.dispatch_helpers import STAFF_TG, FakeTelegram, settings, town


async def test_waves_fire_on_their_own_and_jobs_have_fixed_ids(db_sessionmaker):
    hid, _ = await town(db_sessionmaker, n=60, spread=0.4)
    st = settings(wave_interval_min={"critical": 0.01, "urgent": 20, "planned": 60},
                  response_window_min={"critical": 0.01, "urgent": 20, "planned": 60}, quiet_start="00:00",
                  quiet_end="00:00")
    d = Dispatcher(db_sessionmaker, st, clock=system_clock, rng=random.Random(1))
    sched = DispatchScheduler(d)
    await sched.start()
    try:
        rid = await d.create_request(hospital_id=hid, abo="O", rh="+", component="red_cells", units=3,
                                     urgency="critical", posted_by=STAFF_TG)
        assert sched.job_ids() == [f"deadline-{rid}", f"wave-{rid}"]
        for _ in range(60):
            await asyncio.sleep(0.1)
            async with db_sessionmaker() as s:
                if (await s.get(BloodRequest, rid)).wave_no >= 3:
                    break
        async with db_sessionmaker() as s:
            waves = (await s.exec(select(RequestWave.wave_no).where(RequestWave.request_id == rid))).all()
        assert len(waves) >= 3 and len(waves) == len(set(waves))  # no wave twice
    finally:
        await sched.stop()


# ------------------------------------------------------------------ issue 10: waves that never stall
# Short windows on the wall clock: a wave every 0.9 s, a call unanswered after 0.6 s.
FAST = dict(wave_interval_min={"critical": 0.015, "urgent": 20, "planned": 60},
            response_window_min={"critical": 0.01, "urgent": 20, "planned": 60},
            quiet_start="00:00", quiet_end="00:00")


class Process:
    """What bot.runtime assembles around the dispatcher, on the wall clock: one 'process' of the bot."""

    def __init__(self, sm, st, tg):
        self.d = Dispatcher(sm, st, clock=system_clock, rng=random.Random(1))
        self.sender = Sender(sm, tg, st.dispatch.send, clock=system_clock,
                             limiter=RateLimiter(10_000, 10_000, 10_000, 0), prepare={"board": self.d.board_params})
        self.sched = DispatchScheduler(self.d)
        self.d.kick = self.sender.kick

    async def start(self):
        await self.sender.start()
        await self.sched.start()
        return self

    async def stop(self):
        await self.sched.stop()
        await self.sender.stop()

    def kill(self):
        """kill -9: every task dies where it stands; only what was committed survives."""
        self.sched.scheduler.shutdown(wait=False)
        self.sched.alarm.cancel()
        self.sender._stop = True
        for task in [self.sender._task, *self.sender._tasks]:
            if task is not None:
                task.cancel()


async def _waves(sm, rid):
    async with sm() as s:
        return list((await s.exec(select(RequestWave.wave_no).where(RequestWave.request_id == rid)
                                  .order_by(RequestWave.wave_no))).all())


async def _until(predicate, timeout=30.0):
    """Wait for the system to get there (a bound on how long to wait, not a measured time)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await predicate():
        if loop.time() > end:
            raise AssertionError("never got there")
        await asyncio.sleep(0.05)


async def _silent_through_four_waves(sm, restart_after_wave=None):
    hid, _ = await town(sm, n=300, spread=0.6)
    st = settings(**FAST)
    tg = FakeTelegram()  # nobody ever answers
    p = await Process(sm, st, tg).start()
    try:
        rid = await p.d.create_request(hospital_id=hid, abo="O", rh="+", component="red_cells", units=1,
                                       urgency="critical", posted_by=STAFF_TG)
        if restart_after_wave is not None:
            await _until(lambda: _reached(sm, rid, restart_after_wave))
            await p.stop()
            p = await Process(sm, st, tg).start()  # a new process: only the database is left
        await _until(lambda: _reached(sm, rid, 4))
    finally:
        await p.stop()
    assert (await _waves(sm, rid))[:4] == [1, 2, 3, 4]  # each wave once, none skipped
    calls = [key for _, _, kind, key, _ in tg.sent if kind == "call"]
    assert len(calls) == len(set(calls))  # nobody called twice


async def _reached(sm, rid, n):
    return len(await _waves(sm, rid)) >= n


async def test_a_request_nobody_answers_goes_through_four_timed_waves(db_sessionmaker):
    """Issue 10: the tick re-armed its own job a few ms ahead while it ran; APScheduler dropped it (max_instances)."""
    await _silent_through_four_waves(db_sessionmaker)


async def test_four_timed_waves_with_a_restart_between_them(db_sessionmaker):
    await _silent_through_four_waves(db_sessionmaker, restart_after_wave=2)


async def test_the_alarm_never_loses_a_ring_made_while_it_runs():
    """A ring during a run makes the run go round once more; no two runs of one key at once."""
    runs, inside, gate = [], [], asyncio.Event()
    scheduled = []

    async def work(key):
        inside.append(key)
        assert inside.count(key) == 1
        runs.append(key)
        if len(runs) == 1:
            await gate.wait()
        inside.remove(key)
        return None

    alarm = Alarm(work, lambda k, when: scheduled.append((k, when)), "test")
    alarm.ring("a")
    await asyncio.sleep(0)
    alarm.ring("a")  # while the first run waits
    alarm.ring("a")  # coalesced with the one before
    gate.set()
    await alarm.wait_idle()
    assert runs == ["a", "a"] and scheduled == []
