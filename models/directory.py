"""Clubs, hospitals, invites and roles: who may do what, changed in one place.

The CLI and the bot's admin commands both call these functions. Each takes the
caller's session and commits its change together with an audit row, because
DOMAIN.md §7 asks who changed roles; audit rows name ids, never personal data.
Bad input raises :class:`DirectoryError` carrying a :class:`Text` the caller renders.

``actor`` is a Telegram id when a person acted through the bot, else a name
such as ``"cli"``.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from typing import TypeVar

import phonenumbers
from sqlalchemy import Update, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.audit import audit
from models.donors import consented_in_bot
from models.geo import haversine_km
from models.tables import (
    AuditLog,
    Club,
    ClubMembership,
    Donor,
    Hospital,
    HospitalStaff,
    Invite,
    InviteKind,
    MemberRole,
)
from ground.i18n import N_, Text
from ground.parsing import ParseError, parse_address, parse_latitude, parse_longitude, parse_place_name, quoted

Actor = int | str

MAX_INVITE_USES = 1000
MAX_INVITE_HOURS = 8760  # a year
# A deep-link payload is at most 64 characters of A-Z a-z 0-9 _ - (DOMAIN.md §8);
# 12 random bytes give 16 such characters, 96 bits: unguessable and short to paste.
_CODE_BYTES = 12
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

_ModelT = TypeVar("_ModelT", Club, Hospital)  # the directory's named places


class DirectoryError(ValueError):
    """A directory action refused, with the reason as a translatable :class:`Text`."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


@dataclass(frozen=True)
class Redemption:
    kind: str  # InviteKind value
    club: Club | None
    hospital: Hospital | None
    already: bool = False  # the person already held what the invite grants; no use was consumed


@dataclass(frozen=True)
class Roles:
    donor_id: int | None
    lead_club_ids: list[int] = field(default_factory=list)
    staff_hospital_ids: list[int] = field(default_factory=list)


# --- clubs and hospitals ---------------------------------------------------------------


async def create_club(session: AsyncSession, name: str, lat: float, lon: float, area: str = "", *,
                      actor: Actor) -> Club:
    name = _clean_name(name)
    lat, lon = _coordinates(lat, lon)
    if (existing := await find_club(session, name)) is not None:
        raise DirectoryError(Text(N_("A club named “{name}” already exists."), {"name": existing.name}))
    club = Club(name=name, lat=lat, lon=lon, area=_clean_address(area))
    await _add_unique(session, club, Text(N_("A club named “{name}” already exists."), {"name": name}))
    audit(session, actor, "club.create", f"club:{club.id}")
    await session.commit()
    return club


async def create_hospital(session: AsyncSession, name: str, lat: float, lon: float, address: str = "",
                          phone: str | None = None, region: str = "VN", *, actor: Actor) -> Hospital:
    name, address = _clean_name(name), _clean_address(address)
    lat, lon = _coordinates(lat, lon)
    phone_e164 = _any_valid_phone(phone, region) if phone and phone.strip() else None
    if (existing := await find_hospital(session, name)) is not None:
        raise DirectoryError(Text(N_("A hospital named “{name}” already exists."), {"name": existing.name}))
    hospital = Hospital(name=name, lat=lat, lon=lon, address=address, phone=phone_e164)
    await _add_unique(session, hospital, Text(N_("A hospital named “{name}” already exists."), {"name": name}))
    audit(session, actor, "hospital.create", f"hospital:{hospital.id}")
    await session.commit()
    return hospital


async def find_club(session: AsyncSession, name: str) -> Club | None:
    return await _find_by_name(session, Club, name)


async def find_hospital(session: AsyncSession, name: str) -> Hospital | None:
    return await _find_by_name(session, Hospital, name)


async def list_clubs(session: AsyncSession) -> list[Club]:
    return list((await session.exec(select(Club).order_by(Club.name))).all())


async def list_hospitals(session: AsyncSession) -> list[Hospital]:
    return list((await session.exec(select(Hospital).order_by(Hospital.name))).all())


