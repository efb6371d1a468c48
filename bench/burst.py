"""Many people at once through the real bot (issue 10): the Bot API simulator, polling, a real database.

    .venv/bin/python bench/burst.py                     # 300 donors, SQLite
    .venv/bin/python bench/burst.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/bench_burst

300 O− donors who have started the bot (300 `/help` at once), a critical O− request
for 20 units (a rare type: everyone is asked at once), then all 300 press their answer
button at the same moment (30 "available", 270 "not this time": short of the goal, so
every answer counts). Prints the time from the presses to the last press answered, how
many presses were answered, and the answers recorded. Before issue 10's fix, 16 updates
at once exhausted the connection pool and waited 30 s each.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from sqlmodel import SQLModel, func, select  # noqa: E402

from bot.app import build_bot, build_dispatcher  # noqa: E402
from models.dispatch_tables import RequestContact  # noqa: E402
from models.engine import create_schema, make_engine, make_sessionmaker  # noqa: E402
from models.geo import geo_cell  # noqa: E402
from models.tables import Club, ClubMembership, Donor, Hospital, HospitalStaff, TelegramUser  # noqa: E402
from redreserve.botapi_sim import BotAPISimulator  # noqa: E402
from ground.clock import system_clock  # noqa: E402
from ground.config import Settings  # noqa: E402

HOSP = (20.8561, 106.6822)
STAFF = 900_000_001
FIRST = 100_000_000


async def wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def seed(sm, n: int) -> int:
    async with sm() as s:
        h = Hospital(name="Bệnh viện Việt Tiệp", lat=HOSP[0], lon=HOSP[1])
        club = Club(name="CLB Lê Chân", lat=HOSP[0], lon=HOSP[1])
        s.add_all([h, club, TelegramUser(telegram_id=STAFF, locale="en")])
        await s.flush()
        s.add(HospitalStaff(hospital_id=h.id, telegram_id=STAFF))
        for i in range(n):
            lat = HOSP[0] + (i % 50) / 111.0
            d = Donor(full_name=f"Donor {i}", phone=f"+8491{i:07d}", telegram_id=FIRST + i, abo="O", rh="-", sex="M",
                      birth_date=date(1990, 1, 1), weight_kg=65, lat=lat, lon=HOSP[1],
                      geo_cell=geo_cell(lat, HOSP[1]), consent_contact_at=system_clock(),
                      consent_profile_at=system_clock(), locale="en")
            s.add_all([d, TelegramUser(telegram_id=FIRST + i, locale="en")])
            await s.flush()
            s.add(ClubMembership(club_id=club.id, donor_id=d.id))
        await s.commit()
        return h.id


async def main(n: int, db: str | None) -> None:
    url = db or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/burst.db"
    engine = make_engine(url)
    await create_schema(engine)
    if url.startswith("postgresql"):
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    sm = make_sessionmaker(engine)
    hid = await seed(sm, n)
    async with BotAPISimulator() as sim:
        settings = Settings(telegram={"token": "123456:BENCH", "api_base": sim.base_url}, database={"url": url},
                            dispatch={"quiet_start": "00:00", "quiet_end": "00:00",
                                      "send": {"global_per_second": 1000, "per_chat_per_second": 1000}})
        bot = build_bot(settings)
        dp = build_dispatcher(settings, sm, clock=system_clock, rng=random.Random(7), use_scheduler=False)
        polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        await asyncio.wait_for(dp["runtime"].started.wait(), 30)
        try:
            donors = list(range(FIRST, FIRST + n))
            t0 = time.monotonic()
            for tg in donors:
                sim.push_message(tg, "/help", language_code="en")
            ok = await wait_for(lambda: all(sim.last_message(tg) for tg in donors), 300)
            print(f"{n} × /help at once: all answered {ok}, last after {time.monotonic() - t0:.2f} s")

            t0 = time.monotonic()
            rid = await dp["engine"].create_request(hospital_id=hid, abo="O", rh="-", component="red_cells",
                                                    units=20, urgency="critical", posted_by=STAFF)
            await wait_for(lambda: all((sim.last_message(tg) or {}).get("reply_markup") for tg in donors), 300)
            print(f"{n}-donor wave: every call delivered {time.monotonic() - t0:.2f} s after posting")

            t0 = time.monotonic()
            for i, tg in enumerate(donors):
                msg = sim.last_message(tg)
                rows = msg["reply_markup"]["inline_keyboard"]
                data = rows[0][0]["callback_data"] if i % 10 == 0 else rows[1][0]["callback_data"]
                sim.push_callback(tg, msg["message_id"], data)
            ok = await wait_for(lambda: len(sim.callback_answers()) >= n, 600)
            last = time.monotonic() - t0
            answered = {a["user_id"] for a in sim.callback_answers()}
            async with sm() as s:
                states = dict((await s.exec(select(RequestContact.state, func.count())
                                            .where(RequestContact.request_id == rid)
                                            .group_by(RequestContact.state))).all())
            print(f"{n} answers pressed at once: last press answered after {last:.2f} s "
                  f"({len(answered)}/{n} donors answered, {len(sim.callback_answers())} answers); recorded: {states}")
        finally:
            await dp.stop_polling()
            await asyncio.wait_for(polling, 30)
            await bot.session.close()
    await engine.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donors", type=int, default=300)
    ap.add_argument("--db", help="a database URL (default: a new SQLite file)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(a.donors, a.db))
