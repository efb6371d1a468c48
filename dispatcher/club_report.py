"""A club's figures for its lead (/stats, issue 16): what the steering committee accounts for.

DOMAIN.md §4: members managed by blood group with Rh− first; units given; the share of
350 ml units; repeat donors; exemplary donors recognised by count. Over the twelve
calendar months up to the report's day: donations per month by component, how members
answered the calls (said available, arrived, donated), the requests they helped and how
fast the first of them gave. Counts and names of the club's own members only: the lead
already sees them on /roster (DOMAIN.md §7).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.candidates import red_cell_days
from dispatcher.compat import ABO
from dispatcher.desk import MILESTONES
from dispatcher.report_months import month_index, month_starts, period
from ground.clock import as_utc
from ground.eligibility import DonorFacts, Rules, assess
from models import members, stats
from models.dispatch_tables import (
    OUTSTANDING_CONTACT_STATES,
    SAID_AVAILABLE_STATES,
    ContactState,
)

SOON_DAYS = 30  # "able to give within a month": whom a lead can plan a campaign around
# Rh− first, as the club manages its members (DOMAIN.md §4); unknown types last.
TYPE_ORDER: tuple[tuple[str | None, str | None], ...] = (
    *[(abo, rh) for rh in ("-", "+") for abo in ABO], (None, None))
NOT_DELIVERED = (*OUTSTANDING_CONTACT_STATES, ContactState.cancelled.value, ContactState.unreachable.value)
CAME = (ContactState.arrived.value, ContactState.donated.value, ContactState.deferred.value)
MILESTONES_SHOWN = 10


@dataclass(frozen=True)
class TypeLine:
    abo: str | None
    rh: str | None
    members: int
    eligible_today: int
    eligible_soon: int  # today or within SOON_DAYS


@dataclass(frozen=True)
class Milestone:
    donor_id: int
    name: str
    donations: int  # so far; the next one is a milestone
    next_milestone: int


@dataclass(frozen=True)
class ClubReport:
    club_id: int
    today: date
    months: tuple[date, ...]  # the chart's: the first day of each month, oldest first
    types: tuple[TypeLine, ...]
    first: date  # the period the figures cover, both days included
    last: date
    # per month (index into months) and component: donations
    donations: dict[str, tuple[int, ...]] = field(default_factory=dict)
    volume_known: int = 0  # donations with a recorded volume
    volume_350: int = 0  # of those, 350 ml or more (DOMAIN.md §4: the share the committees track)
    donors: int = 0  # members who gave in the period
    repeat_donors: int = 0  # of those, members who gave more than once
    calls: int = 0  # calls delivered to members
    said_available: int = 0
    came: int = 0  # arrived at the hospital (donated, deferred there, or arrived)
    donated: int = 0
    requests_helped: int = 0
    first_donation_minutes: tuple[float, ...] = ()  # per helped request: request posted → a member's first donation
    milestones: tuple[Milestone, ...] = ()

    @property
    def members(self) -> int:
        return sum(t.members for t in self.types)

    @property
    def total_donations(self) -> int:
        """In the period (the chart's series may reach further back)."""
        start = self.months.index(self.first.replace(day=1))
        return sum(sum(v[start:]) for v in self.donations.values())

    @property
    def median_first_donation(self) -> float | None:
        return statistics.median(self.first_donation_minutes) if self.first_donation_minutes else None


async def club_report(session: AsyncSession, club_id: int, today: date, rules: Rules, tz: tzinfo, *,
                      month: date | None = None) -> ClubReport:
    """The twelve months up to today; with ``month`` (its first day), the figures of that month alone,
    the chart of the twelve months up to it. Eligibility is always today's."""
    first, last = period(today, month)
    months = month_starts(last)
    types = await _types(session, club_id, today, rules)

    donations: dict[str, list[int]] = {}
    rows = await stats.club_donations(session, club_id, months[0], last)
    per_donor: dict[int, int] = {}
    known = big = 0
    for row in rows:
        donations.setdefault(row.component, [0] * len(months))[month_index(months, row.donated_on)] += 1
        if row.donated_on < first:
            continue  # in the chart, not in the period's figures
        per_donor[row.donor_id] = per_donor.get(row.donor_id, 0) + 1
        if row.volume_ml is not None:
            known += 1
            big += row.volume_ml >= 350

    until = datetime.combine(last + timedelta(days=1), time(), tz)
    contacts = [c for c in await stats.club_contacts(session, club_id, datetime.combine(first, time(), tz))
                if as_utc(c.asked_at) < until]
    quickest: dict[int, float] = {}  # per request helped: minutes to a member's first donation
    for c in contacts:
        if c.state == ContactState.donated.value and c.outcome_at is not None:
            minutes = (as_utc(c.outcome_at) - as_utc(c.request_created_at)).total_seconds() / 60
            quickest[c.request_id] = min(minutes, quickest.get(c.request_id, minutes))

    return ClubReport(
        club_id=club_id, today=today, months=months, types=types, first=first, last=last,
        donations={k: tuple(v) for k, v in sorted(donations.items())},
        volume_known=known, volume_350=big,
        donors=len(per_donor), repeat_donors=sum(1 for n in per_donor.values() if n > 1),
        calls=sum(1 for c in contacts if c.state not in NOT_DELIVERED),
        said_available=sum(1 for c in contacts if c.state in SAID_AVAILABLE_STATES),
        came=sum(1 for c in contacts if c.state in CAME),
        donated=sum(1 for c in contacts if c.state == ContactState.donated.value),
        requests_helped=len(quickest),
        first_donation_minutes=tuple(sorted(quickest.values())),
        milestones=await _milestones(session, club_id),
    )


async def _types(session: AsyncSession, club_id: int, today: date, rules: Rules) -> tuple[TypeLine, ...]:
    rows = await members.roster_facts(session, club_id)
    given = await red_cell_days(session, [row.id for row in rows], today)
    soon = today + timedelta(days=SOON_DAYS)
    counts = {key: [0, 0, 0] for key in TYPE_ORDER}
    for row in rows:
        key = (row.abo, row.rh) if row.abo and row.rh else (None, None)
        verdict = assess(DonorFacts.of(row, given.get(row.id, ())), today, rules)
        c = counts[key]
        c[0] += 1
        c[1] += verdict.eligible
        c[2] += verdict.eligible or (verdict.eligible_from is not None and verdict.eligible_from <= soon)
    return tuple(TypeLine(abo, rh, *c) for (abo, rh), c in counts.items() if c[0] or abo is not None)


async def _milestones(session: AsyncSession, club_id: int) -> tuple[Milestone, ...]:
    """Members whose next donation is a milestone (5, 10, … donations), nearest milestone first."""
    due = []
    for donor_id, name, count in await stats.donation_counts(session, club_id):
        if count + 1 in MILESTONES:
            due.append(Milestone(donor_id, name, count, count + 1))
    due.sort(key=lambda m: (-m.next_milestone, m.name.casefold()))
    return tuple(due[:MILESTONES_SHOWN])

