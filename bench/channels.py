"""One rare-type wave across two channels, each within its own limits (issue 15).

    .venv/bin/python bench/channels.py                       # 300 donors: 200 on Telegram, 100 by SMS only
    .venv/bin/python bench/channels.py --donors 300 --sms-share 0.5 --sms-rate 5

A critical O− request asks every eligible donor at once. The Telegram donors' calls go through the
Bot API simulator with Telegram's limits switched on (30/s in bulk, 1/s per chat); the SMS-only
donors' calls through the SMS Gateway for Android simulator, paced by ``[sms] per_second``. The real
engine, both senders, the real transports (aiogram, bot.sms_gateway) and an SQLite file.
Prints, per channel: calls delivered, first to last, the rate reached against the channel's limit,
the limit's violations (Telegram: the simulator's 429s; SMS: any 1-second window holding more than
``per_second`` sends), and the calls lost or doubled; then the outbox's count of call rows per
channel and state.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.i18n import make_i18n  # noqa: E402
from bot.sms_gateway import AndroidSmsGateway  # noqa: E402
from bot.sms_transport import SmsTransport  # noqa: E402
from bot.transport import AiogramTransport  # noqa: E402
from dispatcher.engine import Dispatcher  # noqa: E402
from dispatcher.sender import Sender, replace_unreachable  # noqa: E402
from dispatcher.wakeups import Wakeups  # noqa: E402
from models.dispatch_tables import OutboxMessage  # noqa: E402
from models.engine import create_schema, make_engine, make_sessionmaker  # noqa: E402
from models.geo import geo_cell  # noqa: E402
from models.tables import Donor, DonorChannel, Hospital, HospitalStaff, TelegramUser  # noqa: E402
from redreserve.botapi_sim import BotAPISimulator  # noqa: E402
from redreserve.smsgw_sim import SmsGatewaySimulator  # noqa: E402
from ground.clock import system_clock  # noqa: E402
from ground.config import Settings  # noqa: E402

HOSP = (10.7578, 106.6594)
STAFF = 900_000_001
FIRST_TG = 100_000_000


async def setup(sm, sim, n: int, n_sms: int) -> int:
    rng = random.Random(1)
    now = system_clock()
    async with sm() as s:
        h = Hospital(name="Chợ Rẫy", lat=HOSP[0], lon=HOSP[1])
        s.add_all([h, TelegramUser(telegram_id=STAFF)])
        sim.push_message(STAFF, "/start")
        await s.flush()
        s.add(HospitalStaff(hospital_id=h.id, telegram_id=STAFF))
        donors = []
        for i in range(n):
            lat, lon = HOSP[0] + rng.uniform(-0.08, 0.08), HOSP[1] + rng.uniform(-0.08, 0.08)
            tg = FIRST_TG + i if i >= n_sms else None  # the first n_sms have no Telegram at all
            d = Donor(full_name=f"Donor {i}", phone=f"+849{i:08d}", telegram_id=tg, abo="O", rh="-",
                      lat=lat, lon=lon, geo_cell=geo_cell(lat, lon), consent_contact_at=now)
            s.add(d)
            donors.append(d)
            if tg is not None:
                s.add(TelegramUser(telegram_id=tg))
                sim.push_message(tg, "/start")  # a bot can only message users who started it (DOMAIN.md §8)
        await s.flush()
        s.add_all([DonorChannel(donor_id=d.id, channel="sms", address=d.phone, rank=1, consent_at=now)
                   for d in donors[:n_sms]])
        await s.commit()
        return h.id


def window_violations(times: list[float], per_second: float) -> int:
    """Sends that made some 1-second window hold more than ``per_second`` (the SMS sender's own limit)."""
    allowed, times, bad, j = math.floor(per_second + 1e-9), sorted(times), 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        bad += (i - j + 1) > allowed
    return bad


def report(name: str, times: list[float], recipients: list, expected: int, rate: float, violations: int,
           t0: float) -> None:
    times = sorted(times)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    achieved = (len(times) - 1) / span if span else float("nan")
    distinct = len(set(recipients))
    print(f"{name}: {len(times)} calls to {distinct} donors (expected {expected}); first {times[0] - t0:.2f} s "
          f"after posting, last {times[-1] - t0:.2f} s; {achieved:.2f}/s = {achieved / rate:.1%} of its "
          f"{rate:g}/s limit; violations: {violations}; lost: {expected - distinct}; "
          f"doubled: {len(recipients) - distinct}")


async def main(donors: int, sms_share: float, tg_rate: float, sms_rate: float) -> None:
    n_sms = round(donors * sms_share)
    n_tg = donors - n_sms
    tmp = tempfile.mkdtemp()
    engine = make_engine(f"sqlite+aiosqlite:///{tmp}/channels.db")
    await create_schema(engine)
    sm = make_sessionmaker(engine)
    async with BotAPISimulator() as sim, SmsGatewaySimulator() as gw, aiohttp.ClientSession() as http:
        settings = Settings(
            dispatch={"rare_max_wave": donors, "quiet_start": "00:00", "quiet_end": "00:00",
                      "send": {"global_per_second": tg_rate, "per_chat_per_second": 1, "group_per_minute": 20}},
            sms={"enabled": True, "api_url": gw.base_url, "username": gw.username, "password": gw.password,
                 "per_second": sms_rate, "max_per_request": donors, "max_per_day": donors})
        sim.set_limits(global_per_second=int(tg_rate), per_chat_per_second=1, group_per_minute=20)
        bot = sim.create_bot()
        wakeups = Wakeups()
        d = Dispatcher(sm, settings, clock=system_clock, wakeups=wakeups, channels=("sms",))
        tg_sender = Sender(sm, AiogramTransport(bot, lambda m: (m.params.plain(), None)), settings.dispatch.send,
                           on_unreachable=replace_unreachable(d))
        sms_transport = SmsTransport(AndroidSmsGateway(http, gw.base_url, gw.username, gw.password),
                                     make_i18n("vi"), "vi", settings.sms)
        sms_sender = Sender(sm, sms_transport, settings.sms.send_config(), channel="sms",
                            on_unreachable=replace_unreachable(d))
        for s in (tg_sender, sms_sender):
            wakeups.on_outbox_written(s.kick)
            await s.start()
        try:
            hid = await setup(sm, sim, donors, n_sms)
            tg_chats = set(range(FIRST_TG + n_sms, FIRST_TG + donors))
            t0 = time.monotonic()
            await d.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=2,
                                   urgency="critical", posted_by=STAFF)
            written = time.monotonic() - t0

            def tg_calls():
                return [c for c in sim.sent(method="sendMessage", ok=True) if c.chat_id in tg_chats]
            end = time.monotonic() + max(n_tg / tg_rate, n_sms / sms_rate) * 3 + 15
            while (len(tg_calls()) < n_tg or len(gw.sent) < n_sms) and time.monotonic() < end:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # anything doubled would arrive now
            print(f"{donors} donors ({n_tg} on Telegram, {n_sms} by SMS only): the wave decided and written "
                  f"in {written * 1000:.0f} ms")
            got = tg_calls()
            report("telegram", [c.finished_at for c in got], [c.chat_id for c in got], n_tg, tg_rate,
                   sim.violations, t0)
            report("sms", [m.at for m in gw.sent], [m.phone for m in gw.sent], n_sms, sms_rate,
                   window_violations([m.at for m in gw.sent], sms_rate), t0)
            async with sm() as s:
                from sqlmodel import select
                rows = (await s.exec(select(OutboxMessage.channel, OutboxMessage.state)
                                     .where(OutboxMessage.kind == "call"))).all()
            print("outbox call rows by channel and state:", dict(sorted(Counter(f"{c}/{st}" for c, st in rows).items())))
        finally:
            await tg_sender.stop()
            await sms_sender.stop()
            await bot.session.close()
    await engine.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donors", type=int, default=300)
    ap.add_argument("--sms-share", type=float, default=1 / 3, help="share of the donors reachable only by SMS")
    ap.add_argument("--rate", type=float, default=30.0, help="Telegram's global messages per second (30)")
    ap.add_argument("--sms-rate", type=float, default=5.0, help="[sms] per_second (a phone's SIM: about 1)")
    a = ap.parse_args()
    asyncio.run(main(a.donors, a.sms_share, a.rate, a.sms_rate))
