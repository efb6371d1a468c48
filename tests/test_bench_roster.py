"""The benches' synthetic roster still loads into today's schema.

bench/_roster.py writes donors with plain SQL for speed, so a new NOT NULL column leaves it
behind without any test noticing: bench/rank.py then measured an empty database ("found 0",
a few ms) and reported it as a figure. This loads a small roster and ranks from it.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from bench._roster import build_sqlite
from bench.rank import NOW, REQUESTS, TODAY
from dispatcher.candidates import Search, fetch_ranked
from dispatcher.compat import compatible_tiers
from dispatcher.ranking import RankContext
from ground.config import DispatchConfig, EligibilityConfig
from models.engine import make_engine, make_sessionmaker


async def test_the_bench_roster_loads_and_ranks(tmp_path):
    path = tmp_path / "roster.db"
    await build_sqlite(str(path), 3000)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM donor").fetchone()[0] == 3000
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with make_sessionmaker(engine)() as s:
            label, lat, lon, abo, rh, comp, radius = REQUESTS[0]  # a common type in a big city
            deadline = NOW + timedelta(hours=3)
            search = Search(lat, lon, comp, compatible_tiers(abo, rh, comp), NOW, TODAY, deadline, radius)
            ctx = RankContext.of(hospital_lat=lat, hospital_lon=lon, now=NOW, today=TODAY, deadline=deadline,
                                 dispatch=DispatchConfig(), eligibility=EligibilityConfig())
            ranked = await fetch_ranked(s, search, ctx, EligibilityConfig(), 20)
            assert len(ranked) == 20, label
    finally:
        await engine.dispose()
