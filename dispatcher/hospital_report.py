"""A hospital's figures for its staff (/stats, issue 16): did the blood come in time?

Over the twelve calendar months up to the report's day: requests per month by urgency
and by component; the share of decided requests whose units were all donated before
the deadline (the hospital's question, not taps on "I'm coming"); minutes from posting
to the first donation (median, p90); units received; how often a donor who said she
was coming did not come, and how often one who came was deferred at screening; and the
clubs whose members gave. Counts and club names only, never a donor (DOMAIN.md §7).

A request counts as *decided* once its deadline has passed or its units are in; one
still running is shown as running. A request the staff cancelled is counted apart:
it says nothing about whether donors came.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.report_months import month_index, month_starts, period
from ground.clock import as_utc
from models import stats
from models.dispatch_tables import ContactState, RequestState, Urgency

URGENCIES = tuple(u.value for u in Urgency)


@dataclass(frozen=True)
class HospitalReport:
    hospital_id: int
    today: date
    months: tuple[date, ...]  # the chart's
    first: date  # the period the figures cover, both days included
    last: date
    by_urgency: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per month, cancelled ones included
    by_component: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    cancelled: int = 0
    running: int = 0
    decided: int = 0  # deadline passed or units all in, not cancelled
    in_time: int = 0  # of those, every unit donated before the deadline
    units_asked: int = 0
    units_received: int = 0
    units_by_month: tuple[int, ...] = ()
    first_donation_minutes: tuple[float, ...] = ()
    said_coming: int = 0  # donors whose coming the desk settled: donated, deferred or no-show
    no_shows: int = 0
    came: int = 0  # donated or deferred
    deferred: int = 0
    clubs: tuple[tuple[str, int], ...] = ()  # (club, units its members gave), most first

    @property
    def median_first_donation(self) -> float | None:
        return statistics.median(self.first_donation_minutes) if self.first_donation_minutes else None

    @property
    def p90_first_donation(self) -> float | None:
        values = self.first_donation_minutes
        return values[max(0, math.ceil(0.9 * len(values)) - 1)] if values else None  # nearest rank


async def hospital_report(session: AsyncSession, hospital_id: int, now: datetime, tz: tzinfo, *,
                          month: date | None = None) -> HospitalReport:
    """The twelve months up to today; with ``month`` (its first day), the figures of the requests
    posted that month, the chart of the twelve months up to it."""
    today = now.astimezone(tz).date()
    first_day, last_day = period(today, month)
    months = month_starts(last_day)
    until = datetime.combine(last_day + timedelta(days=1), time(), tz)
    start = datetime.combine(first_day, time(), tz)
    charted = [r for r in await stats.hospital_requests(session, hospital_id, datetime.combine(months[0], time(), tz))
               if as_utc(r.created_at) < until]
    requests = [r for r in charted if as_utc(r.created_at) >= start]
    in_period = {r.id for r in requests}
    outcomes = await stats.hospital_outcomes(session, hospital_id, datetime.combine(months[0], time(), tz))

    donated_at: dict[int, list[datetime]] = {}
    donors: Counter[int] = Counter()
    settled = Counter(o.state for o in outcomes if o.request_id in in_period)
    for o in outcomes:
        if o.state == ContactState.donated.value and o.outcome_at is not None:
            donated_at.setdefault(o.request_id, []).append(as_utc(o.outcome_at))
            if o.donor_id is not None and o.request_id in in_period:
                donors[o.donor_id] += 1

    by_urgency = {u: [0] * len(months) for u in URGENCIES}
    units_by_month = [0] * len(months)
    for r in charted:  # the chart: the twelve months up to the period's end
        index = month_index(months, as_utc(r.created_at).astimezone(tz).date())
        by_urgency.setdefault(r.urgency, [0] * len(months))[index] += 1
        units_by_month[index] += len(donated_at.get(r.id, []))
    by_component: Counter[str] = Counter()
    cancelled = running = decided = in_time = asked = received = 0
    first: list[float] = []
    for r in requests:  # the figures: the period's requests
        created = as_utc(r.created_at)
        by_component[r.component] += 1
        gifts = sorted(donated_at.get(r.id, []))
        received += len(gifts)
        if gifts:
            first.append((gifts[0] - created).total_seconds() / 60)
        if r.state == RequestState.cancelled.value:
            cancelled += 1
            continue
        asked += r.units
        deadline = as_utc(r.deadline)
        if len(gifts) >= r.units:
            decided += 1
            in_time += gifts[r.units - 1] <= deadline
        elif deadline <= now:
            decided += 1
        else:
            running += 1

    names = await stats.clubs_of(session, list(donors))
    clubs: Counter[str] = Counter()
    for donor_id, units in donors.items():
        for name in names.get(donor_id, []):
            clubs[name] += units
    no_show, deferred, gave = (settled[s.value] for s in
                               (ContactState.no_show, ContactState.deferred, ContactState.donated))
    return HospitalReport(
        hospital_id=hospital_id, today=today, months=months, first=first_day, last=last_day,
        by_urgency={u: tuple(v) for u, v in by_urgency.items()}, by_component=dict(by_component),
        requests=len(requests), cancelled=cancelled, running=running, decided=decided, in_time=in_time,
        units_asked=asked, units_received=received, units_by_month=tuple(units_by_month),
        first_donation_minutes=tuple(sorted(first)),
        said_coming=gave + deferred + no_show, no_shows=no_show, came=gave + deferred, deferred=deferred,
        clubs=tuple(sorted(clubs.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
