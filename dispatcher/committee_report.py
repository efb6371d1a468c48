"""The steering committee's month-by-month view across every club and hospital (issue 16, admin).

DOMAIN.md §4: units against plan, the share of 350 ml units, repeat donors over 50 %,
members by group with Rh− counted apart, new members. Built from the same per-club and
per-hospital reports the leads and staff see, so every total is the sum of what they see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.club_report import ClubReport, club_report
from dispatcher.hospital_report import HospitalReport, hospital_report
from dispatcher.report_months import period
from ground.eligibility import Rules
from models import directory, stats


@dataclass(frozen=True)
class ClubLine:
    name: str
    report: ClubReport
    new_members: int

    @property
    def rh_negative(self) -> int:
        return sum(t.members for t in self.report.types if t.rh == "-")


@dataclass(frozen=True)
class CommitteeReport:
    first: date  # the period the figures cover, both days included
    last: date
    today: date
    clubs: tuple[ClubLine, ...]
    hospitals: tuple[tuple[str, HospitalReport], ...]

    def total(self, field: str) -> int:
        return sum(getattr(c.report, field) for c in self.clubs)

    @property
    def members(self) -> int:
        return sum(c.report.members for c in self.clubs)

    @property
    def rh_negative(self) -> int:
        return sum(c.rh_negative for c in self.clubs)

    @property
    def new_members(self) -> int:
        return sum(c.new_members for c in self.clubs)

    @property
    def donations(self) -> int:
        return sum(c.report.total_donations for c in self.clubs)

    def hospital_total(self, field: str) -> int:
        return sum(getattr(h, field) for _name, h in self.hospitals)


async def committee_report(session: AsyncSession, now: datetime, rules: Rules, tz: tzinfo, *,
                           month: date | None = None) -> CommitteeReport:
    """The twelve months up to today; with ``month`` (its first day), that month's figures."""
    today = now.astimezone(tz).date()
    first, last = period(today, month)
    since = datetime.combine(first, time(), tz)
    until = None if month is None else datetime.combine(last + timedelta(days=1), time(), tz)
    clubs = []
    for club in await directory.list_clubs(session):
        assert club.id is not None  # read from the database
        clubs.append(ClubLine(club.name, await club_report(session, club.id, today, rules, tz, month=month),
                              await stats.new_members(session, club.id, since, until)))
    hospitals = []
    for hospital in await directory.list_hospitals(session):
        assert hospital.id is not None
        hospitals.append((hospital.name, await hospital_report(session, hospital.id, now, tz, month=month)))
    return CommitteeReport(first, last, today, tuple(clubs), tuple(hospitals))
