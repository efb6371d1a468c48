"""The policy lab (issue 13): wave policies run by the real engine on simulated donors.

The same :class:`dispatcher.engine.Dispatcher` as the bot — ranking, waves, the rare path,
reopening, the desk's outcomes — on a virtual clock (ground.clock.FrozenClock) and a temporary
SQLite database, with a :class:`dispatcher.wave_policy.WavePolicy` given to its constructor. Nothing
of the engine is re-implemented here: the lab only plays the people around it.

* **The sender** is instant: after every engine step the calls in the outbox are delivered
  (marked sent, their contacts notified), as ``dispatcher.sender`` does, at the virtual now.
* **Donors** live at real places (redreserve.synthetic, around a province's hospital), so their
  travel is the ranking's own estimate (the contact's ``travel_min``). Each one called reads it with
  p = ``reads`` (lower at night) after a heavy-tailed (log-normal) delay, slower at night; says
  available, declines, or stays silent; if available, arrives or not (telling the bot "I can't come
  after all", or just not coming), and passes screening or is deferred — DOMAIN.md §5's rates by
  default (:class:`Behaviour`). Answers go through ``Dispatcher.record_answer`` (the button's call),
  outcomes through ``Dispatcher.desk.mark`` (the nurse's).
* **Common random numbers**: a donor's dispositions for a request are drawn from a seed made of the
  run's seed, the request's place in the stream, the donor and how many times she was asked — not
  from a shared sequence — so every policy meets the same people in the same mood, and one seed
  gives one result.

Streams: single requests (each on a fresh copy of the world), a busy stretch for one province
(overlapping requests on one database: the contact cap and commitments in play), and an Rh−
emergency needing 3 units (two small Rh− clubs, one in another province).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import multiprocessing
import random
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import event, update
from sqlmodel import col, select

from dispatcher.engine import AnswerOutcome, Dispatcher
from dispatcher.headline import request_headline
from dispatcher.wakeups import Wakeups
from dispatcher.wave_policy import OURS, WavePolicy
from ground.clock import VIETNAM, FrozenClock, as_utc
from ground.config import DispatchConfig, Settings
from ground.eligibility import max_volume_ml
from models.dispatch_tables import (
    BloodRequest,
    ContactState,
    OutboxMessage,
    OutboxState,
    RequestContact,
    RequestWave,
)
from models.engine import create_schema, make_engine, make_sessionmaker
from models.geo import placed
from models.tables import Club, ClubMembership, Donor, Hospital, HospitalStaff, TelegramUser
from redreserve.synthetic import person

URGENCIES = ("critical", "urgent", "planned")
STAFF_TG = 7_100_000_000
DONOR_TG = 7_200_000_000


@dataclass(frozen=True)
class Behaviour:
    """What a called donor does; defaults from DOMAIN.md §5, the night and delay shapes are assumptions."""

    reads: float = 0.85
    reads_night: float = 0.6  # DOMAIN.md §5: "lower at night" (range 0.6–0.9)
    says_available: float = 0.40
    declines: float = 0.5  # of those who read and cannot come: share who press "not this time" (the rest are silent)
    arrives: float = 0.75
    passes: float = 0.77
    tells: float = 0.5  # of those who will not come after all: share who say so rather than vanish
    delay_median_min: float = 4.0  # reading and answering: log-normal, heavy-tailed
    delay_sigma: float = 1.0
    night_slowdown: float = 3.0
    max_delay_min: float = 360.0
    prep_min: float = 15.0  # getting ready before leaving
    at_hospital_min: float = 20.0  # reception, screening, the draw
    travel_jitter: tuple[float, float] = (0.8, 1.3)  # actual travel ÷ the ranking's estimate


@dataclass(frozen=True)
class World:
    """One province: its hospital, a reserve club around it, and Rh− clubs (DOMAIN.md §3–4)."""

    hospital: tuple[float, float] = (20.8561, 106.6822)  # Việt Tiệp, Hải Phòng
    members: int = 300
    spread_km: float = 8.0
    # (lat, lon, members, spread km): Hải Phòng's own Rh− club (as redreserve.seeding's) and Hà Nội's, ~100 km away.
    rare_clubs: tuple[tuple[float, float, int, float], ...] = ((20.8600, 106.6700, 60, 8.0),
                                                              (21.0285, 105.8542, 30, 6.0))
    seed: int = 1


@dataclass(frozen=True)
class Ask:
    """One request of a stream, ``at_min`` minutes after the stream starts."""

    at_min: float
    abo: str
    rh: str
    units: int
    urgency: str
    component: str = "red_cells"


@dataclass
class Outcome:
    """One request, as the hospital lived it."""

    policy: str
    urgency: str
    units: int
    rh: str
    state: str
    calls: int
    calls_quiet: int
    donated: int
    donated_in_time: int
    first_donation_min: int | None  # whole minutes, as dispatcher.headline counts them
    enough_min: float | None  # until the units-th donation before the deadline
    not_needed: int  # said available, then told they were not needed (released), or gave beyond the units
    # The engine's own record of its waves: (minutes after the request, radius km or None, donors asked).
    waves: tuple[tuple[float, float | None, int], ...] = ()

    @property
    def enough(self) -> bool:
        return self.donated_in_time >= self.units


@dataclass
class LabRun:
    outcomes: list[Outcome] = field(default_factory=list)
    calls_per_donor: Counter = field(default_factory=Counter)
    roster: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------------------- streams

def _blood_type(rng: random.Random) -> str:
    return rng.choices(("O", "B", "A", "AB"), (45, 30, 20, 5))[0]


def singles(urgency: str, n: int, seed: int) -> list[Ask]:
    """``n`` requests of one urgency, Rh+, 1–3 units, each at a random time of day."""
    rng = random.Random(f"singles:{urgency}:{seed}")
    return [Ask(rng.uniform(0, 24 * 60), _blood_type(rng), "+", rng.choice((1, 1, 2, 2, 3)), urgency)
            for _ in range(n)]


def rh_negative(n: int, seed: int, units: int = 3) -> list[Ask]:
    """An Rh− emergency: O− critical, ``units`` units, at a random time of day."""
    rng = random.Random(f"rhneg:{seed}")
    return [Ask(rng.uniform(0, 24 * 60), "O", "-", units, "critical") for _ in range(n)]


def busy(days: int, per_day: float, seed: int) -> list[Ask]:
    """Overlapping requests for one province: Poisson arrivals, urgencies 30 / 50 / 20 %."""
    rng = random.Random(f"busy:{days}:{per_day}:{seed}")
    asks, t = [], rng.expovariate(per_day / 1440)
    while t < days * 1440:
        asks.append(Ask(t, _blood_type(rng), "+", rng.choice((1, 1, 2, 2, 3)),
                        rng.choices(URGENCIES, (30, 50, 20))[0]))
        t += rng.expovariate(per_day / 1440)
    return asks


# --------------------------------------------------------------------------------------- the world

START = datetime(2026, 3, 9, 17, 0, tzinfo=timezone.utc)  # 00:00 on a Tuesday in Hải Phòng


async def build_world(path: Path, world: World) -> int:
    """Write the province into a new SQLite file at ``path``; returns the roster's size."""
    db = make_engine(f"sqlite+aiosqlite:///{path}")
    await create_schema(db)
    sm = make_sessionmaker(db)
    rng = random.Random(f"world:{world.seed}")
    today, n = START.astimezone(VIETNAM).date(), 0
    phones: set[str] = set()
    try:
        async with sm() as s:
            h = Hospital(name="Bệnh viện Hữu nghị Việt Tiệp", lat=world.hospital[0], lon=world.hospital[1],
                         address="1 Nhà Thương, Lê Chân, Hải Phòng")
            s.add(h)
            s.add(TelegramUser(telegram_id=STAFF_TG, locale="vi"))
            await s.flush()
            s.add(HospitalStaff(hospital_id=h.id, telegram_id=STAFF_TG))
            clubs = [(world.hospital[0], world.hospital[1], world.members, world.spread_km, 0.001)]
            clubs += [(lat, lon, size, spread, 1.0) for lat, lon, size, spread in world.rare_clubs]
            for k, (lat, lon, size, spread, rh_neg) in enumerate(clubs):
                club = Club(name=f"Club {k}", lat=lat, lon=lon)
                s.add(club)
                await s.flush()
                for _ in range(size):
                    p = person(rng, near=(lat, lon), spread_km=spread, today=today, rh_negative=rh_neg,
                               used_phones=phones)
                    tg = DONOR_TG + n
                    n += 1
                    d = Donor(full_name=p.full_name, phone=p.phone, telegram_id=tg, abo=p.abo, rh=p.rh, sex=p.sex,
                              birth_date=p.birth_date, weight_kg=p.weight_kg, **placed(p.lat, p.lon, approx=False),
                              last_donation_date=p.last_donation, donation_count=p.donations,
                              last_donation_component="whole_blood" if p.last_donation else None, locale="vi",
                              consent_profile_at=START, consent_contact_at=START)
                    s.add(d)
                    s.add(TelegramUser(telegram_id=tg, locale="vi"))
                    await s.flush()
                    s.add(ClubMembership(club_id=club.id, donor_id=d.id))
            await s.commit()
    finally:
        await db.dispose()
    return n


