"""The one place that decides whether a donor is *likely* eligible to give.

RedReserve pre-filters; the blood facility screens on site (DOMAIN.md, preamble).
Rules and defaults: DOMAIN.md §2 (Circular 26/2013/TT-BYT, Art. 5–6):
18–60 years on the day of donation; women ≥ 42 kg, men ≥ 45 kg, apheresis ≥ 50 kg;
12 weeks (84 days) after whole blood or apheresis red cells, 2 weeks (14 days)
after apheresis platelets or plasma; the most recent donation's kind sets the wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

APHERESIS = frozenset({"platelets", "plasma"})


class Intervals(Protocol):
    """The waits after a donation (the settings, or a ranking context that copied them)."""

    @property
    def interval_whole_blood_days(self) -> int: ...

    @property
    def interval_apheresis_days(self) -> int: ...


class Rules(Protocol):
    min_age: int
    max_age: int
    min_weight_female_kg: float
    min_weight_male_kg: float
    min_weight_apheresis_kg: float
    interval_whole_blood_days: int
    interval_apheresis_days: int


@dataclass(frozen=True)
class DonorFacts:
    """What eligibility needs to know about a donor; built from a Donor row or a roster row."""

    abo: str | None
    rh: str | None
    sex: str | None
    birth_date: date | None
    weight_kg: float | None
    last_donation_date: date | None
    last_donation_component: str | None = None
    status: str = "active"
    status_until: date | None = None

    @classmethod
    def of(cls, donor: Any) -> "DonorFacts":  # a Donor row, or anything with its fields
        return cls(
            abo=donor.abo,
            rh=donor.rh,
            sex=donor.sex,
            birth_date=donor.birth_date,
            weight_kg=donor.weight_kg,
            last_donation_date=donor.last_donation_date,
            last_donation_component=donor.last_donation_component,
            status=donor.status,
            status_until=donor.status_until,
        )


# Reason codes, in the order a person would want to hear them.
UNKNOWN_TYPE = "unknown_type"
RETIRED = "retired"
PAUSED = "paused"
DEFERRED = "deferred"
TOO_YOUNG = "too_young"
TOO_OLD = "too_old"
UNDERWEIGHT = "underweight"
INTERVAL = "interval"


@dataclass(frozen=True)
class Assessment:
    eligible: bool
    reasons: tuple[str, ...]
    # The first day every time-bound reason has lapsed; None when a lasting reason
    # (unknown type, retired, too old, underweight) stands.
    eligible_from: date | None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def interval_days(last_component: str | None, rules: Intervals) -> int:
    """Art. 6.4: the kind of the most recent donation sets the wait."""
    if last_component in APHERESIS:
        return rules.interval_apheresis_days
    return rules.interval_whole_blood_days


def next_donation_date(facts: DonorFacts, rules: Rules) -> date | None:
    if facts.last_donation_date is None:
        return None
    return facts.last_donation_date + timedelta(days=interval_days(facts.last_donation_component, rules))


# Temporary deferrals (DOMAIN.md §2, Art. 5) by coarse category, never the diagnosis: the usual
# wait in days, None where the end date is typed (pregnancy, other). Leads and the desk use these.
DEFERRAL_DAYS: dict[str, int | None] = {"7d": 7, "4w": 28, "6m": 182, "12m": 365, "pregnancy": None,
                                        "other": None}
# A deferral in one of the fixed categories ends within 12 months; "other" may run longer but not for
# years (a typo such as 2062 is refused).
MAX_DEFERRAL_DAYS = 365
MAX_OTHER_DEFERRAL_DAYS = 2 * 365


class DeferralError(ValueError):
    """``code``: unknown_category | past | too_long."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def deferral_until(category: str, today: date, until: date | None = None) -> date:
    """The first day a donor deferred today in ``category`` may give again; ``until`` overrides the usual wait.

    Raises DeferralError for an unknown category, a day not after today, or a day beyond 12 months
    in a fixed category (beyond two years for "other").
    """
    if category not in DEFERRAL_DAYS:
        raise DeferralError("unknown_category")
    days = DEFERRAL_DAYS[category]
    if until is None:
        if days is None:
            raise DeferralError("past")  # a typed category needs its date
        until = today + timedelta(days=days)
    if until <= today:
        raise DeferralError("past")
    limit = MAX_DEFERRAL_DAYS if category not in ("other", "pregnancy") else MAX_OTHER_DEFERRAL_DAYS
    if until > today + timedelta(days=limit):
        raise DeferralError("too_long")
    return until


