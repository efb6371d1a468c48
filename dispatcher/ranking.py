"""The ranking score, with the reasons for each donor's place.

Order (lexicographic, best first):

1. *group*: 0 = can reach the hospital before the deadline, 1 = location unknown,
   2 = cannot arrive in time (those go last: DOMAIN.md §6, travel dominates);
2. *tier*: compatibility tier from :mod:`dispatcher.compat` (identical type first, DOMAIN.md §1);
3. *cost* in minutes-equivalent, lower is better::

       cost = travel_min
              - response_weight_min × (answer_rate - prior_mean)
              - rest_weight_min × min(days_beyond_interval, 365) / 365

   ``travel_min`` = great-circle km × road_factor ÷ speed_kmh × 60 (all configurable);
   ``answer_rate`` is the donor's share of asks answered, smoothed with a Beta prior
   whose mean is the field's "reads it in time" rate (DOMAIN.md §5), so a new donor
   scores exactly ``prior_mean``: neither favoured nor punished. The rest term
   prefers donors well past their minimum interval (they are also less likely to be
   deferred on site); a donor who never gave counts as fully rested.

``score`` folds the three into one number (group × 1e6 + tier × 1e4 + cost) so that a
board, a test or the SQL pre-selection can compare donors with one value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from collections.abc import Iterable
from typing import Any, NamedTuple

from ground.config import DispatchConfig
from ground.eligibility import Rules, interval_days
from models.geo import haversine_km

DONOR_PRIOR_STRENGTH = 4.0  # pseudo-asks behind a donor's own answer rate: 5 of 6 matters, 1 of 1 barely
GROUP_REACHABLE, GROUP_UNKNOWN_LOCATION, GROUP_LATE = 0, 1, 2
LATE_SCORE = GROUP_LATE * 1e6  # a score at or above this: cannot arrive before the deadline


class Reason(NamedTuple):
    # tier | distance | no_location | late | last_gave | never_gave | answered | new_donor
    # | identical_short (a compatible type, asked because too few of the identical type can arrive in time)
    code: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """What the ranker needs to know about one eligible donor (built by dispatcher.candidates)."""

    donor_id: int
    abo: str
    rh: str
    tier: int
    tier_kind: str
    lat: float | None
    lon: float | None
    last_donation_date: date | None = None
    last_donation_component: str | None = None
    asked: int = 0
    answered: int = 0
    telegram_id: int | None = None
    locale: str | None = None
    # Off Telegram: her first agreed channel this request may use (a donor_channel row's id).
    channel_id: int | None = None


@dataclass(frozen=True)
class RankedDonor:
    donor_id: int
    tier: int
    group: int
    distance_km: float | None
    travel_min: float | None
    cost: float
    score: float
    reasons: tuple[Reason, ...]
    candidate: Candidate = field(compare=False, repr=False)

    def describe(self) -> str:
        return render_reasons(self.reasons)

    def reasons_json(self) -> list[list[Any]]:
        return [[r.code, r.params] for r in self.reasons]


@dataclass(frozen=True)
class RankContext:
    hospital_lat: float
    hospital_lon: float
    now: datetime
    today: date  # local calendar day (donation dates are local dates)
    deadline: datetime
    # No defaults here: they live in ground.config ([dispatch], [eligibility]); build with ``of``.
    road_factor: float
    speed_kmh: float
    prep_min: float
    response_weight_min: float
    rest_weight_min: float
    prior_answer_rate: float
    interval_whole_blood_days: int
    interval_apheresis_days: int

    @classmethod
    def of(cls, *, hospital_lat: float, hospital_lon: float, now: datetime, today: date, deadline: datetime,
           dispatch: DispatchConfig, eligibility: Rules) -> "RankContext":
        return cls(
            hospital_lat, hospital_lon, now, today, deadline,
            road_factor=dispatch.road_factor, speed_kmh=dispatch.speed_kmh, prep_min=dispatch.prep_min,
            response_weight_min=dispatch.response_weight_min, rest_weight_min=dispatch.rest_weight_min,
            prior_answer_rate=dispatch.rates.reads,
            interval_whole_blood_days=eligibility.interval_whole_blood_days,
            interval_apheresis_days=eligibility.interval_apheresis_days,
        )

    def travel_min(self, km: float) -> float:
        return km * self.road_factor / self.speed_kmh * 60.0

    def minutes_left(self) -> float:
        return (self.deadline - self.now).total_seconds() / 60.0 - self.prep_min

    def reach_km(self) -> float:
        """The farthest great-circle distance from which a donor arrives before the deadline."""
        return max(self.minutes_left(), 0.0) / 60.0 * self.speed_kmh / self.road_factor


def answer_rate(asked: int, answered: int, prior_mean: float) -> float:
    a = prior_mean * DONOR_PRIOR_STRENGTH
    return (answered + a) / (asked + DONOR_PRIOR_STRENGTH)


# (group, km, travel_min, rest_share, cost): see ``place``.
Placement = tuple[int, float | None, float | None, float, float]


def place(c: Candidate, ctx: RankContext) -> Placement:
    """(group, km, travel_min, rest_share, cost): the numbers behind a donor's place, without the reasons."""
    return place_of(c.lat, c.lon, c.last_donation_date, c.last_donation_component, c.asked, c.answered, ctx)