def lab_settings(**dispatch: Any) -> Settings:
    # The lab's sender is instant: a wave is written in one transaction, not streamed in chunks.
    send = {"global_per_second": 100_000.0, **dispatch.pop("send", {})}
    return Settings(dispatch=DispatchConfig(**{**dispatch, "send": send}))


# --------------------------------------------------------------------------------------- one run

class _Run:
    """One database, one policy, a stream of requests: the event loop around the engine."""

    def __init__(self, url: str, policy: WavePolicy, behaviour: Behaviour, settings: Settings, seed: int,
                 start: datetime) -> None:
        self.db = make_engine(url)

        @event.listens_for(self.db.sync_engine, "connect")
        def _throwaway(dbapi_conn: Any, _record: Any) -> None:
            # A copy thrown away after the run: no fsync, and deleted rows need not be zeroed.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA secure_delete=OFF")
            cur.close()

        self.sm = make_sessionmaker(self.db)
        self.b, self.seed = behaviour, seed
        self.clock = FrozenClock(start)
        wakeups = Wakeups()
        wakeups.on_request_due(self._due)
        self.engine = Dispatcher(self.sm, settings, clock=self.clock, rng=random.Random(seed), wakeups=wakeups,
                                 policy=policy)
        self.heap: list[tuple[datetime, int, str, tuple]] = []
        self.seq = 0
        self.wake: dict[int, datetime] = {}
        self.index: dict[int, int] = {}  # request id → its place in the stream (the donors' dice)
        self.asked: Counter = Counter()  # (request id, donor id) → times called
        self.calls: Counter = Counter()  # request id → calls delivered
        self.quiet: Counter = Counter()
        self.per_donor: Counter = Counter()

    def push(self, at: datetime, kind: str, args: tuple) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, args))

    def _due(self, request_id: int, when: datetime, deadline: datetime | None) -> None:
        if self.wake.get(request_id) != when:
            self.wake[request_id] = when
            self.push(when, "tick", (request_id,))

    async def run(self, asks: Iterable[tuple[int, Ask]], hospital_id: int, until: datetime) -> None:
        for i, a in asks:
            self.push(self.clock() + timedelta(minutes=a.at_min), "post", (i, a, hospital_id))
        while self.heap:
            at, _, kind, args = heapq.heappop(self.heap)
            if at > until:
                break
            self.clock.now = max(self.clock.now, at)
            await getattr(self, "_" + kind)(*args)
            await self._deliver()

    async def close(self) -> None:
        await self.db.dispose()

    # ---- what happens
    async def _post(self, i: int, a: Ask, hospital_id: int) -> None:
        rid = await self.engine.create_request(hospital_id=hospital_id, abo=a.abo, rh=a.rh, component=a.component,
                                               units=a.units, urgency=a.urgency, posted_by=STAFF_TG)
        self.index[rid] = i

    async def _tick(self, rid: int) -> None:
        if self.wake.get(rid) == self.clock():
            self.wake.pop(rid, None)
            await self.engine.tick(rid)

    async def _answer(self, rid: int, donor_id: int, token: str, answer: str, visit: tuple | None) -> None:
        res = await self.engine.record_answer(rid, answer, token, donor_id=donor_id)
        if res.outcome != AnswerOutcome.accepted or visit is None:
            return
        contact_id, travel_min, weight, arrives, tells, passes, jitter, later = visit
        now, b = self.clock(), self.b
        if not arrives:
            if tells:
                self.push(now + timedelta(minutes=3 + 17 * later), "answer", (rid, donor_id, token, "withdraw", None))
            else:
                self.push(now + timedelta(minutes=b.prep_min + travel_min + 40), "desk",
                          (rid, contact_id, "no_show", None))
            return
        there = now + timedelta(minutes=b.prep_min + travel_min * jitter + b.at_hospital_min)
        self.push(there, "desk", (rid, contact_id, "donated" if passes else "deferred", weight))

    async def _desk(self, rid: int, contact_id: int, outcome: str, weight: float | None) -> None:
        if outcome == "donated":
            await self.engine.desk.mark(rid, contact_id, "donated", by=STAFF_TG,
                                        volume_ml=min(350, max_volume_ml(weight)))
        elif outcome == "deferred":
            await self.engine.desk.mark(rid, contact_id, "deferred", by=STAFF_TG, category="7d")
        else:
            await self.engine.desk.mark(rid, contact_id, outcome, by=STAFF_TG)

    async def _deliver(self) -> None:
        """The instant sender: every pending message leaves now; a call's contact is notified (dispatcher.sender)."""
        now = self.clock()
        async with self.sm() as s, s.begin():
            rows = (await s.exec(select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.contact_id)
                                 .where(OutboxMessage.state == OutboxState.pending.value))).all()
            if not rows:
                return
            await s.exec(update(OutboxMessage).where(col(OutboxMessage.id).in_([r[0] for r in rows]))
                         .values(state=OutboxState.sent.value, sent_at=now))
            calls = [c for _, kind, c in rows if kind == "call" and c is not None]
            if not calls:
                return
            await s.exec(update(RequestContact).where(col(RequestContact.id).in_(calls),
                                                      RequestContact.state == ContactState.queued.value)
                         .values(state=ContactState.notified.value, notified_at=now))
            called = (await s.exec(select(RequestContact.id, RequestContact.request_id, RequestContact.donor_id,
                                          RequestContact.token, RequestContact.travel_min, Donor.weight_kg)
                                   .join(Donor, Donor.id == RequestContact.donor_id)
                                   .where(col(RequestContact.id).in_(calls)))).all()
        quiet = _in_quiet_hours(now, self.engine.cfg, self.engine.tz)
        for contact_id, rid, donor_id, token, travel_min, weight in called:
            self.calls[rid] += 1
            self.quiet[rid] += quiet
            self.per_donor[donor_id] += 1
            self._react(contact_id, rid, donor_id, token, travel_min, weight, quiet)

    def _react(self, contact_id: int, rid: int, donor_id: int, token: str, travel_min: float | None,
               weight: float | None, night: bool) -> None:
        """She decides, from her own dice for this request (the same under every policy)."""
        nth = self.asked[rid, donor_id] = self.asked[rid, donor_id] + 1
        d = disposition(self.b, self.seed, self.index.get(rid, rid), donor_id, nth, night, travel_min)
        if d is None:
            return
        at = self.clock() + timedelta(minutes=d.delay_min)
        if d.available:
            visit = (contact_id, d.travel_min, weight, d.arrives, d.tells, d.passes, d.jitter, d.later)
            self.push(at, "answer", (rid, donor_id, token, "available", visit))
        else:
            self.push(at, "answer", (rid, donor_id, token, "declined", None))

    async def outcomes(self, policy: str) -> list[Outcome]:
        out = []
        async with self.sm() as s:
            for req in (await s.exec(select(BloodRequest).order_by(BloodRequest.id))).all():
                rows = (await s.exec(select(RequestContact.state, RequestContact.outcome_at)
                                     .where(RequestContact.request_id == req.id))).all()
                created, deadline = as_utc(req.created_at), as_utc(req.deadline)
                gave = sorted(as_utc(at) for st, at in rows if st == ContactState.donated.value)
                in_time = [t for t in gave if t <= deadline]
                released = sum(st == ContactState.released.value for st, _ in rows)
                waves = (await s.exec(select(RequestWave).where(RequestWave.request_id == req.id)
                                      .order_by(RequestWave.wave_no))).all()
                out.append(Outcome(
                    policy=policy, urgency=req.urgency, units=req.units, rh=req.rh, state=req.state,
                    calls=self.calls[req.id], calls_quiet=self.quiet[req.id], donated=len(gave),
                    donated_in_time=len(in_time),
                    # The same minutes as the board and /report (dispatcher.headline).
                    first_donation_min=(await request_headline(s, req)).first_donation,
                    enough_min=((in_time[req.units - 1] - created).total_seconds() / 60
                                if len(in_time) >= req.units else None),
                    not_needed=released + max(0, len(gave) - req.units),
                    waves=tuple(((as_utc(w.fired_at) - created).total_seconds() / 60, w.radius_km, w.asked)
                                for w in waves)))
        return out


