"""Re-make examples/roster.csv and examples/roster.xlsx (Vietnamese headers, 40 synthetic members).

    .venv/bin/python examples/make_roster.py

Synthetic people (redreserve.synthetic: names, mobile numbers and places invented), around
Lê Chân, Hải Phòng, with a few Rh− members and a few rows a lead's real file also has: an
unknown blood type, a missing weight. Seeded, so the files only change when this script does.
"""

from __future__ import annotations

import random
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ground.parsing import ParseError, parse_phone  # noqa: E402
from ground.roster_file import RosterRow, write_roster  # noqa: E402
from redreserve.synthetic import person  # noqa: E402

HERE = Path(__file__).resolve().parent
LE_CHAN = (20.8449, 106.6881)
TODAY = date(2026, 12, 1)


def rows() -> list[RosterRow]:
    rng = random.Random(16)
    out = []
    while len(out) < 40:
        i = len(out)
        p = person(rng, near=LE_CHAN, spread_km=4, today=TODAY, rh_negative=0.1)
        try:
            parse_phone(p.phone)
        except ParseError:
            continue  # a number no network has issued: a real roster would not hold it
        unknown_type, no_weight = i % 13 == 5, i % 11 == 7
        out.append(RosterRow(
            full_name=p.full_name, phone=p.phone, abo=None if unknown_type else p.abo,
            rh=None if unknown_type else p.rh, sex=p.sex, birth_date=p.birth_date,
            weight_kg=None if no_weight else p.weight_kg, last_donation_date=p.last_donation,
            donation_count=p.donations, lat=round(p.lat, 3), lon=round(p.lon, 3), area="Lê Chân, Hải Phòng"))
    return out


if __name__ == "__main__":
    members = rows()
    for fmt in ("csv", "xlsx"):
        write_roster(HERE / f"roster.{fmt}", fmt, members, lang="vi")
    print(f"Wrote {len(members)} members to examples/roster.csv and examples/roster.xlsx")
