"""The seeded world shared by ``redreserve demo`` and ``redreserve playground``.

Two reserve clubs (Hải Phòng and Lào Cai, real coordinates) and a small Rh− club in Hải
Phòng, a hospital near each general club with one staff member, a lead per club and a synthetic roster (redreserve/synthetic.py), most
of it linked to Telegram ids that have already started the bot in the simulator.
Telegram ids come from fixed ranges so each simulated person is recognisable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker

from models.geo import placed
from models.tables import (
    Club,
    ClubMembership,
    Donor,
    Hospital,
    HospitalStaff,
    TelegramUser,
)
from redreserve.botapi_sim import BotAPISimulator
from redreserve.synthetic import person

# Realistic shares (DOMAIN.md §3): Rh− is 0.04–0.1 % of Vietnamese, so a general club has next to
# none; the rare donors are gathered in a small club of their own, like Cà Mau's 26 (12 O−, 6 B−,
# 6 A−, 2 AB−) or Hồ Chí Minh City's (285).
CLUBS = [  # name, lat, lon, area, members, spread in km, Rh− share
    ("CLB Hiến máu dự bị Hải Phòng", 20.8449, 106.6881, "Lê Chân, Hải Phòng", 220, 6.0, 0.001),
    ("CLB Hiến máu dự bị Lào Cai", 22.4856, 103.9707, "TP Lào Cai", 130, 15.0, 0.001),
    ("CLB Máu hiếm Rh− Hải Phòng", 20.8600, 106.6700, "Hải Phòng", 60, 8.0, 1.0),
]
HOSPITALS = [  # name, lat, lon, address, phone
    ("Bệnh viện Hữu nghị Việt Tiệp", 20.8561, 106.6822, "1 Nhà Thương, Lê Chân, Hải Phòng", "+842253846223"),
    ("Bệnh viện Đa khoa tỉnh Lào Cai", 22.4303, 104.0111, "Bình Minh, TP Lào Cai", "+842143840083"),
]
STAFF_BASE, DONOR_BASE, LEAD_BASE = 7_100_000_000, 7_200_000_000, 7_300_000_000


@dataclass
class SeededRoster:
    hospital_ids: list[int] = field(default_factory=list)
    club_ids: list[int] = field(default_factory=list)
    donors: int = 0
    names: dict[int, str] = field(default_factory=dict)  # Telegram id → full name, linked donors only
    phones: set[str] = field(default_factory=set)


async def seed_roster(sessionmaker: async_sessionmaker, sim: BotAPISimulator, rng: random.Random, *,
                      today: date, now: datetime, locale: str = "vi") -> SeededRoster:
    """Write the clubs, hospitals, staff, leads and donors; open the linked people's chats in ``sim``.

    The order of ``rng`` draws is part of the contract: the demo's timeline depends on it.
    """
    seeded = SeededRoster(phones=set())
    async with sessionmaker() as s:
        for h, (name, lat, lon, address, phone) in enumerate(HOSPITALS):
            hospital = Hospital(name=name, lat=lat, lon=lon, address=address, phone=phone)
            s.add(hospital)
            await s.flush()
            seeded.hospital_ids.append(hospital.id)
            s.add(HospitalStaff(hospital_id=hospital.id, telegram_id=STAFF_BASE + h))
            s.add(TelegramUser(telegram_id=STAFF_BASE + h, first_name=f"Staff {h}", locale=locale))
            sim.start_chat(STAFF_BASE + h, first_name=f"Điều dưỡng {h + 1}")
        for c, (name, lat, lon, area, size, spread, rh_neg) in enumerate(CLUBS):
            club = Club(name=name, lat=lat, lon=lon, area=area)
            s.add(club)
            await s.flush()
            seeded.club_ids.append(club.id)
            s.add(ClubMembership(club_id=club.id, role="lead", telegram_id=LEAD_BASE + c))
            s.add(TelegramUser(telegram_id=LEAD_BASE + c, first_name=f"Lead {c}", locale=locale))
            sim.start_chat(LEAD_BASE + c)
            for _ in range(size):
                p = person(rng, near=(lat, lon), spread_km=spread, today=today, rh_negative=rh_neg,
                           used_phones=seeded.phones)
                linked = rng.random() < 0.85
                tg = DONOR_BASE + seeded.donors if linked else None
                seeded.donors += 1
                status, until = ("paused", today + timedelta(days=20)) if rng.random() < 0.08 else ("active", None)
                donor = Donor(
                    full_name=p.full_name, phone=p.phone, telegram_id=tg, abo=p.abo, rh=p.rh, sex=p.sex,
                    birth_date=p.birth_date, weight_kg=p.weight_kg, **placed(p.lat, p.lon, approx=False), area=area, last_donation_date=p.last_donation,
                    last_donation_component="whole_blood" if p.last_donation else None, donation_count=p.donations,
                    status=status, status_until=until, locale=locale,
                    consent_profile_at=now, consent_contact_at=now if linked else None,
                )
                s.add(donor)
                await s.flush()
                s.add(ClubMembership(club_id=club.id, donor_id=donor.id))
                if tg is not None:
                    s.add(TelegramUser(telegram_id=tg, first_name=p.full_name.split()[-1], locale=locale))
                    sim.start_chat(tg, first_name=p.full_name.split()[-1])
                    seeded.names[tg] = p.full_name
        await s.commit()
    return seeded
