"""The rows behind a club's figures (/stats, issue 16): donations, answers to calls, milestones.

Plain rows of one club's members over a period; the counting is done by the caller
(dispatcher.club_report), in Python, so that SQLite and PostgreSQL need no dialect's
date functions. A club's members are its roster (role "member"), as on /roster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.dispatch_tables import SAID_AVAILABLE_STATES, BloodRequest, ContactState, RequestContact, RequestWave
from models.tables import Club, ClubMembership, Donation, Donor, Hospital, MemberRole


def _members(club_id: int):  # the donor ids on the club's roster, as a subquery
    return (select(ClubMembership.donor_id)
            .where(ClubMembership.club_id == club_id, ClubMembership.role == MemberRole.member.value,
                   col(ClubMembership.donor_id).is_not(None)))


@dataclass(frozen=True)
class DonationRow:
    donor_id: int
    donated_on: date
    component: str
    volume_ml: int | None


@dataclass(frozen=True)
class ContactRow:
    request_id: int
    state: str
    asked_at: datetime
    answered_at: datetime | None
    arrived_at: datetime | None
    outcome_at: datetime | None
    request_created_at: datetime


async def club_donations(session: AsyncSession, club_id: int, first: date, last: date) -> list[DonationRow]:
    """Every donation its members made from ``first`` to ``last`` (inclusive), recorded anywhere."""
    rows = (await session.exec(
        select(col(Donation.donor_id), col(Donation.donated_on), col(Donation.component), col(Donation.volume_ml))
        .where(col(Donation.donor_id).in_(_members(club_id)),
               col(Donation.donated_on) >= first, col(Donation.donated_on) <= last))).all()
    return [DonationRow(d, day, comp, ml) for d, day, comp, ml in rows if d is not None]


async def club_contacts(session: AsyncSession, club_id: int, since: datetime) -> list[ContactRow]:
    """The calls its members received since ``since``, with the request's creation time."""
    rows = (await session.exec(
        select(RequestContact, col(BloodRequest.created_at))
        .join(BloodRequest, col(BloodRequest.id) == RequestContact.request_id)
        .where(col(RequestContact.donor_id).in_(_members(club_id)), col(RequestContact.asked_at) >= since))).all()
    return [ContactRow(c.request_id, c.state, c.asked_at, c.answered_at, c.arrived_at, c.outcome_at, created)
            for c, created in rows]


async def donation_counts(session: AsyncSession, club_id: int) -> list[tuple[int, str, int]]:
    """(donor id, name, donations so far) of every member, for the milestones."""
    rows = (await session.exec(
        select(col(Donor.id), col(Donor.full_name), col(Donor.donation_count))
        .where(col(Donor.id).in_(_members(club_id))))).all()
    return [(i, name, count) for i, name, count in rows if i is not None]


@dataclass(frozen=True)
class RequestRow:
    id: int
    created_at: datetime
    deadline: datetime
    urgency: str
    component: str
    units: int
    state: str
    abo: str = ""
    rh: str = ""


@dataclass(frozen=True)
class OutcomeRow:
    request_id: int
    donor_id: int | None
    state: str
    outcome_at: datetime | None


async def hospital_requests(session: AsyncSession, hospital_id: int, since: datetime) -> list[RequestRow]:
    """The requests the hospital posted since ``since``."""
    rows = (await session.exec(
        select(BloodRequest).where(BloodRequest.hospital_id == hospital_id, col(BloodRequest.created_at) >= since)
        .order_by(col(BloodRequest.created_at)))).all()
    return [RequestRow(r.id, r.created_at, r.deadline, r.urgency, r.component, r.units, r.state, r.abo, r.rh)
            for r in rows if r.id is not None]


