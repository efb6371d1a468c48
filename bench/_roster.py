"""A synthetic national roster for the benches: realistic ABO/RhD mix and places (DOMAIN.md §3)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from models.geo import geo_cell

# (city, lat, lon, weight ≈ population in millions, spread in degrees)
PLACES = [
    ("Hồ Chí Minh", 10.7769, 106.7009, 9.5, 0.12), ("Hà Nội", 21.0285, 105.8542, 8.5, 0.12),
    ("Hải Phòng", 20.8449, 106.6881, 2.1, 0.1), ("Cần Thơ", 10.0452, 105.7469, 1.3, 0.1),
    ("Đà Nẵng", 16.0544, 108.2022, 1.2, 0.08), ("Biên Hòa", 10.9574, 106.8426, 3.2, 0.15),
    ("Thủ Dầu Một", 10.9804, 106.6519, 2.6, 0.15), ("Nghệ An", 18.6796, 105.6813, 3.4, 0.35),
    ("Thanh Hóa", 19.8067, 105.7852, 3.7, 0.35), ("Huế", 16.4637, 107.5909, 1.2, 0.15),
    ("Nha Trang", 12.2388, 109.1967, 1.2, 0.15), ("Buôn Ma Thuột", 12.6667, 108.05, 1.9, 0.3),
    ("Pleiku", 13.9833, 108.0, 1.5, 0.3), ("Quy Nhơn", 13.775, 109.2233, 1.5, 0.2),
    ("Vinh Long", 10.2537, 105.9722, 1.0, 0.15), ("Long Xuyên", 10.3864, 105.4352, 1.9, 0.25),
    ("Rạch Giá", 10.0125, 105.0809, 1.7, 0.3), ("Cà Mau", 9.1769, 105.15, 1.2, 0.25),
    ("Thái Nguyên", 21.5942, 105.8482, 1.3, 0.15), ("Nam Định", 20.4388, 106.1621, 1.8, 0.15),
    ("Bắc Ninh", 21.1861, 106.0763, 1.5, 0.1), ("Lào Cai", 22.4856, 103.9707, 0.8, 0.35),
    ("Điện Biên", 21.386, 103.023, 0.6, 0.35), ("Hà Giang", 22.8233, 104.9836, 0.9, 0.35),
    ("Sơn La", 21.3256, 103.9188, 1.3, 0.4), ("Vũng Tàu", 10.346, 107.0843, 1.2, 0.15),
    ("Quảng Ngãi", 15.1214, 108.8044, 1.2, 0.25), ("Đà Lạt", 11.9404, 108.4583, 1.3, 0.3),
]
ABO_MIX = (("O", 0.45), ("B", 0.30), ("A", 0.20), ("AB", 0.05))  # NIHBT, DOMAIN.md §3
RH_NEGATIVE = 0.001  # 0.04–0.1 % (DOMAIN.md §3), the top of the range


def donor_rows(n: int, seed: int = 1, today: date = date(2026, 3, 10), linked_share: float = 0.8):
    """Yield (donor tuple, telegram_id or None) rows; columns in DONOR_COLUMNS order."""
    rng = random.Random(seed)
    weights = [p[3] for p in PLACES]
    abos, abo_w = zip(*ABO_MIX)
    now = "2026-01-01 00:00:00.000000"  # SQLAlchemy's SQLite DateTime format
    for i in range(n):
        _, lat0, lon0, _, spread = rng.choices(PLACES, weights)[0]
        lat, lon = rng.gauss(lat0, spread), rng.gauss(lon0, spread)
        abo = rng.choices(abos, abo_w)[0]
        rh = "-" if rng.random() < RH_NEGATIVE else "+"
        last = None if rng.random() < 0.3 else today - timedelta(days=rng.randint(10, 1500))
        tg = 5_000_000_000 + i if rng.random() < linked_share else None
        status = "active" if rng.random() < 0.93 else rng.choice(["paused", "deferred", "retired"])
        birth = today - timedelta(days=rng.randint(18 * 365 + 5, 60 * 365 - 5))
        yield ((f"Donor {i}", f"+849{i:08d}", tg, abo, rh, rng.choice("MF"), birth.isoformat(),
                round(rng.uniform(45, 85), 1), lat, lon, geo_cell(lat, lon), last and last.isoformat(),
                None if last is None else rng.choice(["whole_blood", "whole_blood", "platelets"]),
                rng.randint(0, 30), status, None, now if tg else None, now, now, False, "", "", "", True), tg)


DONOR_COLUMNS = ("full_name", "phone", "telegram_id", "abo", "rh", "sex", "birth_date", "weight_kg", "lat", "lon",
                 "geo_cell", "last_donation_date", "last_donation_component", "donation_count", "status",
                 "status_until", "consent_contact_at", "created_at", "updated_at", "location_approx", "area", "note",
                 "consent_policy_version", "remind_eligible")


async def build_sqlite(path: str, n: int, seed: int = 1) -> None:
    """Create the schema and load ``n`` donors (plus their Telegram users) with plain executemany."""
    import sqlite3

    from models.engine import create_schema, make_engine

    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await create_schema(engine)
    await engine.dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA journal_mode=WAL")
    cols = ", ".join(DONOR_COLUMNS)
    qs = ", ".join("?" * len(DONOR_COLUMNS))
    batch, users = [], []
    started = "2026-01-01 00:00:00.000000"
    for row, tg in donor_rows(n, seed):
        batch.append(row)
        if tg is not None:
            users.append((tg, "", started))
        if len(batch) >= 50_000:
            conn.executemany(f"INSERT INTO donor ({cols}) VALUES ({qs})", batch)
            conn.executemany("INSERT INTO telegram_user (telegram_id, first_name, started_at) VALUES (?, ?, ?)", users)
            batch, users = [], []
    if batch:
        conn.executemany(f"INSERT INTO donor ({cols}) VALUES ({qs})", batch)
        conn.executemany("INSERT INTO telegram_user (telegram_id, first_name, started_at) VALUES (?, ?, ?)", users)
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
