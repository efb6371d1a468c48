"""The policy lab's fast model (issue 13): the same wave policies without the database.

The engine-driven lab (redreserve.policylab) runs ~200 single requests a minute on two cores; the
issue's 2,000-request tables need more. This model runs the same :class:`WavePolicy` objects
(dispatcher.wave_policy: sizes, intervals, radius, stop target, retries) and the same wave model
(dispatcher.waves: ``more_to_ask``, learned rates) over the same donors in the same mood (the lab's
dice, ``policylab.disposition``), in memory. The donors' order is the engine's own ranking
(``fetch_ranked``), read once per blood type from the lab's world.

It is a model, not the engine: it plays one request on a fresh province (no contact cap, no
commitments across requests), its donors' order is fixed for the request (the engine re-ranks at
each wave), and it leaves out the engine's chunked writes, boards and messages other than calls. tests/test_policymodel.py checks that it agrees with the
engine-driven lab on a sample; bench/policy.py uses it for the large tables (``--model``).
"""

from __future__ import annotations

import heapq
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import select

from dispatcher.compat import compatible_tiers
from dispatcher.candidates import fetch_ranked
from dispatcher.engine import Dispatcher
from dispatcher.waves import Rates, learned_rates, more_to_ask, window_left
from dispatcher.wave_policy import WavePolicy
from ground.clock import FrozenClock
from ground.config import Settings
from models.dispatch_tables import BloodRequest
from models.engine import make_engine, make_sessionmaker
from models.tables import Hospital
from redreserve.policylab import (
    START,
    Ask,
    Behaviour,
    Disposition,
    LabRun,
    Outcome,
    _in_quiet_hours,
    disposition,
    lab_settings,
)


@dataclass(frozen=True)
class Donor:
    donor_id: int
    tier: int
    distance_km: float | None
    travel_min: float | None


@dataclass
class _Contact:
    donor: Donor
    state: str  # notified, no_answer, declined, available, stood_down, released, withdrew, no_show, deferred, donated
    notified_at: datetime
    wave_no: int
    nth: int = 1  # how many times she was called for this request (the dice of each call)
    expected: datetime | None = None
    outcome_at: datetime | None = None


SAID = ("available", "donated", "no_show", "released", "withdrew", "deferred")
OPEN = ("notified", "no_answer", "declined", "available")


async def ranked_pools(world: Path, settings: Settings, types: set[tuple[str, str]],
                       component: str = "red_cells") -> dict[tuple[str, str], list[Donor]]:
    """Every eligible donor for each blood type, in the engine's ranking order (read once from the world)."""
    db = make_engine(f"sqlite+aiosqlite:///{world}")
    pools: dict[tuple[str, str], list[Donor]] = {}
    try:
        sm = make_sessionmaker(db)
        engine = Dispatcher(sm, settings, clock=FrozenClock(START), rng=random.Random(0))
        async with sm() as s:
            hospital = (await s.exec(select(Hospital).order_by(Hospital.id))).first()
            assert hospital is not None  # the lab's world has its hospital
            for abo, rh in sorted(types):
                req = BloodRequest(hospital_id=hospital.id, abo=abo, rh=rh, component=component, units=1,
                                   urgency="planned", deadline=START + timedelta(days=3), state="open")
                search = engine.search(req, hospital, START, radius=None, last_resort=True)
                search.request_id = None
                ranked = await fetch_ranked(s, search, engine._ctx(hospital, req, START), engine.rules, 100_000)
                pools[abo, rh] = [Donor(r.donor_id, r.tier, r.distance_km, r.travel_min) for r in ranked]
    finally:
        await db.dispose()
    return pools