@dataclass(frozen=True)
class Disposition:
    """What one called donor does for one request: the lab's dice, shared with the fast model."""

    delay_min: float  # until her answer
    available: bool  # else: she presses "not this time"
    travel_min: float
    arrives: bool
    tells: bool  # not coming after all: she says so (else she just does not come)
    passes: bool
    jitter: float  # actual travel ÷ the ranking's estimate
    later: float  # when she tells, 3 + 17 × this minutes after her "yes"


def disposition(b: Behaviour, seed: int, index: int, donor_id: int, nth: int, night: bool,
                travel_min: float | None) -> Disposition | None:
    """Her answer to the ``nth`` call of request ``index`` of the stream (None: she never answers), from a
    seed of its own (common random numbers: the same under every policy, and in the fast model)."""
    r = random.Random(f"{seed}:{index}:{donor_id}:{nth}")
    u = [r.random() for _ in range(8)]
    if u[0] >= (b.reads_night if night else b.reads):
        return None  # never reads it in time
    delay = math.exp(math.log(b.delay_median_min) + b.delay_sigma * _normal(u[1]))
    delay = min(delay * (b.night_slowdown if night else 1.0), b.max_delay_min)
    travel = 30.0 if travel_min is None else travel_min
    if u[2] < b.says_available:
        return Disposition(delay, True, travel, u[3] < b.arrives, u[4] < b.tells, u[5] < b.passes,
                           b.travel_jitter[0] + (b.travel_jitter[1] - b.travel_jitter[0]) * u[6], u[7])
    if u[3] < b.declines:
        return Disposition(delay, False, travel, False, False, False, 1.0, 0.0)
    return None  # read it, cannot come, stays silent