async def hospital_outcomes(session: AsyncSession, hospital_id: int, since: datetime) -> list[OutcomeRow]:
    """The calls of those requests that reached an answer the hospital acted on (the desk's marks and more)."""
    rows = (await session.exec(
        select(RequestContact)
        .join(BloodRequest, col(BloodRequest.id) == RequestContact.request_id)
        .where(BloodRequest.hospital_id == hospital_id, col(BloodRequest.created_at) >= since))).all()
    return [OutcomeRow(c.request_id, c.donor_id, c.state, c.outcome_at) for c in rows]


async def clubs_of(session: AsyncSession, donor_ids: list[int]) -> dict[int, list[str]]:
    """The names of the clubs each donor is a member of."""
    if not donor_ids:
        return {}
    rows = (await session.exec(
        select(col(ClubMembership.donor_id), col(Club.name))
        .join(Club, col(Club.id) == ClubMembership.club_id)
        .where(col(ClubMembership.donor_id).in_(donor_ids),
               ClubMembership.role == MemberRole.member.value))).all()
    out: dict[int, list[str]] = {}
    for donor_id, name in rows:
        if donor_id is not None:
            out.setdefault(donor_id, []).append(name)
    return out


@dataclass(frozen=True)
class RequestTimes:
    """One request's moments, for its after-action picture: when asked, answered, arrived, given."""

    created_at: datetime
    deadline: datetime
    units: int
    asks: tuple[tuple[datetime, int], ...]  # (wave fired, donors asked)
    said_available: tuple[datetime, ...]
    arrived: tuple[datetime, ...]
    donated: tuple[datetime, ...]


async def request_times(session: AsyncSession, request_id: int) -> RequestTimes | None:
    request = await session.get(BloodRequest, request_id)
    if request is None:
        return None
    waves = (await session.exec(select(col(RequestWave.fired_at), col(RequestWave.asked))
                                .where(RequestWave.request_id == request_id))).all()
    contacts = (await session.exec(select(RequestContact).where(RequestContact.request_id == request_id))).all()
    said = [c.answered_at for c in contacts if c.state in SAID_AVAILABLE_STATES and c.answered_at is not None]
    came = [c.arrived_at for c in contacts if c.arrived_at is not None]
    gave = [c.outcome_at for c in contacts if c.state == ContactState.donated.value and c.outcome_at is not None]
    return RequestTimes(request.created_at, request.deadline, request.units,
                        tuple(sorted((at, asked) for at, asked in waves)), tuple(sorted(said)), tuple(sorted(came)),
                        tuple(sorted(gave)))


@dataclass(frozen=True)
class DonationLine:
    donated_on: date
    full_name: str
    phone: str
    abo: str | None
    rh: str | None
    component: str
    volume_ml: int | None
    where: str  # the hospital's name, or the place the donor typed


async def club_donation_lines(session: AsyncSession, club_id: int, first: date, last: date) -> list[DonationLine]:
    """The club's members' donations from ``first`` to ``last``, oldest first, with who gave and where."""
    rows = (await session.exec(
        select(Donation, Donor)
        .join(Donor, col(Donor.id) == Donation.donor_id)
        .where(col(Donation.donor_id).in_(_members(club_id)),
               col(Donation.donated_on) >= first, col(Donation.donated_on) <= last)
        .order_by(col(Donation.donated_on), col(Donation.id)))).all()
    hospitals = {h.id: h.name for h in (await session.exec(select(Hospital))).all()}
    return [DonationLine(d.donated_on, donor.full_name, donor.phone, donor.abo, donor.rh, d.component, d.volume_ml,
                         hospitals.get(d.hospital_id, "") if d.hospital_id else d.place)
            for d, donor in rows]


async def new_members(session: AsyncSession, club_id: int, since: datetime, until: datetime | None = None) -> int:
    """Members who joined the club's roster since ``since`` (and before ``until``, when given)."""
    joined = col(ClubMembership.created_at)
    rows = (await session.exec(
        select(col(ClubMembership.id)).where(ClubMembership.club_id == club_id,
                                             ClubMembership.role == MemberRole.member.value,
                                             joined >= since, *(() if until is None else (joined < until,))))).all()
    return len(rows)