async def nearest_clubs(session: AsyncSession, lat: float, lon: float, limit: int = 3) -> list[tuple[Club, float]]:
    """Clubs by distance in km; there are tens of clubs, so every one is scored."""
    scored = [(c, haversine_km(lat, lon, c.lat, c.lon)) for c in await list_clubs(session)]
    scored.sort(key=lambda pair: pair[1])
    return scored[:limit]


# --- invites ---------------------------------------------------------------------------


async def create_invite(session: AsyncSession, kind: str, club_id: int | None = None,
                        hospital_id: int | None = None, uses: int = 1, expires_hours: int = 72, *,
                        now: datetime, actor: Actor) -> Invite:
    kind = _invite_kind(kind)
    if not 1 <= uses <= MAX_INVITE_USES:
        raise DirectoryError(Text(N_("An invite can be used from 1 to {max} times, not {uses}."),
                                  {"max": MAX_INVITE_USES, "uses": uses}))
    if not 1 <= expires_hours <= MAX_INVITE_HOURS:
        raise DirectoryError(Text(N_("An invite must expire after 1 to {max} hours, not {hours}."),
                                  {"max": MAX_INVITE_HOURS, "hours": expires_hours}))
    if kind == InviteKind.staff.value:
        if hospital_id is None or club_id is not None:
            raise DirectoryError(Text(N_("A staff invite is for a hospital: name one hospital and no club.")))
        if await session.get(Hospital, hospital_id) is None:
            raise DirectoryError(Text(N_("There is no hospital with id {id}."), {"id": hospital_id}))
    else:
        if club_id is None or hospital_id is not None:
            raise DirectoryError(Text(N_("A {kind} invite is for a club: name one club and no hospital."),
                                      {"kind": kind}))
        if await session.get(Club, club_id) is None:
            raise DirectoryError(Text(N_("There is no club with id {id}."), {"id": club_id}))
    invite = Invite(
        code=secrets.token_urlsafe(_CODE_BYTES), kind=kind, club_id=club_id, hospital_id=hospital_id,
        max_uses=uses, expires_at=now + timedelta(hours=expires_hours),
        created_by=actor if isinstance(actor, int) else None, created_at=now,
    )
    session.add(invite)
    await session.flush()
    # The code is a credential: the audit row names the invite, not its code.
    target = f"club:{club_id}" if club_id is not None else f"hospital:{hospital_id}"
    audit(session, actor, "invite.create", f"invite:{invite.id}", f"kind={kind} {target} uses={uses}", at=now)
    await session.commit()
    return invite


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={code}"


async def redeem_invite(session: AsyncSession, code: str, telegram_id: int, *, now: datetime,
                        tz: ZoneInfo) -> Redemption:
    """Grant what the invite grants, consuming one use, at most ``max_uses`` times in all.

    Telegram delivers an update at least once and people tap a link twice, so a
    person who already holds what the invite grants gets ``already=True`` and
    no use is consumed.
    """
    code = code.strip()
    invite = None
    if _CODE_RE.fullmatch(code):
        invite = (await session.exec(select(Invite).where(col(Invite.code) == code))).first()
    if invite is None:
        raise DirectoryError(Text(N_("This invite code is not valid. Check that the whole link was copied, "
                                     "or ask the person who sent it for a new one.")))
    assert invite.id is not None  # a row read from the database
    # Plain values: they survive the commits and the rare rollback below.
    invite_id, kind, club_id, hospital_id = invite.id, invite.kind, invite.club_id, invite.hospital_id

    if await _already_redeemed(session, invite_id, kind, club_id, hospital_id, telegram_id):
        return await _redemption(session, kind, club_id, hospital_id, already=True)
    if invite.expires_at <= now:
        raise DirectoryError(Text(
            N_("This invite expired on {expired_at:%d/%m/%Y %H:%M}. Ask the person who sent it for a new one."),
            {"expired_at": invite.expires_at.astimezone(tz)}))
    used_up = Text(N_("This invite has already been used as many times as it allows. "
                      "Ask the person who sent it for a new one."))
    if invite.uses >= invite.max_uses:
        raise DirectoryError(used_up)

    # The checks above can be stale by now: only this conditional UPDATE decides who
    # gets the last use, so two people racing for it cannot both win.
    claimed = await session.exec(_consume_use(invite_id, now))
    if claimed.rowcount != 1:
        # Nothing was written; committing (not rolling back, which would expire the
        # caller's objects) ends the transaction so the check below sees the winner.
        await session.commit()
        if await _already_redeemed(session, invite_id, kind, club_id, hospital_id, telegram_id):
            return await _redemption(session, kind, club_id, hospital_id, already=True)
        raise DirectoryError(used_up)
    # The invite's row is ours until commit, so this same person's duplicate update,
    # if it won the row first, has committed and shows here: give the use back.
    if await _already_redeemed(session, invite_id, kind, club_id, hospital_id, telegram_id):
        await session.exec(_give_back_use(invite_id))
        await session.commit()
        return await _redemption(session, kind, club_id, hospital_id, already=True)

    _grant(session, invite_id, kind, club_id, hospital_id, telegram_id, now)
    try:
        await session.commit()
    except IntegrityError:
        # The same person redeemed another invite to the same club at the same moment.
        await session.rollback()
        return await _redemption(session, kind, club_id, hospital_id, already=True)
    return await _redemption(session, kind, club_id, hospital_id, already=False)