def _normal(u: float) -> float:
    """The standard normal quantile of ``u`` (inverse CDF): one uniform draw per donor keeps the dice aligned."""
    from statistics import NormalDist
    return NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12))


def _in_quiet_hours(at: datetime, cfg: DispatchConfig, tz: tzinfo) -> bool:
    """Within ``[dispatch]`` quiet hours, local time (they wrap past midnight by default)."""
    hm = at.astimezone(tz).strftime("%H:%M")
    start, end = cfg.quiet_start.zfill(5), cfg.quiet_end.zfill(5)
    return (hm >= start or hm < end) if start > end else start <= hm < end


# --------------------------------------------------------------------------------------- the lab

async def _run_batches(template: Path, workdir: Path, policy: WavePolicy, behaviour: Behaviour,
                        settings: Settings, seed: int, batches: list[list[tuple[int, Ask]]],
                        tail: timedelta) -> tuple[list[list[Outcome]], Counter]:
    """Each batch on its own copy of ``template``: the outcomes per batch, and the calls per donor."""
    outcomes: list[list[Outcome]] = []
    per_donor: Counter = Counter()
    for k, batch in enumerate(batches):
        path = workdir / f"run{batch[0][0]}-{k}.db"
        shutil.copyfile(template, path)
        run = _Run(f"sqlite+aiosqlite:///{path}", policy, behaviour, settings, seed, START)
        try:
            last = max(a.at_min for _, a in batch)
            hours = max(settings.dispatch.deadline_hours.of(a.urgency) for _, a in batch)
            await run.run(batch, hospital_id=1, until=START + timedelta(minutes=last, hours=hours) + tail)
            outcomes.append(await run.outcomes(policy.name))
            per_donor.update(run.per_donor)
        finally:
            await run.close()
            path.unlink(missing_ok=True)
    return outcomes, per_donor