def place_of(lat: float | None, lon: float | None, last_donation_date: date | None,
             last_donation_component: str | None, asked: int, answered: int,
             ctx: RankContext) -> tuple[int, float | None, float | None, float, float]:
    """:func:`place` from the bare facts, so the candidate search can score rows before building candidates."""
    if lat is None or lon is None:
        km = travel = None
        group = GROUP_UNKNOWN_LOCATION
        travel_cost = 0.0
    else:
        km = haversine_km(ctx.hospital_lat, ctx.hospital_lon, lat, lon)
        travel = travel_cost = ctx.travel_min(km)
        group = GROUP_LATE if travel > ctx.minutes_left() else GROUP_REACHABLE
    if last_donation_date is None:
        rest_share = 1.0
    else:
        beyond = (ctx.today - last_donation_date).days - interval_days(last_donation_component, ctx)
        rest_share = min(max(beyond, 0), 365) / 365
    rate = answer_rate(asked, answered, ctx.prior_answer_rate)
    cost = (travel_cost
            - ctx.response_weight_min * (rate - ctx.prior_answer_rate)
            - ctx.rest_weight_min * rest_share)
    return group, km, travel, rest_share, min(max(cost, -999.0), 9999.0)


def rank_one(c: Candidate, ctx: RankContext, placed: Placement | None = None) -> RankedDonor:
    group, km, travel, _, cost = placed or place(c, ctx)
    reasons = [Reason("tier", {"type": f"{c.abo}{c.rh}", "kind": c.tier_kind, "tier": c.tier})]
    if km is None or travel is None:
        reasons.append(Reason("no_location", {}))
    else:
        reasons.append(Reason("distance", {"km": round(km, 1), "min": round(travel)}))
        if group == GROUP_LATE:
            reasons.append(Reason("late", {"min": math.ceil(travel - ctx.minutes_left())}))
    if c.last_donation_date is None:
        reasons.append(Reason("never_gave", {}))
    else:
        reasons.append(Reason("last_gave", {"days": (ctx.today - c.last_donation_date).days}))
    reasons.append(Reason("answered", {"answered": c.answered, "asked": c.asked}) if c.asked
                   else Reason("new_donor", {}))
    score = group * 1e6 + c.tier * 1e4 + cost  # keep LATE_SCORE in step
    return RankedDonor(c.donor_id, c.tier, group, km, travel, cost, score, tuple(reasons), c)


def with_reason(r: RankedDonor, reason: Reason) -> RankedDonor:
    """The same place, one more reason (the engine knows why a stage of the search was reached)."""
    return replace(r, reasons=r.reasons + (reason,))


def rank_donors(candidates: Iterable[Candidate], ctx: RankContext, limit: int | None = None) -> list[RankedDonor]:
    """Score and sort; ties go to the lower donor id so that the order is reproducible.

    Only the first ``limit`` get their reasons written out.
    """
    keyed = []
    for c in candidates:
        p = place(c, ctx)
        keyed.append((p[0] * 1e6 + c.tier * 1e4 + p[4], c.donor_id, c, p))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [rank_one(c, ctx, p) for _, _, c, p in keyed[:limit]]


_KIND = {
    "exact": "exact",
    "compatible": "compatible",
    "rh_negative": "Rh− last resort",
    "rh_positive_allowed": "Rh+ allowed by staff",
}


def _ago(days: int) -> str:
    if days < 60:
        return f"{days} days ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"


def render_reasons(reasons: Iterable[Reason]) -> str:
    """Plain English for logs, tests and the bench; the bot localizes from the codes."""
    parts = []
    for code, p in reasons:
        if code == "tier":
            parts.append(f"{p['type']} {_KIND.get(p['kind'], p['kind'])}")
        elif code == "distance":
            parts.append(f"{p['km']} km ≈ {p['min']} min")
        elif code == "no_location":
            parts.append("location unknown")
        elif code == "late":
            parts.append(f"arrives ≈ {p['min']} min after the deadline")
        elif code == "last_gave":
            parts.append(f"last gave {_ago(p['days'])}")
        elif code == "never_gave":
            parts.append("no donation recorded")
        elif code == "answered":
            parts.append(f"answered {p['answered']} of {p['asked']}")
        elif code == "new_donor":
            parts.append("not asked before")
        elif code == "identical_short":
            parts.append(f"asked because only {p['found']} {p['type']} can arrive in time")
    return ", ".join(parts)
