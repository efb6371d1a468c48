"""The Zalo sender against the Zalo Bot API simulator: a rare-type call to N donors whose Telegram
is blocked (403), so every call goes on to Zalo (issue 15).

    .venv/bin/python bench/zalo_send.py                 # 60 donors, three pacings
    .venv/bin/python bench/zalo_send.py --donors 120

For each pacing: the sender's ``[zalo] per_second`` against the simulator's per-bot limit, the time
from the first to the last call delivered, the rate, the simulator's 429s, and calls lost (none may be:
a 429 is waited out and retried). Zalo publishes no number for its limit: the default 5/s is a guess
that this shows to be safe against a limit of 5/s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bot.i18n import make_i18n  # noqa: E402
from bot.zalo_api import ZaloBotApi  # noqa: E402
from bot.zalo_channel import ZaloTransport  # noqa: E402
from dispatcher.channels import next_channel  # noqa: E402
from dispatcher.sender import Sender  # noqa: E402
from ground.clock import system_clock  # noqa: E402
from ground.config import Settings, SmsConfig  # noqa: E402
from models.engine import create_schema, make_engine, make_sessionmaker  # noqa: E402
from models.tables import DonorChannel  # noqa: E402
from redreserve.zalo_sim import ZaloBotSimulator  # noqa: E402
from tests.dispatch_helpers import make, post, tg_of, town  # noqa: E402


async def run(n: int, per_second: float, zalo_limit: float | None, path: Path) -> str:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await create_schema(engine)
    sm = make_sessionmaker(engine)
    hid, donors = await town(sm, n=n, abo="O", rh="-", spread=0.01)
    now = system_clock()
    async with sm() as s:
        s.add_all([DonorChannel(donor_id=d, channel="zalo", address=f"z{d}", rank=1, consent_at=now)
                   for d in donors])
        await s.commit()
    d, tg_sender, tg, clock = make(sm, clock=system_clock, reroute=partial(next_channel, sms=SmsConfig(), zalo=True))
    tg.blocked = {tg_of(i) for i in range(n)}
    async with ZaloBotSimulator(per_second=zalo_limit) as sim, aiohttp.ClientSession() as http:
        sim.known.update(f"z{x}" for x in donors)
        cfg = Settings(zalo={"per_second": per_second}).zalo
        zalo = Sender(sm, ZaloTransport(ZaloBotApi(http, sim.base_url, sim.token), make_i18n("vi"), "vi"),
                      cfg.send_config(), clock=clock, channel="zalo", on_unreachable=tg_sender.on_unreachable)
        await post(d, hid, abo="O", rh="-", urgency="critical")
        await tg_sender.run_until_idle()
        await zalo.start()  # as in production: its own loop, waking at each retry's time
        t0 = time.monotonic()
        while len(sim.sent) < n and time.monotonic() - t0 < 120:
            await asyncio.sleep(0.05)
        await zalo.stop()
        took = (sim.sent[-1].at - sim.sent[0].at) if sim.sent else 0.0
    await engine.dispose()
    rate = (len(sim.sent) - 1) / took if took else float("nan")
    limit = f"{zalo_limit:g}/s" if zalo_limit else "none"
    return (f"| {per_second:g}/s | {limit} | {len(sim.sent)}/{n} | {took:.2f} s | {rate:.1f}/s | {sim.refused} "
            f"| {n - len(sim.sent)} |")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--donors", type=int, default=60)
    args = parser.parse_args()
    print("| [zalo] per_second | simulator's limit | delivered | first→last | rate | 429s | lost |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (pace, limit) in enumerate([(5, 5), (20, 5), (50, None)]):
            print(await run(args.donors, pace, limit, Path(tmp) / f"z{i}.db"))


if __name__ == "__main__":
    asyncio.run(main())
