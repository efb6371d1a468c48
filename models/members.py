"""A club's roster as its leads see it: who is on it, and adding, editing and removing members.

The bot's lead journeys call these with the update's session. Each change commits
in one transaction together with its audit row, which names ids and fields, never
a value (DOMAIN.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import donors
from models.audit import audit
from models.geo import placed
from models.tables import Club, ClubMembership, Donor, MemberRole

# The facts eligibility needs, read as plain columns: no ORM objects for a whole roster.
FACT_COLUMNS = tuple(col(c) for c in (
    Donor.abo, Donor.rh, Donor.sex, Donor.birth_date, Donor.weight_kg, Donor.last_donation_date,
    Donor.last_donation_component, Donor.status, Donor.status_until,
))

_ROSTER_JOIN = col(ClubMembership.donor_id) == Donor.id


def _on_roster(club_id: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return col(ClubMembership.club_id) == club_id, col(ClubMembership.role) == MemberRole.member.value


@dataclass(frozen=True)
class NewMember:
    """What a lead typed about someone new to RedReserve, besides the phone; the rest stays unknown."""

    full_name: str
    abo: str | None = None
    rh: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    weight_kg: float | None = None
    last_donation_date: date | None = None


# --- reading ---------------------------------------------------------------------------


async def club_name(session: AsyncSession, club_id: int) -> str | None:
    return (await session.exec(select(Club.name).where(col(Club.id) == club_id))).first()


async def named_clubs(session: AsyncSession, club_ids: list[int]) -> list[tuple[int, str]]:
    """(id, name) of these clubs, by name."""
    rows = (await session.exec(
        select(col(Club.id), Club.name).where(col(Club.id).in_(club_ids)).order_by(col(Club.name)))).all()
    return cast(list[tuple[int, str]], list(rows))  # a primary key is never NULL


async def roster_facts(session: AsyncSession, club_id: int) -> list:
    """Every member's eligibility facts and Telegram id: one query for a whole roster."""
    return list((await session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() for at most four columns
            col(Donor.id), *FACT_COLUMNS, col(Donor.telegram_id)).join(ClubMembership, _ROSTER_JOIN)
        .where(*_on_roster(club_id)))).all())


async def members_of_type(session: AsyncSession, club_id: int, abo: str, rh: str) -> list:
    """Id, name, phone and eligibility facts of the members of one exact blood type."""
    return list((await session.exec(
        select(col(Donor.id), col(Donor.full_name), col(Donor.phone), *FACT_COLUMNS)
        .join(ClubMembership, _ROSTER_JOIN)
        .where(*_on_roster(club_id), col(Donor.abo) == abo, col(Donor.rh) == rh))).all())


async def roster_member(session: AsyncSession, club_id: int, donor_id: int) -> Donor | None:
    """The donor, if they are on this club's roster."""
    return (await session.exec(
        select(Donor).join(ClubMembership, _ROSTER_JOIN).where(col(Donor.id) == donor_id, *_on_roster(club_id))
    )).first()


async def donor_id_by_phone(session: AsyncSession, phone: str) -> int | None:
    return (await session.exec(select(Donor.id).where(col(Donor.phone) == phone))).first()


async def in_another_club(session: AsyncSession, donor_id: int, club_id: int) -> bool:
    return (await session.exec(select(ClubMembership.id).where(
        col(ClubMembership.donor_id) == donor_id, col(ClubMembership.club_id) != club_id).limit(1))).first() is not None


# --- changing --------------------------------------------------------------------------


async def add_member(session: AsyncSession, club_id: int, phone: str, new: NewMember | None, *,
                     existing_id: int | None, actor: int, now: datetime) -> Donor | None:
    """One transaction: the donor (new, or the one already known by that phone), the roster
    entry, the audit row. None when the phone meanwhile landed on this roster or on another donor.

    ``existing_id`` is the donor the lead was told already has this phone, whose details
    stay as they are; ``new`` is what the lead typed when nobody had it (else None).
    """
    existing = (await session.exec(select(Donor).where(col(Donor.phone) == phone))).first()
    if existing is not None:
        assert existing.id is not None  # a row read from the database
        if existing.id != existing_id or await roster_member(session, club_id, existing.id) is not None:
            return None
    donor = existing
    if donor is None:
        if new is None:  # the known donor left RedReserve meanwhile: nothing typed to add instead
            return None
        club = await session.get(Club, club_id)
        assert club is not None  # the lead's own club: clubs are never deleted
        donor = Donor(
            full_name=new.full_name, phone=phone, abo=new.abo, rh=new.rh, sex=new.sex,
            birth_date=new.birth_date, weight_kg=new.weight_kg, last_donation_date=new.last_donation_date,
            # No pin from a lead: the club's location stands in, marked as approximate (as on import).
            **placed(club.lat, club.lon, approx=True),
            # Consent is the donor's to give, in the bot, when they link; a lead cannot give it.
            created_at=now, updated_at=now,
        )
        session.add(donor)
        await session.flush()
    session.add(ClubMembership(club_id=club_id, donor_id=donor.id, role=MemberRole.member.value, created_at=now))
    audit(session, actor, "member.add", f"donor:{donor.id}", f"club:{club_id}" + (" existing" if existing else ""),
          at=now)
    await session.commit()
    return donor


async def edit_member(session: AsyncSession, donor: Donor, club_id: int, field: str, *, actor: int,
                      now: datetime, **changes: Any) -> None:
    """A lead's edit: the change and an audit row naming the field, never its value (DOMAIN.md §7)."""
    for name, value in changes.items():
        setattr(donor, name, value)
    donor.updated_at = now
    session.add(donor)
    audit(session, actor, "member.edit", f"donor:{donor.id}", f"club:{club_id} field={field}", at=now)
    await session.commit()


async def remove_member(session: AsyncSession, club_id: int, donor_id: int, *, actor: int, now: datetime) -> bool:
    """Take a donor off one club's roster. Returns True when the donor's record was deleted too.

    A lead manages the club's list, not the person. A donor linked to Telegram
    registered and consented themselves: they keep their account (and may /forget
    it themselves). A donor on another club's roster stays for that club. But a
    donor imported or added by a lead, never linked, and now on no roster is a
    record nobody can see, manage or reach, holding health data the person never
    consented to: DOMAIN.md §7 (minimise) says delete it. That goes through
    :func:`models.donors.forget`, so donation counts stay, anonymous.
    """
    await session.exec(delete(ClubMembership).where(
        col(ClubMembership.club_id) == club_id, col(ClubMembership.donor_id) == donor_id,
        col(ClubMembership.role) == MemberRole.member.value))
    audit(session, actor, "member.remove", f"donor:{donor_id}", f"club:{club_id}", at=now)
    linked = (await session.exec(select(Donor.telegram_id).where(col(Donor.id) == donor_id))).first() is not None
    if not linked and not await in_another_club(session, donor_id, club_id):
        await donors.forget(session, donor_id, now=now, actor=actor)  # commits the removal with it
        return True
    await session.commit()
    return False


async def ensure_member(session: AsyncSession, club_id: int, donor_id: int) -> None:
    """Put the donor on the club's roster unless already there; the caller commits."""
    exists = (await session.exec(select(ClubMembership.id).where(
        ClubMembership.club_id == club_id, ClubMembership.donor_id == donor_id))).first()
    if exists is None:
        session.add(ClubMembership(club_id=club_id, donor_id=donor_id, role=MemberRole.member.value))
