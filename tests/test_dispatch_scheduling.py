"""The scheduler only wakes the dispatcher; the database decides what is due."""

import asyncio
import random

from sqlmodel import select

from dispatcher.engine import Dispatcher
from dispatcher.scheduling import DispatchScheduler
from models.dispatch_tables import BloodRequest, RequestWave
from redreserve.clock import system_clock
from tests.dispatch_helpers import STAFF_TG, settings, town


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
