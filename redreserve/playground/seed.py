"""The playground's cast: the demo's roster, plus people a visitor can act as.

The donor personas are members of the roster's small Rh− club (DOMAIN.md §3: the rare
donors are gathered in a club of their own), made to fit a `/urgent O- 2` at the staff
persona's hospital (O−, likely able to give, a few km away, consenting to calls), so the
first thing a visitor tries works. The lead persona leads that club. The new visitor has no profile and
has never written to the bot, like someone who just found it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from models.geo import placed
from models.tables import Club, ClubMembership, Donor, Hospital, HospitalStaff, TelegramUser
from redreserve.botapi_sim import BotAPISimulator
from redreserve.seeding import CLUBS, DONOR_BASE, HOSPITALS, LEAD_BASE, STAFF_BASE, seed_roster

ADMIN_ID = 7_400_000_001
VISITOR_ID = 7_500_000_001
VISITOR_PHONE = "+84912555001"  # not in the roster: the synthetic phones are drawn at random
STAFF_PHONE, LEAD_PHONE, ADMIN_PHONE = "+84912555002", "+84912555003", "+84912555004"
DONOR_PERSONAS = 3
PERSONA_CLUB = 2  # index in seeding.CLUBS: the Rh− club
# Where the donor personas live, from the hospital: a few minutes away, so the ranker calls them.
DONOR_OFFSETS = [(0.012, 0.004), (-0.010, 0.015), (0.020, -0.012)]


class NotAPlaygroundDatabase(Exception):
    """``--db`` points at data the playground did not seed; its personas would be strangers."""


@dataclass(frozen=True)
class Persona:
    user_id: int
    role: str  # staff | donor | lead | admin | visitor
    name: str
    detail: str  # who they are, shown under the name in the chat list
    phone: str  # what the "share my phone number" button sends
    home: tuple[float, float]  # where "share my location" puts the pin first
    language: str = "vi"

    @property
    def first_name(self) -> str:
        return self.name.split()[-1]


async def prepare_world(sessionmaker: async_sessionmaker, sim: BotAPISimulator, *, seed: int, today: date,
                        now: datetime) -> tuple[list[Persona], bool]:
    """Seed an empty database, or reuse one the playground seeded before; returns (personas, seeded now)."""
    async with sessionmaker() as s:
        seeded_before = (await s.exec(select(Club.id).limit(1))).first() is not None
        if seeded_before and (await s.exec(select(HospitalStaff.id).where(
                HospitalStaff.telegram_id == STAFF_BASE))).first() is None:
            raise NotAPlaygroundDatabase("the database holds clubs the playground did not seed; "
                                         "use an empty or new file")
    if not seeded_before:
        await seed_roster(sessionmaker, sim, random.Random(seed), today=today, now=now)
        await _fit_donor_personas(sessionmaker, today=today, now=now)
    await _add_admin(sessionmaker)
    await _reopen_chats(sessionmaker, sim)
    personas = await load_personas(sessionmaker)
    for p in personas:
        if p.role == "visitor":
            sim.add_user(p.user_id, first_name=p.first_name, language_code=p.language)
        else:
            sim.start_chat(p.user_id, first_name=p.first_name, language_code=p.language)
    return personas, not seeded_before


async def load_personas(sessionmaker: async_sessionmaker) -> list[Persona]:
    async with sessionmaker() as s:
        hospital = (await s.exec(select(Hospital).where(Hospital.name == HOSPITALS[0][0]))).one()
        club = (await s.exec(select(Club).where(Club.name == CLUBS[PERSONA_CLUB][0]))).one()
        donors = await _donor_persona_rows(s, club.id)
    personas = [
        Persona(STAFF_BASE, "staff", "Điều dưỡng Thu", hospital.name, STAFF_PHONE, (hospital.lat, hospital.lon)),
        *(Persona(d.telegram_id, "donor", d.full_name, f"{d.abo}{'−' if d.rh == '-' else '+'} · {club.name}",
                  d.phone, (d.lat, d.lon), d.locale or "vi") for d in donors),
        Persona(LEAD_BASE + PERSONA_CLUB, "lead", "Trưởng CLB Hoàng Văn Nam", club.name, LEAD_PHONE,
                (club.lat, club.lon)),
        Persona(ADMIN_ID, "admin", "Quản trị Lê Minh", "RedReserve admin", ADMIN_PHONE, (21.0285, 105.8542)),
        Persona(VISITOR_ID, "visitor", "Khách mới Minh", "New here: send /start", VISITOR_PHONE,
                (hospital.lat + 0.006, hospital.lon - 0.008)),
    ]
    return personas


async def _donor_persona_rows(s, club_id: int) -> list[Donor]:
    # The same rule picks them at seeding and on reuse: the club's first linked roster donors.
    return list((await s.exec(
        select(Donor).join(ClubMembership, ClubMembership.donor_id == Donor.id)
        .where(ClubMembership.club_id == club_id, Donor.telegram_id >= DONOR_BASE, Donor.telegram_id < LEAD_BASE)
        .order_by(Donor.id).limit(DONOR_PERSONAS))).all())


async def _fit_donor_personas(sessionmaker: async_sessionmaker, *, today: date, now: datetime) -> None:
    async with sessionmaker() as s:
        hospital = (await s.exec(select(Hospital).where(Hospital.name == HOSPITALS[0][0]))).one()
        club = (await s.exec(select(Club).where(Club.name == CLUBS[PERSONA_CLUB][0]))).one()
        for k, donor in enumerate(await _donor_persona_rows(s, club.id)):
            lat, lon = hospital.lat + DONOR_OFFSETS[k][0], hospital.lon + DONOR_OFFSETS[k][1]
            donor.abo, donor.rh = "O", "-"
            donor.status, donor.status_until, donor.deferral_reason = "active", None, None
            donor.birth_date = today - timedelta(days=365 * (28 + 5 * k) + 40)
            donor.weight_kg = max(donor.weight_kg or 0, 56.0)
            donor.last_donation_date = today - timedelta(days=200) if donor.donation_count else None
            donor.sqlmodel_update(placed(lat, lon, approx=False))
            donor.consent_contact_at = donor.consent_location_at = now
            # The last one speaks English, to show that each person keeps their own language.
            donor.locale = "en" if k == DONOR_PERSONAS - 1 else "vi"
            user = await s.get(TelegramUser, donor.telegram_id)
            user.locale = donor.locale
        await s.commit()


async def _add_admin(sessionmaker: async_sessionmaker) -> None:
    async with sessionmaker() as s:
        if await s.get(TelegramUser, ADMIN_ID) is None:
            s.add(TelegramUser(telegram_id=ADMIN_ID, first_name="Minh", locale="vi"))
            await s.commit()


async def _reopen_chats(sessionmaker: async_sessionmaker, sim: BotAPISimulator) -> None:
    """Everyone the database says has started the bot has started it in this simulator too."""
    async with sessionmaker() as s:
        users = (await s.exec(select(TelegramUser.telegram_id, TelegramUser.first_name)
                              .where(TelegramUser.blocked_at.is_(None)))).all()
    for telegram_id, first_name in users:
        sim.start_chat(telegram_id, first_name=first_name or None)
