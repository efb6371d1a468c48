"""The one outbound path against the Bot API simulator with Telegram's limits switched on.

    .venv/bin/python bench/send.py                    # a 300-donor wave, then a 30-donor first wave
    .venv/bin/python bench/send.py --donors 60 --first-wave 10

Part 1: a rare-type request asks every eligible donor at once (300 calls): prints when
the first and the 30th call were delivered after posting, the send rate as a share of the configured global limit, the simulator's count of limit
violations (429s it had to answer) and messages lost. Part 2: an ordinary request whose
first wave is 30 donors: time from posting to the first and to the last call delivered.
Targets: ≥ 97 % of the limit, zero violations, none lost, 30-donor wave out within 1.2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.transport import AiogramTransport  # noqa: E402
from dispatcher.engine import Dispatcher  # noqa: E402
from dispatcher.messages import render_plain  # noqa: E402
from dispatcher.sender import Sender, replace_unreachable  # noqa: E402
from dispatcher.wakeups import Wakeups  # noqa: E402
from models.engine import create_schema, make_engine, make_sessionmaker  # noqa: E402
from models.geo import geo_cell  # noqa: E402
from models.tables import Donor, Hospital, HospitalStaff, TelegramUser  # noqa: E402
from redreserve.botapi_sim import BotAPISimulator  # noqa: E402
from ground.clock import system_clock  # noqa: E402
from ground.config import DispatchConfig, Settings  # noqa: E402

HOSP = (10.7578, 106.6594)
STAFF = 900_000_001


async def setup(sm, sim, n: int, rh: str, first_id: int, name: str) -> int:
    rng = random.Random(first_id)
    async with sm() as s:
        h = Hospital(name=name, lat=HOSP[0], lon=HOSP[1])
        s.add(h)
        if not await s.get(TelegramUser, STAFF):
            s.add(TelegramUser(telegram_id=STAFF))
            sim.push_message(STAFF, "/start")
        await s.flush()
        s.add(HospitalStaff(hospital_id=h.id, telegram_id=STAFF))
        for i in range(n):
            tg = first_id + i
            lat, lon = HOSP[0] + rng.uniform(-0.08, 0.08), HOSP[1] + rng.uniform(-0.08, 0.08)
            s.add(Donor(full_name=f"Donor {tg}", phone=f"+84{tg}", telegram_id=tg, abo="O", rh=rh,
                        lat=lat, lon=lon, geo_cell=geo_cell(lat, lon), consent_contact_at=system_clock()))
            s.add(TelegramUser(telegram_id=tg))
            sim.push_message(tg, "/start")  # a bot can only message users who started it (DOMAIN.md §8)
        await s.commit()
        return h.id


def calls_to(sim, chats: set[int]):
    return [c for c in sim.sent(method="sendMessage", ok=True) if c.chat_id in chats]


async def wait_for(pred, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        await asyncio.sleep(0.01)


async def main(donors: int, first_wave: int, rate: float) -> None:
    tmp = tempfile.mkdtemp()
    engine = make_engine(f"sqlite+aiosqlite:///{tmp}/send.db")
    await create_schema(engine)
    sm = make_sessionmaker(engine)
    cfg = DispatchConfig(rare_max_wave=max(donors, 1), min_wave=first_wave, max_wave=max(first_wave, 50),
                         quiet_start="00:00", quiet_end="00:00",
                         send={"global_per_second": rate, "per_chat_per_second": 1, "group_per_minute": 20})
    settings = Settings(dispatch=cfg)
    async with BotAPISimulator() as sim:
        sim.set_limits(global_per_second=int(rate), per_chat_per_second=1, group_per_minute=20)
        bot = sim.create_bot()
        transport = AiogramTransport(bot, lambda m: (render_plain(m.kind, m.params), None))
        wakeups = Wakeups()
        d = Dispatcher(sm, settings, clock=system_clock, wakeups=wakeups)
        sender = Sender(sm, transport, cfg.send, on_unreachable=replace_unreachable(d))
        wakeups.on_outbox_written(sender.kick)
        await sender.start()
        try:
            # Part 1: the rare-type wave, everyone at once.
            hid = await setup(sm, sim, donors, "-", 100_000_000, "Chợ Rẫy")
            chats = set(range(100_000_000, 100_000_000 + donors))
            t0, cpu0 = time.monotonic(), time.process_time()
            await d.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=2,
                                   urgency="critical", posted_by=STAFF)
            t_written, cpu_written = time.monotonic() - t0, time.process_time() - cpu0
            await wait_for(lambda: len(calls_to(sim, chats)) >= donors, timeout=donors / rate * 3 + 10)
            got = calls_to(sim, chats)
            times = sorted(c.finished_at for c in got)
            print(f"{donors}-donor wave: decided and written in {t_written * 1000:.0f} ms "
                  f"({cpu_written * 1000:.0f} ms of this process's CPU); first call delivered "
                  f"{times[0] - t0:.2f} s after posting, 30th {times[min(29, len(times) - 1)] - t0:.2f} s")
            span = times[-1] - times[0] if len(times) > 1 else float("nan")
            achieved = (len(times) - 1) / span if span else float("nan")
            lost = donors - len({c.chat_id for c in got})
            print(f"{donors}-donor wave: {len(got)} calls, first to last {span:.2f} s; "
                  f"{achieved:.2f} msg/s = {achieved / rate:.1%} of the {rate:g}/s limit; "
                  f"violations (429 from the simulator): {sim.violations}; lost: {lost}; "
                  f"duplicates: {len(got) - len({c.chat_id for c in got})}")
            await asyncio.sleep(1.1)  # let the windows empty

            # Part 2: an ordinary request, first wave of ``first_wave``.
            hid2 = await setup(sm, sim, first_wave * 3, "+", 200_000_000, "Bệnh viện 115")
            chats2 = set(range(200_000_000, 200_000_000 + first_wave * 3))
            t0, cpu0 = time.monotonic(), time.process_time()
            rid = await d.create_request(hospital_id=hid2, abo="O", rh="+", component="red_cells", units=1,
                                         urgency="critical", posted_by=STAFF)
            t_created, cpu_created = time.monotonic() - t0, time.process_time() - cpu0
            async with sm() as s:
                from sqlmodel import func, select

                from models.dispatch_tables import RequestContact
                asked = (await s.exec(select(func.count()).select_from(RequestContact)
                                      .where(RequestContact.request_id == rid))).one()
            await wait_for(lambda: len(calls_to(sim, chats2)) >= asked, timeout=30)
            got2 = calls_to(sim, chats2)
            last = max(c.finished_at for c in got2) - t0
            print(f"first wave of {asked}: decided and written in {t_created * 1000:.0f} ms "
                  f"({cpu_created * 1000:.0f} ms CPU); first call delivered "
                  f"{min(c.finished_at for c in got2) - t0:.2f} s after posting")
            print(f"first wave of {asked}: posted -> wave decided and written in {t_created * 1000:.0f} ms, "
                  f"last call delivered {last:.2f} s after posting; violations so far: {sim.violations}")
        finally:
            await sender.stop()
            await bot.session.close()
    await engine.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donors", type=int, default=300)
    ap.add_argument("--first-wave", type=int, default=30)
    ap.add_argument("--rate", type=float, default=30.0, help="global messages per second (Telegram: 30)")
    a = ap.parse_args()
    asyncio.run(main(a.donors, a.first_wave, a.rate))