def _grant(session: AsyncSession, invite_id: int, kind: str, club_id: int | None, hospital_id: int | None,
           telegram_id: int, now: datetime) -> None:
    """Add what a claimed use of the invite grants, with its audit rows (committed by the caller)."""
    if kind == InviteKind.lead.value:
        assert club_id is not None  # create_invite names a club for a lead invite
        session.add(ClubMembership(club_id=club_id, role=MemberRole.lead.value, telegram_id=telegram_id,
                                   created_at=now))
        audit(session, telegram_id, "role.grant", f"club:{club_id}", f"role=lead via invite:{invite_id}", at=now)
    elif kind == InviteKind.staff.value:
        assert hospital_id is not None  # create_invite names a hospital for a staff invite
        session.add(HospitalStaff(hospital_id=hospital_id, telegram_id=telegram_id, created_at=now))
        audit(session, telegram_id, "role.grant", f"hospital:{hospital_id}", f"role=staff via invite:{invite_id}",
              at=now)
    # A donor invite grants nothing yet: registration attaches the donor to the club.
    audit(session, telegram_id, "invite.redeem", f"invite:{invite_id}", f"kind={kind}", at=now)


# --- roles -----------------------------------------------------------------------------


async def roles_of(session: AsyncSession, telegram_id: int) -> Roles:
    # A link she never confirmed in the bot (an old roster file's) gives the account nothing.
    donor_id = (await session.exec(select(Donor.id).where(Donor.telegram_id == telegram_id,
                                                          consented_in_bot()))).first()
    lead_club_ids = (await session.exec(
        select(ClubMembership.club_id)
        .where(ClubMembership.telegram_id == telegram_id, ClubMembership.role == MemberRole.lead.value)
        .order_by(col(ClubMembership.club_id))
    )).all()
    staff_hospital_ids = (await session.exec(
        select(HospitalStaff.hospital_id).where(HospitalStaff.telegram_id == telegram_id)
        .order_by(col(HospitalStaff.hospital_id))
    )).all()
    return Roles(donor_id=donor_id, lead_club_ids=list(lead_club_ids), staff_hospital_ids=list(staff_hospital_ids))


async def revoke_lead(session: AsyncSession, club_id: int, telegram_id: int, *, actor: Actor) -> None:
    row = (await session.exec(select(ClubMembership).where(
        ClubMembership.club_id == club_id, ClubMembership.telegram_id == telegram_id,
        ClubMembership.role == MemberRole.lead.value))).first()
    if row is None:
        raise DirectoryError(Text(N_("That person does not lead this club.")))
    await session.delete(row)
    audit(session, actor, "role.revoke", f"club:{club_id}", f"role=lead telegram:{telegram_id}")
    await session.commit()


