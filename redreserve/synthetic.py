"""Synthetic people for the demo and simulations: Vietnamese names, blood types and habits.

Frequencies from DOMAIN.md §3 (ABO: O 45 %, B 30 %, A 20 %, AB 5 %; Rh− about 0.1 %). The
demo's rare donors are gathered in a small Rh− club of their own (redreserve/seeding.py),
as Vietnam's rare-blood clubs do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
          "Ngô", "Dương", "Lý"]
FAMILY_WEIGHTS = [38, 11, 9.5, 7, 5, 5, 4.5, 4, 4, 2, 2, 1.4, 1.3, 1.3, 1, 0.5]
MIDDLE_M = ["Văn", "Đức", "Minh", "Quang", "Hữu", "Thanh", "Công", "Xuân"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Minh", "Thanh", "Hồng", "Phương", "Bích"]
GIVEN_M = ["An", "Bình", "Dũng", "Hải", "Hùng", "Long", "Nam", "Quân", "Sơn", "Tuấn", "Việt", "Khoa", "Phúc",
           "Thắng", "Trung", "Đạt"]
GIVEN_F = ["Chi", "Giang", "Hà", "Hạnh", "Hoa", "Lan", "Linh", "Mai", "Phương", "Tâm", "Thảo", "Trang", "Yến",
           "Nhung", "Huyền", "Ngân"]
ABO_MIX = (("O", 0.45), ("B", 0.30), ("A", 0.20), ("AB", 0.05))
MOBILE_PREFIXES = ["90", "91", "93", "94", "96", "97", "98", "32", "33", "34", "35", "36", "37", "38", "39",
                   "70", "76", "77", "78", "79", "81", "82", "83", "84", "85", "86", "88", "89"]


@dataclass
class Person:
    full_name: str
    phone: str
    sex: str
    birth_date: date
    weight_kg: float
    abo: str
    rh: str
    lat: float
    lon: float
    last_donation: date | None
    donations: int


def person(rng: random.Random, *, near: tuple[float, float], spread_km: float, today: date,
           rh_negative: float = 0.001, used_phones: set[str] | None = None) -> Person:
    sex = rng.choice("MF")
    family = rng.choices(FAMILY, FAMILY_WEIGHTS)[0]
    middle = rng.choice(MIDDLE_M if sex == "M" else MIDDLE_F)
    given = rng.choice(GIVEN_M if sex == "M" else GIVEN_F)
    while True:
        phone = "+84" + rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"
        if used_phones is None or phone not in used_phones:
            break
    if used_phones is not None:
        used_phones.add(phone)
    abos, weights = zip(*ABO_MIX)
    donations = rng.choice([0, 0, 1, 2, 3, 5, 8, 12, 20])
    last = today - timedelta(days=rng.randint(20, 700)) if donations else None
    km_lat = rng.gauss(0, spread_km) / 111.0
    km_lon = rng.gauss(0, spread_km) / 104.0
    return Person(
        full_name=f"{family} {middle} {given}",
        phone=phone,
        sex=sex,
        birth_date=today - timedelta(days=365 * rng.randint(19, 58) + rng.randint(0, 364)),
        weight_kg=round(rng.gauss(62 if sex == "M" else 52, 7), 1),
        abo=rng.choices(abos, weights)[0],
        rh="-" if rng.random() < rh_negative else "+",
        lat=near[0] + km_lat,
        lon=near[1] + km_lon,
        last_donation=last,
        donations=donations,
    )
