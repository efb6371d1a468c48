"""The live board under a burst of answers, against the Bot API simulator with Telegram's limits on.

    .venv/bin/python bench/board.py                     # 200 donors answer within 10 s
    .venv/bin/python bench/board.py --donors 100 --seconds 5

A request's first wave asks ``--donors`` donors; once their calls are delivered, they
answer (12 % "available", the rest "not this time") at random moments spread over
``--seconds``, through the dispatcher as the bot's answer handler calls it. The board
in the staff's chat is edited by the outbox sender, the same path as in production,
with the real renderer. Prints: board edits sent, the most edits of that one message
within any second (Telegram: about 1), the simulator's limit violations (must be 0),
and the delay from the last answer to the board showing the final counts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.i18n import make_i18n  # noqa: E402
from bot.render import render_outgoing  # noqa: E402
from bot.transport import AiogramTransport  # noqa: E402
from dispatcher.engine import Dispatcher  # noqa: E402
from dispatcher.messages import Kind  # noqa: E402
from dispatcher.sender import Sender, replace_unreachable  # noqa: E402
from dispatcher.wakeups import Wakeups  # noqa: E402
from models.dispatch_tables import RequestContact  # noqa: E402
from models.engine import create_schema, make_engine, make_sessionmaker  # noqa: E402
from models.geo import geo_cell  # noqa: E402
from models.tables import Donor, Hospital, HospitalStaff, TelegramUser  # noqa: E402
from redreserve.botapi_sim import BotAPISimulator  # noqa: E402
from ground.clock import system_clock  # noqa: E402
from ground.config import DispatchConfig, Settings  # noqa: E402

HOSP = (20.8561, 106.6822)
STAFF = 900_000_001
FIRST_DONOR = 100_000_000


async def seed(sm, sim, n: int) -> int:
    rng = random.Random(1)
    async with sm() as s:
        h = Hospital(name="Bệnh viện Việt Tiệp", lat=HOSP[0], lon=HOSP[1])
        s.add_all([h, TelegramUser(telegram_id=STAFF, locale="en")])
        await s.flush()
        s.add(HospitalStaff(hospital_id=h.id, telegram_id=STAFF))
        sim.push_message(STAFF, "/start")
        for i in range(n):
            tg = FIRST_DONOR + i
            lat, lon = HOSP[0] + rng.uniform(-0.1, 0.1), HOSP[1] + rng.uniform(-0.1, 0.1)
            s.add(Donor(full_name=f"Người hiến {i:03d}", phone=f"+8491{i:07d}", telegram_id=tg, abo="O", rh="+",
                        lat=lat, lon=lon, geo_cell=geo_cell(lat, lon), consent_contact_at=system_clock()))
            s.add(TelegramUser(telegram_id=tg))
            sim.push_message(tg, "/start")  # a bot can only message users who started it (DOMAIN.md §8)
        await s.commit()
        return h.id


async def wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.005)
    return pred()


async def main(donors: int, seconds: float, rate: float) -> None:
    tmp = tempfile.mkdtemp()
    engine = make_engine(f"sqlite+aiosqlite:///{tmp}/board.db")
    await create_schema(engine)
    sm = make_sessionmaker(engine)
    cfg = DispatchConfig(min_wave=donors, max_wave=donors, max_units=20, quiet_start="00:00", quiet_end="00:00",
                         send={"global_per_second": rate, "per_chat_per_second": 1, "group_per_minute": 20})
    settings = Settings(dispatch=cfg)
    i18n = make_i18n("vi")
    rng = random.Random(7)
    async with BotAPISimulator() as sim:
        sim.set_limits(global_per_second=int(rate), per_chat_per_second=1, group_per_minute=20)
        bot = sim.create_bot()
        wakeups = Wakeups()
        d = Dispatcher(sm, settings, clock=system_clock, wakeups=wakeups)
        sender = Sender(sm, AiogramTransport(bot, partial(render_outgoing, i18n=i18n, default_locale="vi")),
                        cfg.send, prepare={Kind.board.value: d.board_params}, on_unreachable=replace_unreachable(d))
        wakeups.on_outbox_written(sender.kick)
        await sender.start()
        try:
            # Twice the pool, so that every "not this time" is replaced by a new ask, as in the field.
            hid = await seed(sm, sim, donors * 2)
            rid = await d.create_request(hospital_id=hid, abo="O", rh="+", component="red_cells", units=20,
                                         urgency="critical", posted_by=STAFF, chat_id=STAFF)
            slot = await sender.limiter.acquire(STAFF)  # as the bot's handlers do (bot.throttle)
            board = await bot.send_message(STAFF, "…")
            sender.limiter.release(slot)
            await d.attach_board(rid, STAFF, board.message_id, "en")
            async with sm() as s:
                from sqlmodel import select
                first = (await s.exec(select(RequestContact).where(RequestContact.request_id == rid)
                                      .order_by(RequestContact.id).limit(donors))).all()
            chats = {FIRST_DONOR + c.donor_id - 1 for c in first}
            delivered = await wait_for(lambda: len({c.chat_id for c in sim.sent(method="sendMessage", ok=True)
                                                    if c.chat_id in chats}) >= len(first), timeout=60)
            assert delivered, "the first wave was not delivered"
            await wait_for(lambda: False, 1.1)  # let the windows empty before the burst
            edits_before = len(edits(sim, board.message_id))

            moments = sorted(rng.uniform(0, seconds) for _ in first)
            answers = ["available" if rng.random() < 0.12 else "declined" for _ in first]
            t0 = time.monotonic()
            for c, at, answer in zip(first, moments, answers):
                delay = t0 + at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await d.record_answer(rid, answer, c.token, donor_id=c.donor_id)
            t_last = time.monotonic()
            final = await d.board_params(rid, STAFF)
            want = (f"declined {final['buckets']['declined']}", f"{final['confirmed']}/{final['target']}")

            def shows_final() -> bool:
                text = sim.world.get_message(STAFF, board.message_id)["text"]
                return all(w in text for w in want)

            shown = await wait_for(shows_final, timeout=30)
            lag = time.monotonic() - t_last
            burst = edits(sim, board.message_id)[edits_before:]
            times = sorted(c.finished_at for c in burst)
            per_second = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
            print(f"{len(first)} donors answered within {t_last - t0:.1f} s "
                  f"({answers.count('available')} available, {answers.count('declined')} not this time)")
            print(f"board edits sent during the burst: {len(burst)} (one per answer would be {len(first)}); "
                  f"most edits of the board within one second: {per_second}")
            print(f"Telegram limit violations (429 from the simulator): {sim.violations}")
            print(f"last answer -> board shows the final counts: "
                  f"{lag * 1000:.0f} ms" + ("" if shown else " (NOT SHOWN within 30 s)"))
        finally:
            await sender.stop()
            await bot.session.close()
    await engine.dispose()


def edits(sim, message_id: int):
    return [c for c in sim.sent(method="editMessageText", ok=True)
            if c.chat_id == STAFF and c.params.get("message_id") == message_id]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donors", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=30.0, help="global messages per second (Telegram: 30)")
    a = ap.parse_args()
    asyncio.run(main(a.donors, a.seconds, a.rate))