def interval_conflict(last_date: date | None, last_component: str | None, when: date, component: str,
                      rules: Rules) -> date | None:
    """A donation of ``component`` on ``when`` against the last recorded one (Art. 6.4, the earlier
    donation's kind sets the wait): None when the two are far enough apart, else the first day the
    later of them could have been."""
    if last_date is None or when == last_date:
        return None
    if when > last_date:
        first = last_date + timedelta(days=interval_days(last_component, rules))
        return first if when < first else None
    # A donation recorded late, before the last one: then the last one had to wait after it.
    first = when + timedelta(days=interval_days(component, rules))
    return first if last_date < first else None


ALLOWED_VOLUMES_ML = (250, 350, 450)


def max_volume_ml(weight_kg: float | None) -> int:
    """DOMAIN.md §2: 42–<45 kg at most 250 ml, ≥ 45 kg 350 ml, ≥ 50 kg 450 ml.

    An unknown weight allows the largest: the facility weighs every donor on site.
    """
    if weight_kg is None or weight_kg >= 50:
        return 450
    return 350 if weight_kg >= 45 else 250


def min_weight(sex: str | None, component: str, rules: Rules) -> float:
    if component in APHERESIS:
        return rules.min_weight_apheresis_kg
    if sex == "F":
        return rules.min_weight_female_kg
    # Unknown sex takes the stricter men's minimum: a pre-filter must not call
    # someone the facility will turn away.
    return rules.min_weight_male_kg


def assess_age(birth: date, on: date, rules: Rules) -> Assessment:
    """The age rule alone: registration asks it before the donor's type or weight is known."""
    age = age_on(birth, on)
    if age < rules.min_age:
        return Assessment(False, (TOO_YOUNG,), add_years(birth, rules.min_age))
    if age > rules.max_age:
        return Assessment(False, (TOO_OLD,), None)
    return Assessment(True, (), on)


def assess(facts: DonorFacts, on: date, rules: Rules, component: str = "whole_blood") -> Assessment:
    """Is the donor likely able to give ``component`` on day ``on``, and if not, from when?"""
    reasons: list[str] = []
    lasting = False
    waits: list[date] = []

    if facts.abo is None or facts.rh is None:
        reasons.append(UNKNOWN_TYPE)
        lasting = True
    if facts.status == "retired":
        reasons.append(RETIRED)
        lasting = True
    elif facts.status in ("paused", "deferred"):
        if facts.status_until is None or facts.status_until > on:
            reasons.append(PAUSED if facts.status == "paused" else DEFERRED)
            if facts.status_until is None:
                lasting = True
            else:
                waits.append(facts.status_until)
    if facts.birth_date is not None:
        by_age = assess_age(facts.birth_date, on, rules)
        reasons += by_age.reasons
        if TOO_OLD in by_age.reasons:
            lasting = True
        elif by_age.eligible_from is not None and not by_age.eligible:
            waits.append(by_age.eligible_from)
    if facts.weight_kg is not None and facts.weight_kg < min_weight(facts.sex, component, rules):
        reasons.append(UNDERWEIGHT)
        lasting = True
    next_date = next_donation_date(facts, rules)
    if next_date is not None and next_date > on:
        reasons.append(INTERVAL)
        waits.append(next_date)

    if not reasons:
        return Assessment(True, (), on)
    return Assessment(False, tuple(reasons), None if lasting else max(waits))