class _Request:
    """One request played by the model: the engine's tick, answers and desk outcomes, in memory."""

    def __init__(self, model: "FastModel", index: int, ask: Ask, pool: list[Donor]) -> None:
        self.m, self.index, self.ask, self.pool = model, index, ask, pool
        cfg, p = model.cfg, model.policy
        self.created = START + timedelta(minutes=ask.at_min)
        self.deadline = self.created + timedelta(hours=cfg.deadline_hours.of(ask.urgency))
        self.window = timedelta(minutes=cfg.response_window_min.of(ask.urgency))
        self.rare = ask.rh == "-"
        tiers = compatible_tiers(ask.abo, ask.rh, ask.component)
        self.last_resort_tiers = {t.index for t in tiers if t.last_resort}
        self.target = p.target(ask.units, model.prior, cfg, ask.urgency)
        self.state, self.wave_no, self.covered_at = "open", 0, None
        self.next_wave_at: datetime | None = self.created
        self.retries = 0
        self.contacts: dict[int, _Contact] = {}
        self.calls = self.quiet = 0
        self.waves: list[tuple[float, float | None, int]] = []
        self.heap: list[tuple[datetime, int, str, tuple]] = []
        self.seq = 0
        self.wake: datetime | None = None

    # ---- the event loop
    def push(self, at: datetime, kind: str, args: tuple = ()) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, args))

    def run(self, until: datetime) -> Outcome:
        self.push(self.created, "tick")
        while self.heap:
            at, _, kind, args = heapq.heappop(self.heap)
            if at > until:
                break
            self.now = at
            if kind == "tick":
                if self.wake is None or self.wake == at:
                    self.wake = None
                    self.tick()
            else:
                getattr(self, "_" + kind)(*args)
        return self.outcome()

    def schedule(self, nxt: datetime | None) -> None:
        if nxt is not None and nxt != self.wake:
            self.wake = nxt
            self.push(nxt, "tick")

    # ---- the engine's rules (dispatcher.engine), in memory
    @property
    def active(self) -> bool:
        return self.state in ("open", "dispatching")

    @property
    def listening(self) -> bool:
        """Answers to its calls still count: an exhausted request stood nobody down (engine.close_request)."""
        return self.active or self.state == "exhausted"

    def confirmed(self) -> int:
        return sum(c.state == "donated" or (c.state == "available" and (c.expected is None or c.expected <= self.deadline))
                   for c in self.contacts.values())

    def close(self, state: str) -> None:
        self.state, self.next_wave_at = state, None
        if state == "covered" and self.covered_at is None:
            self.covered_at = self.now
        for c in self.contacts.values():
            if c.state in ("notified", "no_answer") and state != "exhausted":
                c.state = "stood_down"
            elif state == "fulfilled" and c.state == "available":
                c.state = "released"

    def rates(self) -> Rates:
        states = [c.state for c in self.contacts.values()]
        asked = sum(st in SAID + ("declined", "no_answer") for st in states)
        return learned_rates(self.m.prior, self.m.cfg.rates.prior_strength, asked=asked,
                             available=sum(st in SAID for st in states),
                             outcomes=sum(st in ("donated", "no_show", "deferred") for st in states),
                             donated=states.count("donated"))

    def quiet_until(self) -> datetime | None:
        return self.m.engine._quiet_until(self.now)

    def tick(self) -> None:
        self.schedule(self._tick())

    def _tick(self) -> datetime | None:
        m, p, cfg, now = self.m, self.m.policy, self.m.cfg, self.now
        if not self.active:
            return None
        if now >= self.deadline:
            self.close("expired")
            return None
        for c in self.contacts.values():
            if c.state == "notified" and c.notified_at <= now - self.window:
                c.state = "no_answer"
        confirmed = self.confirmed()
        if confirmed >= self.target:
            self.close("covered")
            return None
        quiet_end = self.quiet_until() if self.ask.urgency != "critical" else None
        if quiet_end is not None:
            if self.next_wave_at is None or self.next_wave_at < quiet_end:
                self.next_wave_at = quiet_end
            return min(quiet_end, self.deadline)
        rates = self.rates()
        for _ in range(12):
            w_min = self.window.total_seconds() / 60
            outstanding = [window_left((now - c.notified_at).total_seconds() / 60, w_min)
                           for c in self.contacts.values() if c.state == "notified"]
            firing = (self.next_wave_at is not None and self.next_wave_at <= now) or (
                p.replace_at_once and self.wave_no > 0 and not outstanding)
            if firing:
                self.wave_no += 1
                self.next_wave_at = now + p.interval(cfg, self.ask.urgency)
                self.state = "dispatching"
            w = max(self.wave_no, 1)
            last_resort = w >= cfg.last_resort_from_wave
            radius = None if self.rare else p.radius_km(cfg, w)
            has_last_resort = bool(self.last_resort_tiers)
            widest = (last_resort or not has_last_resort) if self.rare else (
                radius is not None and radius >= p.reach_km(cfg) and (last_resort or not has_last_resort))
            n = more_to_ask(units=self.ask.units, confirmed=confirmed, outstanding=outstanding, rates=rates,
                            confidence=p.confidence_of(cfg, self.ask.urgency), margin=p.margin_of(cfg, self.ask.urgency),
                            minimum=p.smallest_wave(cfg) if firing else 0, maximum=cfg.max_wave)
            n = p.wave_size(units=self.ask.units, missing=self.target - confirmed, first=self.wave_no <= 1,
                            firing=firing, model=n)
            ranked: list[Donor] = []
            if n > 0 or (self.rare and firing):
                ranked = self.find(radius, last_resort, widest, n)
                for d in ranked:
                    self.call(d)
            if firing:
                self.waves.append(((now - self.created).total_seconds() / 60, radius, len(ranked)))
            if ranked or outstanding or n == 0:
                break
            if widest:
                if p.retries and self.retries < p.retries:
                    self.retries += 1
                    self.next_wave_at = now + timedelta(minutes=p.retry_min)
                    break
                self.close("exhausted")
                return None
            self.next_wave_at = now
        times = [self.deadline] + ([self.next_wave_at] if self.next_wave_at is not None else [])
        notified = [c.notified_at for c in self.contacts.values() if c.state == "notified"]
        if notified:
            times.append(min(notified) + self.window)
        return max(min(times), now)

    def _in_time(self, d: Donor) -> bool:
        return d.travel_min is None or self.now + timedelta(minutes=self.m.cfg.prep_min + d.travel_min) <= self.deadline

    def find(self, radius: float | None, last_resort: bool, widest: bool, n: int) -> list[Donor]:
        """dispatcher.engine.Dispatcher._find: the identical type anywhere within reach, then the compatible
        ones within the wave's radius, the other RhD from ``last_resort_from_wave``; late donors last."""
        cfg, p = self.m.cfg, self.m.policy
        reach = None if self.rare else p.reach_km(cfg)
        # Never asked, or told "no longer needed" in an earlier wave of a request that reopened
        # (dispatcher.donor_keys.REASKABLE_STATES): the engine asks her again.
        fresh = [d for d in self.pool if d.donor_id not in self.contacts
                 or (self.contacts[d.donor_id].state in ("stood_down", "released")
                     and self.contacts[d.donor_id].wave_no < self.wave_no)]

        def within(d: Donor, r: float | None) -> bool:
            return r is None or d.distance_km is None or d.distance_km <= r

        stages = [(lambda d: d.tier == 0, reach),
                  (lambda d: d.tier > 0 and d.tier not in self.last_resort_tiers, radius),
                  (lambda d: d.tier in self.last_resort_tiers and last_resort, radius)]
        everyone = self.rare and self.covered_at is None and p.rare_everyone
        found: list[Donor] = []
        for k, (in_stage, r) in enumerate(stages):
            if k > 0 and len(found) >= n:
                break
            limit = cfg.rare_max_wave if everyone else n - len(found)
            if limit <= 0:
                break
            found += [d for d in fresh if in_stage(d) and within(d, r) and self._in_time(d)][:limit]
        if found or n <= 0 or not widest:
            return found
        return [d for d in fresh if within(d, reach)
                and (last_resort or d.tier not in self.last_resort_tiers)][:n]

    def call(self, d: Donor) -> None:
        now = self.now
        night = _in_quiet_hours(now, self.m.cfg, self.m.engine.tz)
        before = self.contacts.get(d.donor_id)
        c = self.contacts[d.donor_id] = _Contact(d, "notified", now, self.wave_no,
                                                 1 if before is None else before.nth + 1)
        self.calls += 1
        self.quiet += night
        self.m.per_donor[d.donor_id] = self.m.per_donor.get(d.donor_id, 0) + 1
        dis = disposition(self.m.behaviour, self.m.seed, self.index, d.donor_id, c.nth, night, d.travel_min)
        if dis is not None:
            self.push(now + timedelta(minutes=dis.delay_min), "answer", (d.donor_id, c.nth, dis))

    # ---- what happens (policylab._Run's, through the engine's rules)
    def _answer(self, donor_id: int, nth: int, dis: Disposition) -> None:
        c = self.contacts[donor_id]
        if c.nth != nth:
            return  # her answer to an earlier call: the engine binds a press to its call's token
        if not dis.available:
            if self.listening and c.state in OPEN and self.now < self.deadline:
                c.state = "declined"
                self.tick()  # replaced at once (DOMAIN.md §5)
            return
        accepted = False
        arrival = self.now + timedelta(minutes=self.m.cfg.prep_min + dis.travel_min)
        if self.state == "covered" and self.now < self.deadline and c.state in OPEN + ("stood_down",) \
                and c.state != "available" and arrival <= self.deadline:
            counted = [o for o in self.contacts.values() if o.state == "available" and o.expected is not None
                       and o.expected <= self.deadline]
            latest = max(counted, key=lambda o: o.expected or arrival, default=None)
            if latest is not None and latest.expected is not None and latest.expected > arrival:
                latest.state = "released"  # a nearer donor replaces the latest expected one
                accepted = True
        if not accepted and (not self.listening or c.state not in OPEN or c.state == "available"
                             or self.now >= self.deadline):
            return
        c.state, c.expected = "available", arrival
        if self.listening and self.confirmed() >= self.target:
            self.close("covered")
        b = self.m.behaviour
        if not dis.arrives:
            if dis.tells:
                self.push(self.now + timedelta(minutes=3 + 17 * dis.later), "withdraw", (donor_id,))
            else:
                self.push(self.now + timedelta(minutes=b.prep_min + dis.travel_min + 40), "desk", (donor_id, "no_show"))
            return
        there = self.now + timedelta(minutes=b.prep_min + dis.travel_min * dis.jitter + b.at_hospital_min)
        self.push(there, "desk", (donor_id, "donated" if dis.passes else "deferred"))

    def _reopen_if_short(self) -> None:
        if self.state == "covered" and self.confirmed() < self.target:
            self.state, self.next_wave_at = "dispatching", self.now

    def _withdraw(self, donor_id: int) -> None:
        c = self.contacts[donor_id]
        if c.state != "available" or self.state in ("fulfilled", "cancelled"):
            return
        c.state, c.outcome_at = "withdrew", self.now
        self._reopen_if_short()
        if self.active:
            self.tick()

    def _desk(self, donor_id: int, outcome: str) -> None:
        c = self.contacts[donor_id]
        if self.state in ("fulfilled", "cancelled") or c.state != "available":
            return
        c.state, c.outcome_at = outcome, self.now
        if outcome == "donated":
            if sum(o.state == "donated" for o in self.contacts.values()) >= self.ask.units:
                self.close("fulfilled")
            return
        self._reopen_if_short()
        self.tick()

    def outcome(self) -> Outcome:
        gave = sorted(c.outcome_at for c in self.contacts.values() if c.state == "donated" and c.outcome_at)
        in_time = [t for t in gave if t <= self.deadline]
        released = sum(c.state == "released" for c in self.contacts.values())
        return Outcome(
            policy=self.m.policy.name, urgency=self.ask.urgency, units=self.ask.units, rh=self.ask.rh,
            state=self.state, calls=self.calls, calls_quiet=self.quiet, donated=len(gave),
            donated_in_time=len(in_time),
            first_donation_min=int((gave[0] - self.created).total_seconds() // 60) if gave else None,
            enough_min=((in_time[self.ask.units - 1] - self.created).total_seconds() / 60
                        if len(in_time) >= self.ask.units else None),
            not_needed=released + max(0, len(gave) - self.ask.units), waves=tuple(self.waves))


@dataclass
class FastModel:
    """Single requests, each on a fresh province, under one policy: the lab's ``run(…, fresh_each=True)``."""

    policy: WavePolicy
    pools: dict[tuple[str, str], list[Donor]]
    behaviour: Behaviour = Behaviour()
    seed: int = 1
    settings: Settings = field(default_factory=lab_settings)
    per_donor: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The engine's own helpers that need no database: quiet hours, the time zone, the prior rates.
        self.engine = Dispatcher(None, self.settings, clock=FrozenClock(START), rng=random.Random(0))  # type: ignore[arg-type]
        self.cfg = self.engine.cfg
        self.prior = self.engine.rates_prior

    def run(self, asks: list[Ask], tail: timedelta = timedelta(hours=6)) -> LabRun:
        t0 = time.perf_counter()
        result = LabRun(roster=len({d.donor_id for pool in self.pools.values() for d in pool}))
        self.per_donor = {}
        for i, a in enumerate(asks):
            r = _Request(self, i, a, self.pools[a.abo, a.rh])
            result.outcomes.append(r.run(r.deadline + tail))
        result.calls_per_donor.update(self.per_donor)
        result.seconds = time.perf_counter() - t0
        return result


__all__ = ["FastModel", "ranked_pools"]
