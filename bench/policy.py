"""The wave policy: does the hospital get its units *donated before the deadline*? (issue 9)

    .venv/bin/python bench/policy.py                  # 2,000 synthetic requests
    .venv/bin/python bench/policy.py --requests 200

Each request draws 1–3 units, an urgency and a pool of compatible donors, best-ranked
first. Two kinds of pool, half each:

* **town**: 200 donors 5–120 min away (urgent: 12-hour deadline, 20-minute windows and waves);
* **rare** (Rh−, DOMAIN.md §3): 10 donors 5–60 min away and 15 in another province, 5–15 h
  away (critical: 3-hour deadline, 10-minute windows and waves; everyone asked at once).

A donor reads the call with p = 0.85 after an exponential delay (mean 6 min), says
available with p = 0.40, arrives with p = 0.75 (after 15 min to get ready and her travel,
±20 %) and passes screening with p = 0.77 (DOMAIN.md §5); her unit is in the bag 20 minutes
after she arrives. Asking stops when the counted "available" reach the stop target
(≈ 1.7 × units, dispatcher.waves); the rest are stood down.

Policies: the wave policy *counting every "available"* (before issue 9: a donor 14 hours
away counted as coverage, and a rare request asked every province at once), the
*arrival-aware* wave policy (ours: only answers expected before the deadline count; donors
who cannot arrive in time are asked only once nobody who can is left), everyone at once,
and fixed waves of 10. Headline: requests with enough units donated before the deadline,
and minutes to the first donation (median / p90), with messages per request.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatcher.waves import Rates, more_to_ask, target_available, window_left  # noqa: E402

R = Rates()
STEP, PREP, AT_HOSPITAL = 0.5, 15.0, 20.0
MIN_WAVE, MAX_WAVE = 3, 50
URGENT = dict(deadline=720.0, window=20.0, interval=20.0, confidence=0.8, rare=False)
CRITICAL_RARE = dict(deadline=180.0, window=10.0, interval=10.0, confidence=0.9, rare=True)


@dataclass
class Donor:
    travel: float
    reads: bool
    delay: float
    available: bool
    arrives: bool
    passes: bool
    jitter: float


def donor(rng: random.Random, travel: float) -> Donor:
    return Donor(travel, rng.random() < R.reads, rng.expovariate(1 / 6.0), rng.random() < R.says_available,
                 rng.random() < R.arrives, rng.random() < R.passes, rng.uniform(0.8, 1.2))


def town(rng: random.Random) -> list[Donor]:
    return sorted((donor(rng, rng.uniform(5, 120)) for _ in range(200)), key=lambda d: d.travel)


def rare(rng: random.Random) -> list[Donor]:
    near = [donor(rng, rng.uniform(5, 60)) for _ in range(10)]
    far = [donor(rng, rng.uniform(300, 900)) for _ in range(15)]
    return sorted(near + far, key=lambda d: d.travel)


class Run:
    """Who was asked when; who answered what by time t; whose answer counts."""

    def __init__(self, donors: list[Donor], units: int, p: dict, arrival_aware: bool):
        self.donors, self.units, self.p, self.aware = donors, units, p, arrival_aware
        self.target = target_available(units, R)
        self.asked: dict[int, float] = {}  # donor index -> asked at
        self.stood_down_at: float | None = None

    def in_time(self, i: int, t_answer: float) -> bool:
        return t_answer + PREP + self.donors[i].travel <= self.p["deadline"]

    def ask(self, indices, t: float) -> None:
        for i in indices:
            self.asked.setdefault(i, t)

    def answered(self, i: int) -> float | None:
        d = self.donors[i]
        if not d.reads or d.delay > self.p["window"]:
            return None
        at = self.asked[i] + d.delay
        if self.stood_down_at is not None and at > self.stood_down_at:
            return None  # told "no longer needed" before she answered
        return at

    def state(self, t: float):
        counted, outstanding = 0, []
        for i, at in self.asked.items():
            ans = self.answered(i)
            if ans is not None and ans <= t:
                if self.donors[i].available and (not self.aware or self.in_time(i, ans)):
                    counted += 1
            elif t - at < self.p["window"]:
                outstanding.append(window_left(t - at, self.p["window"]))
        return counted, outstanding

    def unasked(self, *, in_time_at: float | None = None) -> list[int]:
        """Not yet asked, best first; with ``in_time_at``, only those who could still arrive in time."""
        return [i for i in range(len(self.donors)) if i not in self.asked
                and (in_time_at is None or self.in_time(i, in_time_at))]

    def result(self):
        """(messages, enough donated before the deadline, minutes to the first donation or None)."""
        bags = []
        for i in self.asked:
            d, ans = self.donors[i], self.answered(i)
            if ans is None or not d.available or not d.arrives or not d.passes:
                continue
            bags.append(ans + PREP + d.travel * d.jitter + AT_HOSPITAL)
        in_time = sorted(b for b in bags if b <= self.p["deadline"])
        return len(self.asked), len(in_time) >= self.units, (min(bags) if bags else None)


def wave_policy(donors, units, p, arrival_aware: bool):
    run = Run(donors, units, p, arrival_aware)
    next_wave, t = 0.0, 0.0
    while t <= p["deadline"]:
        counted, outstanding = run.state(t)
        if counted >= run.target:
            run.stood_down_at = t
            break
        if run.asked and not outstanding and not run.unasked():
            break  # every answer is in and nobody is left to ask
        firing = t >= next_wave or (run.asked and not outstanding)
        if firing:
            next_wave = t + p["interval"]
        n = more_to_ask(units=units, confirmed=counted, outstanding=outstanding, rates=R,
                        confidence=p["confidence"], minimum=MIN_WAVE if firing else 0, maximum=MAX_WAVE)
        if arrival_aware:
            # Issue 9: those who can arrive in time first (a rare type: all of them at once);
            # the others only once nobody who can is left.
            pool = run.unasked(in_time_at=t)
            if not pool and n > 0:
                pool = run.unasked()
        else:
            pool = run.unasked()
        if p["rare"] and firing:
            run.ask(pool, t)
        else:
            run.ask(pool[:n], t)
        t += STEP
    return run.result()


def everyone(donors, units, p):
    run = Run(donors, units, p, False)
    run.ask(range(len(donors)), 0.0)
    t = 0.0
    while t <= p["deadline"]:
        counted, outstanding = run.state(t)
        if counted >= run.target:
            run.stood_down_at = t
            break
        if not outstanding:
            break
        t += STEP
    return run.result()


def fixed_waves(donors, units, p, size=10):
    run = Run(donors, units, p, False)
    t, next_wave = 0.0, 0.0
    while t <= p["deadline"]:
        counted, outstanding = run.state(t)
        if counted >= run.target:
            run.stood_down_at = t
            break
        if run.asked and not outstanding and not run.unasked():
            break
        if t >= next_wave:
            run.ask(run.unasked()[:size], t)
            next_wave = t + p["interval"]
        t += STEP
    return run.result()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(q * len(xs)) - 1)] if xs else float("nan")


POLICIES = {
    "wave, counts every yes (before)": lambda d, u, p: wave_policy(d, u, p, False),
    "wave, arrival-aware (ours)": lambda d, u, p: wave_policy(d, u, p, True),
    "everyone at once": everyone,
    "fixed waves of 10": fixed_waves,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    results = {name: {"town": [], "rare": []} for name in POLICIES}
    rng = random.Random(a.seed)
    for k in range(a.requests):
        units = rng.choice([1, 1, 2, 2, 3])
        kind = "rare" if k % 2 else "town"
        donors = rare(rng) if kind == "rare" else town(rng)
        p = CRITICAL_RARE if kind == "rare" else URGENT
        for name, policy in POLICIES.items():
            results[name][kind].append(policy(donors, units, p))
    print(f"{a.requests} requests (half town/urgent, half rare/critical), units 1–3")
    print(f"{'policy':<32} {'kind':<5} {'enough donated before deadline':>31} {'msgs med':>9} {'p90':>5} "
          f"{'min to 1st donation med':>24} {'p90':>6}")
    for name in POLICIES:
        for kind in ("town", "rare", "all"):
            rs = results[name]["town"] + results[name]["rare"] if kind == "all" else results[name][kind]
            msgs = [r[0] for r in rs]
            firsts = [r[2] for r in rs if r[2] is not None]
            print(f"{name:<32} {kind:<5} {sum(r[1] for r in rs) / len(rs):>31.1%} {statistics.median(msgs):>9.0f} "
                  f"{pct(msgs, 0.9):>5.0f} {statistics.median(firsts):>24.1f} {pct(firsts, 0.9):>6.1f}")


if __name__ == "__main__":
    main()
