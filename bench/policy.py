"""The wave policy against "message everyone compatible at once" and "fixed waves of 10".

    .venv/bin/python bench/policy.py                  # 2,000 synthetic requests
    .venv/bin/python bench/policy.py --requests 200

Each request draws 1–3 units and a pool of compatible donors (nearest first). A donor
reads the call with p = 0.85 after an exponential delay (mean 6 min), then says
available with p = 0.40, arrives with p = 0.75 and passes screening with p = 0.77
(DOMAIN.md §5). Urgent timings from the [dispatch] defaults: 20-minute response window,
20-minute wave interval, 12-hour deadline. "Covered" = confirmed "available" reaches the
stop target (≈ 1.7 × units); "donated" = enough of them actually gave.
Prints messages per covered request and minutes to cover: median and p90.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatcher.headline import headline  # noqa: E402
from dispatcher.waves import Rates, more_to_ask, target_available, window_left  # noqa: E402

R = Rates()
WINDOW, INTERVAL, DEADLINE, STEP = 20.0, 20.0, 720.0, 0.5
CONFIDENCE, MIN_WAVE, MAX_WAVE = 0.8, 3, 50
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the simulated request's posting time


@dataclass
class Donor:
    reads: bool
    delay: float
    available: bool
    donates: bool


def pool(rng: random.Random, n: int) -> list[Donor]:
    return [Donor(rng.random() < R.reads, rng.expovariate(1 / 6.0), rng.random() < R.says_available,
                  rng.random() < R.arrives * R.passes) for _ in range(n)]


class Run:
    """Shared bookkeeping: who was asked when, who answered what by time t."""

    def __init__(self, donors: list[Donor], units: int):
        self.donors, self.units = donors, units
        self.target = target_available(units, R)
        self.asked: list[tuple[int, float]] = []  # (donor index, asked at)
        self.next = 0

    def ask(self, n: int, t: float) -> None:
        for _ in range(n):
            if self.next >= len(self.donors):
                return
            self.asked.append((self.next, t))
            self.next += 1

    def state(self, t: float):
        avail, outstanding, done = [], [], 0
        for i, at in self.asked:
            d = self.donors[i]
            answered = d.reads and d.delay <= WINDOW and at + d.delay <= t
            if answered:
                done += 1
                if d.available:
                    avail.append(i)
            elif t - at < WINDOW:
                outstanding.append(window_left(t - at, WINDOW))
        return avail, outstanding

    def result(self, t_cover: float | None, avail: list[int]):
        donated = sum(self.donors[i].donates for i in avail)
        # Minutes as the board and /report count them (dispatcher.headline: whole minutes).
        times = headline(T0, first_available=None, covered=None if t_cover is None else T0 + timedelta(minutes=t_cover),
                         first_donation=None, fulfilled=None)
        return len(self.asked), times.covered, donated >= self.units


def wave_policy(donors, units):
    run = Run(donors, units)
    next_wave, t = 0.0, 0.0
    while t <= DEADLINE:
        avail, outstanding = run.state(t)
        if len(avail) >= run.target:
            return run.result(t, avail)
        firing = t >= next_wave or (run.asked and not outstanding)
        if firing:
            next_wave = t + INTERVAL
        n = more_to_ask(units=units, confirmed=len(avail), outstanding=outstanding, rates=R, confidence=CONFIDENCE,
                        minimum=MIN_WAVE if firing else 0, maximum=MAX_WAVE)
        run.ask(n, t)
        if run.next >= len(donors) and not outstanding:
            return run.result(None, avail)
        t += STEP
    return run.result(None, run.state(t)[0])


def everyone(donors, units):
    run = Run(donors, units)
    run.ask(len(donors), 0.0)
    t = 0.0
    while t <= DEADLINE:
        avail, _ = run.state(t)
        if len(avail) >= run.target:
            return run.result(t, avail)
        t += STEP
    return run.result(None, run.state(t)[0])


def fixed_waves(donors, units, size=10):
    run = Run(donors, units)
    t, next_wave = 0.0, 0.0
    while t <= DEADLINE:
        avail, _ = run.state(t)
        if len(avail) >= run.target:
            return run.result(t, avail)
        if t >= next_wave:
            run.ask(size, t)
            next_wave = t + INTERVAL
        t += STEP
    return run.result(None, run.state(t)[0])


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(q * len(xs)) - 1)] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--pool", type=int, default=200, help="compatible donors within reach per request")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    policies = {"wave policy (ours)": wave_policy, "everyone at once": everyone, "fixed waves of 10": fixed_waves}
    results = {name: [] for name in policies}
    rng = random.Random(a.seed)
    for _ in range(a.requests):
        units = rng.choice([1, 1, 2, 2, 3])
        donors = pool(rng, a.pool)
        for name, policy in policies.items():
            results[name].append(policy(donors, units))
    print(f"{a.requests} requests, pool {a.pool} donors each, units 1–3; urgent timings")
    print(f"{'policy':<20} {'covered':>8} {'donated':>8} {'msgs/covered med':>17} {'p90':>5} "
          f"{'min to cover med':>17} {'p90':>6}")
    for name, rs in results.items():
        covered = [r for r in rs if r[1] is not None]
        msgs = [r[0] for r in covered]
        mins = [r[1] for r in covered]
        print(f"{name:<20} {len(covered) / len(rs):>8.1%} {sum(r[2] for r in rs) / len(rs):>8.1%} "
              f"{statistics.median(msgs):>17.0f} {pct(msgs, 0.9):>5.0f} {statistics.median(mins):>17.1f} "
              f"{pct(mins, 0.9):>6.1f}")


if __name__ == "__main__":
    main()