def _run_share(template: str, policy: WavePolicy, behaviour: Behaviour, settings: Settings, seed: int,
               batches: list[list[tuple[int, Ask]]], tail: timedelta) -> tuple[list[list[Outcome]], Counter]:
    """A worker process's share of the batches, on copies in a directory of its own."""
    with tempfile.TemporaryDirectory(prefix="redreserve-policylab-w-") as d:
        return asyncio.run(_run_batches(Path(template), Path(d), policy, behaviour, settings, seed, batches, tail))


class PolicyLab:
    """Runs streams of requests under each policy on copies of one seeded world.

    ``workers`` > 1 spreads the single requests over that many processes (each request is on a
    copy of its own, so they are independent; the dice are per request, so the result does not
    depend on how they are spread). One process spends most of its time in the engine's own
    queries, not in the lab: a pool is how the lab uses more than one core.
    """

    def __init__(self, *, world: World = World(), behaviour: Behaviour = Behaviour(), seed: int = 1,
                 settings: Settings | None = None, workdir: Path | None = None,
                 template: Path | None = None, workers: int = 1) -> None:
        self.world, self.behaviour, self.seed = world, behaviour, seed
        self.settings = settings or lab_settings()
        self._tmp = tempfile.TemporaryDirectory(prefix="redreserve-policylab-", dir=workdir)
        self.dir = Path(self._tmp.name)
        # A world already written (build_world) may be shared by several labs: tests build theirs once.
        self.prebuilt = template
        self.template = template or self.dir / "world.db"
        self.roster = 0
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> "PolicyLab":
        if self.prebuilt is None:
            self.roster = await build_world(self.template, self.world)
        if self.workers > 1:
            # spawn, not fork: a forked child would inherit this process's running event loop.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        self._tmp.cleanup()

    async def run(self, policy: WavePolicy, asks: list[Ask], *, fresh_each: bool,
                  tail: timedelta = timedelta(hours=6)) -> LabRun:
        """Each ask on a fresh copy of the world (``fresh_each``), or all on one (overlapping)."""
        t0 = time.perf_counter()
        result = LabRun(roster=self.roster)
        batches = [[(i, a)] for i, a in enumerate(asks)] if fresh_each else [list(enumerate(asks))]
        if self._pool is None or len(batches) < 2:
            outs, per_donor = await _run_batches(self.template, self.dir, policy, self.behaviour, self.settings,
                                                 self.seed, batches, tail)
            result.calls_per_donor.update(per_donor)
        else:
            loop = asyncio.get_running_loop()
            # Interleaved shares, so that each worker gets as many of the slow (long-deadline) requests.
            shares = [batches[k::self.workers] for k in range(self.workers)]
            done = await asyncio.gather(*(loop.run_in_executor(
                self._pool, _run_share, str(self.template), policy, self.behaviour, self.settings, self.seed,
                share, tail) for share in shares if share))
            outs = [[] for _ in batches]
            for k, (share_outs, per_donor) in enumerate(done):
                outs[k::self.workers] = share_outs
                result.calls_per_donor.update(per_donor)
        result.outcomes = [o for batch in outs for o in batch]
        result.seconds = time.perf_counter() - t0
        return result


async def run_policy(policy: WavePolicy = OURS, asks: list[Ask] | None = None, *, fresh_each: bool = True,
                     seed: int = 1, world: World = World(), behaviour: Behaviour = Behaviour()) -> LabRun:
    """One policy on one stream, on a world of its own (for tests and one-off questions)."""
    async with PolicyLab(world=world, behaviour=behaviour, seed=seed) as lab:
        return await lab.run(policy, asks if asks is not None else singles("urgent", 5, seed), fresh_each=fresh_each)


__all__ = ["Ask", "Behaviour", "LabRun", "Outcome", "PolicyLab", "World", "busy", "lab_settings", "rh_negative",
           "run_policy", "singles", "START"]


if __name__ == "__main__":  # pragma: no cover - a quick look: python -m redreserve.policylab
    r = asyncio.run(run_policy())
    for o in r.outcomes:
        print(o)
    print(f"{len(r.outcomes)} requests in {r.seconds:.1f} s")
