"""Several sender instances on one PostgreSQL draining one outbox (issue 14).

    .venv/bin/python bench/instances.py                      # 1, 2 and 3 instances, a 300-donor wave each
    .venv/bin/python bench/instances.py --donors 120 --instances 1 3
    .venv/bin/python bench/instances.py --local              # each instance its own limiter, as before
    .venv/bin/python bench/instances.py --failover 3         # 3 × SIGKILL of the leader mid-wave

Each run: a fresh database, a rare-type request that asks every donor at once (``donors``
calls in the outbox), then N Senders in this process, each with its own engine, its own Bot
(transport) and its own PostgresBudget, and a distinct instance id, drain it against the Bot API
simulator with Telegram's limits switched on. Printed per N: aggregate messages/s (first to last
call), the simulator's limit violations (429s), duplicates (a donor called twice), lost calls,
rows taken over, and the mean time of one budget reservation.

``--failover K``: K times, two ``redreserve run`` processes (bench/instance_process.py: the real
service, the shared budget, ``lease_s`` 2, ``leader_retry_s`` 0.5) share the wave; the leader is
SIGKILLed once a third of the calls are out. Printed per run: the time until the other instance
holds the leader lock (its log line), until its first getUpdates (it polls), the longest pause
between two calls of the wave across the kill, the calls in flight at the kill and the duplicates.

Needs PostgreSQL (TEST_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test);
without one it says so and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.transport import AiogramTransport  # noqa: E402
from dispatcher.engine import Dispatcher  # noqa: E402
from dispatcher.send_budget import PostgresBudget  # noqa: E402
from dispatcher.sender import RateLimiter, Sender  # noqa: E402
from dispatcher.wakeups import Wakeups  # noqa: E402
from ground.clock import system_clock  # noqa: E402
from ground.config import DispatchConfig, Settings  # noqa: E402
from models.engine import make_engine, make_sessionmaker  # noqa: E402
from models.geo import geo_cell  # noqa: E402
from models.tables import Donor, Hospital, HospitalStaff, TelegramUser  # noqa: E402
from redreserve.botapi_sim import BotAPISimulator  # noqa: E402

HOSP = (10.7578, 106.6594)
STAFF = 900_000_001
FIRST_DONOR = 100_000_000
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass
class Run:
    instances: int
    calls: int
    donors_called: int
    duplicates: int
    lost: int
    violations: int
    rate: float  # donor calls per second, first to last
    took_s: float
    takeovers: int
    reserve_ms: float  # mean time of one budget reservation (one statement, one transaction)
    claim_ms: float  # mean time of one claim transaction (the advisory lock is held that long)
    spoiled: int  # budget slots given up after a late start


def postgres_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=0.5):
            return url
    except OSError:
        return None


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def wave_settings(donors: int, rate: float) -> Settings:
    return Settings(dispatch=DispatchConfig(
        rare_max_wave=max(donors, 1), quiet_start="00:00", quiet_end="00:00",
        send={"global_per_second": rate, "per_chat_per_second": 1, "group_per_minute": 20}))


async def seed_wave(sm, sim: BotAPISimulator, donors: int, settings: Settings) -> None:
    """``donors`` O− donors who started the bot, and a rare-type request asking all of them (the outbox)."""
    rng = random.Random(donors)
    async with sm() as s:
        h = Hospital(name="Chợ Rẫy", lat=HOSP[0], lon=HOSP[1])
        s.add(h)
        s.add(TelegramUser(telegram_id=STAFF))
        # Started the bot some time ago (a bot can only message users who did, DOMAIN.md §8), without an
        # update each: an instance that polls would answer 300 /start and blur the wave's figures.
        sim.start_chat(STAFF)
        await s.flush()
        s.add(HospitalStaff(hospital_id=h.id, telegram_id=STAFF))
        for i in range(donors):
            tg = FIRST_DONOR + i
            lat, lon = HOSP[0] + rng.uniform(-0.08, 0.08), HOSP[1] + rng.uniform(-0.08, 0.08)
            s.add(Donor(full_name=f"Donor {tg}", phone=f"+84{tg}", telegram_id=tg, abo="O", rh="-",
                        lat=lat, lon=lon, geo_cell=geo_cell(lat, lon), consent_contact_at=system_clock()))
            s.add(TelegramUser(telegram_id=tg))
            sim.start_chat(tg)
        await s.commit()
        hospital_id = h.id
    assert hospital_id is not None
    # No sender listens yet: the wave's calls wait in the outbox for the instances.
    d = Dispatcher(sm, settings, clock=system_clock, wakeups=Wakeups())
    await d.create_request(hospital_id=hospital_id, abo="O", rh="-", component="red_cells", units=2,
                           urgency="critical", posted_by=STAFF)


async def drain(url: str, sim: BotAPISimulator, instances: int, settings: Settings, *,
                lease_s: float = 30.0, timeout: float = 120.0,
                local: bool = False) -> tuple[list[Sender], list[PostgresBudget]]:
    """N instances, each its own engine, Bot and budget, drain the outbox at ``url`` together.
    ``local``: each with an in-process RateLimiter instead, as before issue 14 (the comparison)."""
    send = settings.dispatch.send
    engines, bots, senders, budgets = [], [], [], []
    try:
        for i in range(instances):
            engine = make_engine(url)
            engines.append(engine)
            sm = make_sessionmaker(engine)
            bot = sim.create_bot()
            bots.append(bot)
            budget = PostgresBudget(sm, send.global_per_second, send.per_chat_per_second, send.group_per_minute)
            budgets.append(budget)
            limiter = (RateLimiter(send.global_per_second, send.per_chat_per_second, send.group_per_minute,
                                   send.safety_margin_s) if local else budget)
            senders.append(Sender(sm, AiogramTransport(bot, lambda m: (m.params.plain(), None)), send,
                                  limiter=limiter, instance_id=f"instance-{i}", lease_s=lease_s))
        for s in senders:
            await s.recover()
        await asyncio.gather(*(s.run_until_idle(timeout=timeout) for s in senders))
        # One instance may have gone idle while another still held rows of chats it could not
        # take; one more round each picks up anything left.
        await asyncio.gather(*(s.run_until_idle(timeout=timeout) for s in senders))
        await asyncio.gather(*(s.stop() for s in senders))
    finally:
        for bot in bots:
            await bot.session.close()
        for engine in engines:
            await engine.dispose()
    return senders, budgets


def measure(sim: BotAPISimulator, instances: int, donors: int, senders: list[Sender],
            budgets: list[PostgresBudget], took: float, violations_before: int = 0) -> Run:
    chats = set(range(FIRST_DONOR, FIRST_DONOR + donors))
    got = [c for c in sim.sent(method="sendMessage", ok=True) if c.chat_id in chats]
    times = sorted(c.finished_at for c in got)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    called = {c.chat_id for c in got}
    n_res = sum(b.reservations for b in budgets)
    return Run(instances=instances, calls=len(got), donors_called=len(called), duplicates=len(got) - len(called),
               lost=donors - len(called), violations=sim.violations - violations_before,
               rate=(len(times) - 1) / span if span else float("nan"), took_s=took,
               takeovers=sum(s.takeovers for s in senders),
               reserve_ms=1000 * sum(b.reserve_time_s for b in budgets) / n_res if n_res else float("nan"),
               claim_ms=1000 * sum(s.claim_time_s for s in senders) / max(sum(s.claims for s in senders), 1),
               spoiled=sum(b.spoiled for b in budgets))


async def one_run(base_url: str, instances: int, donors: int, rate: float, local: bool = False) -> Run:
    import asyncpg

    name = f"rr_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = urlsplit(base_url.replace("postgresql+asyncpg", "postgresql"))
    conn = await asyncpg.connect(host=admin.hostname, port=admin.port or 5432, user=admin.username or "postgres",
                                 password=admin.password, database=admin.path.lstrip("/") or "test")
    await conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(base_url, name)
    try:
        from models.engine import create_schema

        engine = make_engine(url)
        await create_schema(engine)
        sm = make_sessionmaker(engine)
        settings = wave_settings(donors, rate)
        async with BotAPISimulator() as sim:
            await seed_wave(sm, sim, donors, settings)
            sim.set_limits(global_per_second=int(rate), per_chat_per_second=1, group_per_minute=20)
            t0 = time.monotonic()
            senders, budgets = await drain(url, sim, instances, settings, local=local)
            run = measure(sim, instances, donors, senders, budgets, time.monotonic() - t0)
        await engine.dispose()
        return run
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def main(donors: int, counts: list[int], rate: float, local: bool) -> None:
    base = postgres_url()
    if base is None:
        print("bench/instances.py: no PostgreSQL (set TEST_POSTGRES_URL); several instances need one. Skipped.")
        return
    budget = "an in-process RateLimiter each (before issue 14)" if local else "the PostgreSQL budget, shared"
    print(f"{donors}-donor rare wave, Telegram limits {rate:g}/s, 1/s per chat; {budget}")
    print(f"{'instances':>9} {'msg/s':>7} {'% limit':>8} {'took s':>7} {'violations':>10} {'duplicates':>10} "
          f"{'lost':>5} {'takeovers':>9} {'reserve ms':>10} {'claim ms':>8} {'spoiled':>7}")
    for n in counts:
        r = await one_run(base, n, donors, rate, local)
        print(f"{r.instances:>9} {r.rate:>7.2f} {r.rate / rate:>8.1%} {r.took_s:>7.2f} {r.violations:>10} "
              f"{r.duplicates:>10} {r.lost:>5} {r.takeovers:>9} {r.reserve_ms:>10.2f} {r.claim_ms:>8.2f} "
              f"{r.spoiled:>7}")


@dataclass
class Failover:
    before: int  # calls out when the leader was killed
    in_flight: int  # rows the dead leader had claimed, not recorded as sent
    duplicates: int
    lost: int
    leads_s: float  # kill -> the other instance's "is the leader" line
    polls_s: float  # kill -> its first getUpdates
    gap_s: float  # the longest pause between two donor calls from the kill on
    finished_s: float  # kill -> every donor called
    violations: int


async def failover_run(base_url: str, donors: int, rate: float, workdir: Path) -> Failover:
    """Two processes share a wave; the leader is SIGKILLed a third of the way through."""
    import asyncpg

    from bench.instance_process import FOLLOWS, LEADS, start_instance
    from models.dispatch_tables import OutboxMessage
    from models.engine import create_schema
    from sqlmodel import select

    name = f"rr_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = urlsplit(base_url.replace("postgresql+asyncpg", "postgresql"))
    conn = await asyncpg.connect(host=admin.hostname, port=admin.port or 5432, user=admin.username or "postgres",
                                 password=admin.password, database=admin.path.lstrip("/") or "test")
    await conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(base_url, name)
    engine = make_engine(url)
    both = []
    try:
        await create_schema(engine)
        sm = make_sessionmaker(engine)
        token = "123456:BENCH-failover"
        async with BotAPISimulator(token=token) as sim:
            await seed_wave(sm, sim, donors, wave_settings(donors, rate))
            sim.set_limits(global_per_second=int(rate), per_chat_per_second=1, group_per_minute=20)
            chats = set(range(FIRST_DONOR, FIRST_DONOR + donors))

            def calls() -> list:
                return [c for c in sim.sent(method="sendMessage", ok=True) if c.chat_id in chats]

            both = list(await asyncio.gather(*(start_instance(
                workdir / name, n, api_base=sim.base_url, token=token, db_url=url, rate=rate, lease_s=2.0,
                retry_s=0.5) for n in ("A", "B"))))
            await asyncio.gather(*(i.wait_log("leadership: ", timeout=90) for i in both))
            await sim.wait_for(lambda: any(LEADS in i.text() for i in both), timeout=30, what="a leader")
            leader, other = both if LEADS in both[0].text() else both[::-1]
            await other.wait_log(FOLLOWS)
            await sim.wait_for(lambda: len(calls()) >= donors // 3, timeout=120, what="a third of the wave")
            leader.kill()
            killed = time.monotonic()
            await leader.proc.wait()
            before = len(calls())
            async with sm() as s:
                in_flight = len((await s.exec(select(OutboxMessage).where(
                    OutboxMessage.state == "sending", OutboxMessage.claimed_by == leader.name))).all())
            leads = await other.wait_log(LEADS, timeout=30) - killed
            polled = await sim.wait_for(
                lambda: [c for c in sim.sent(method="getUpdates") if c.started_at > killed], timeout=30,
                what="the new leader's first getUpdates")
            await sim.wait_for(lambda: {c.chat_id for c in calls()} >= chats, timeout=120, what="every donor called")
            finished = time.monotonic() - killed
            times = [killed] + sorted(c.finished_at for c in calls() if c.finished_at > killed)
            got = calls()
            return Failover(before=before, in_flight=in_flight, duplicates=len(got) - len({c.chat_id for c in got}),
                            lost=donors - len({c.chat_id for c in got}), leads_s=leads,
                            polls_s=min(c.started_at for c in polled) - killed,
                            gap_s=max(b - a for a, b in zip(times, times[1:])), finished_s=finished,
                            violations=sim.violations)
    finally:
        for i in both:
            await i.stop()
        await engine.dispose()
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def failover_main(runs: int, donors: int, rate: float) -> None:
    import tempfile

    base = postgres_url()
    if base is None:
        print("bench/instances.py: no PostgreSQL (set TEST_POSTGRES_URL); several instances need one. Skipped.")
        return
    print(f"SIGKILL of the leader of 2 `redreserve run` a third into a {donors}-donor wave, limits {rate:g}/s; "
          "lease_s 2, leader_retry_s 0.5")
    print(f"{'run':>3} {'out':>4} {'in flight':>9} {'dups':>4} {'lost':>4} {'leads s':>7} {'polls s':>7} "
          f"{'max gap s':>9} {'done s':>6} {'violations':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(runs):
            f = await failover_run(base, donors, rate, Path(tmp))
            print(f"{k + 1:>3} {f.before:>4} {f.in_flight:>9} {f.duplicates:>4} {f.lost:>4} {f.leads_s:>7.2f} "
                  f"{f.polls_s:>7.2f} {f.gap_s:>9.2f} {f.finished_s:>6.2f} {f.violations:>10}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donors", type=int, default=300)
    ap.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--rate", type=float, default=30.0, help="global messages per second (Telegram: 30)")
    ap.add_argument("--local", action="store_true", help="each instance its own in-process limiter (the old way)")
    ap.add_argument("--failover", type=int, default=0, metavar="K",
                    help="instead: K runs of two `redreserve run` processes, the leader SIGKILLed mid-wave")
    a = ap.parse_args()
    if a.failover:
        asyncio.run(failover_main(a.failover, a.donors, a.rate))
    else:
        asyncio.run(main(a.donors, a.instances, a.rate, a.local))