async def revoke_staff(session: AsyncSession, hospital_id: int, telegram_id: int, *, actor: Actor) -> None:
    row = (await session.exec(select(HospitalStaff).where(
        HospitalStaff.hospital_id == hospital_id, HospitalStaff.telegram_id == telegram_id))).first()
    if row is None:
        raise DirectoryError(Text(N_("That person is not staff of this hospital.")))
    await session.delete(row)
    audit(session, actor, "role.revoke", f"hospital:{hospital_id}", f"role=staff telegram:{telegram_id}")
    await session.commit()


# --- helpers ---------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    try:
        return parse_place_name(name)
    except ParseError as err:
        raise DirectoryError(err.text) from None


def _clean_address(text: str) -> str:
    try:
        return parse_address(text)
    except ParseError as err:
        raise DirectoryError(err.text) from None


async def _find_by_name(session: AsyncSession, model: type[_ModelT], name: str) -> _ModelT | None:
    key = " ".join(unicodedata.normalize("NFC", name).split()).casefold()
    # SQLite's lower() folds ASCII only and most Vietnamese names are not ASCII; the
    # directory holds tens of rows, so the comparison is done here.
    for row in (await session.exec(select(model))).all():
        if row.name.casefold() == key:
            return row
    return None


async def _add_unique(session: AsyncSession, row: SQLModel, duplicate: Text) -> None:
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        # Another writer created the same name between our check and our insert.
        await session.rollback()
        raise DirectoryError(duplicate) from None


def _coordinates(lat: float, lon: float) -> tuple[float, float]:
    try:
        return parse_latitude(lat), parse_longitude(lon)
    except ParseError as err:
        raise DirectoryError(err.text) from None


def _any_valid_phone(raw: str, region: str) -> str:
    """E.164 for any valid number: hospitals answer on landlines, unlike donors."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise DirectoryError(Text(N_("“{phone}” is not a valid phone number."), {"phone": quoted(raw)}))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _invite_kind(kind: str) -> str:
    try:
        return InviteKind(kind).value
    except ValueError:
        raise DirectoryError(Text(N_("Unknown invite kind “{kind}”: use lead, staff or donor."),
                                  {"kind": kind})) from None


async def _already_redeemed(session: AsyncSession, invite_id: int, kind: str, club_id: int | None,
                            hospital_id: int | None, telegram_id: int) -> bool:
    if kind == InviteKind.lead.value:
        query = select(ClubMembership.id).where(
            ClubMembership.club_id == club_id, ClubMembership.telegram_id == telegram_id,
            ClubMembership.role == MemberRole.lead.value)
    elif kind == InviteKind.staff.value:
        query = select(HospitalStaff.id).where(
            HospitalStaff.hospital_id == hospital_id, HospitalStaff.telegram_id == telegram_id)
    else:
        # A donor invite leaves no role behind; its redemption record is the trace.
        query = select(AuditLog.id).where(
            AuditLog.action == "invite.redeem", AuditLog.subject == f"invite:{invite_id}",
            AuditLog.actor_telegram_id == telegram_id)
    return (await session.exec(query.limit(1))).first() is not None


def _consume_use(invite_id: int, now: datetime) -> Update:
    return (update(Invite)
            .where(col(Invite.id) == invite_id, col(Invite.uses) < Invite.max_uses, col(Invite.expires_at) > now)
            .values(uses=col(Invite.uses) + 1)
            .execution_options(synchronize_session=False))


def _give_back_use(invite_id: int) -> Update:
    return (update(Invite).where(col(Invite.id) == invite_id).values(uses=col(Invite.uses) - 1)
            .execution_options(synchronize_session=False))


async def _redemption(session: AsyncSession, kind: str, club_id: int | None, hospital_id: int | None, *,
                      already: bool) -> Redemption:
    club = await session.get(Club, club_id) if club_id is not None else None
    hospital = await session.get(Hospital, hospital_id) if hospital_id is not None else None
    return Redemption(kind=kind, club=club, hospital=hospital, already=already)

