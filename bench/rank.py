"""Rank donors from the database for common and rare requests (issue 3).

    .venv/bin/python bench/rank.py                 # 10k, 100k, 1M donors (SQLite files cached in /tmp)
    .venv/bin/python bench/rank.py --sizes 10000 --repeat 5

Prints ms per request (wall median and worst, and CPU median) for the whole candidate search a wave makes
(rare-pool count + ring search + exact scoring of the best few hundred + their
answer history) and peak memory. Targets: 100,000 under 20 ms, 1,000,000 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._roster import build_sqlite  # noqa: E402
from dispatcher.candidates import Search, count_eligible, fetch_ranked  # noqa: E402
from dispatcher.compat import compatible_tiers  # noqa: E402
from dispatcher.ranking import RankContext  # noqa: E402
from models.engine import make_engine, make_sessionmaker  # noqa: E402
from ground.config import DispatchConfig, EligibilityConfig  # noqa: E402

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)
TODAY = date(2026, 3, 10)
# (label, hospital lat, lon, abo, rh, component, radius km or None for every cell)
REQUESTS = [
    ("O+ red cells, Chợ Rẫy (HCMC)", 10.7578, 106.6594, "O", "+", "red_cells", 10.0),
    ("A+ whole blood, Bạch Mai (Hà Nội)", 21.0011, 105.8405, "A", "+", "whole_blood", 10.0),
    ("AB+ platelets, Đà Nẵng", 16.0544, 108.2022, "AB", "+", "platelets", 20.0),
    ("B+ red cells, Lào Cai (mountain)", 22.4856, 103.9707, "B", "+", "red_cells", 40.0),
    ("O- red cells, HCMC (rare: every club)", 10.7578, 106.6594, "O", "-", "red_cells", None),
    ("AB- plasma, Cà Mau (rare: every club)", 9.1769, 105.15, "AB", "-", "plasma", None),
]


async def run(size: int, repeat: int, limit: int, url: str | None) -> None:
    if url is None:
        path = f"/tmp/redreserve_bench_{size}.db"
        if not os.path.exists(path):
            t0 = time.perf_counter()
            # Built aside and moved in whole: a build that fails (a schema the loader lags behind)
            # must not leave an empty cache that every later run would measure as "found 0".
            await build_sqlite(path + ".part", size)
            os.replace(path + ".part", path)
            print(f"  built {size:,} donors in {time.perf_counter() - t0:.1f} s -> {path}")
        url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    dcfg, rules = DispatchConfig(), EligibilityConfig()
    print(f"{size:>9,} donors  (limit {limit}, {repeat} runs each)")
    async with sm() as s:
        for label, lat, lon, abo, rh, comp, radius in REQUESTS:
            deadline = NOW + timedelta(hours=3)
            search = Search(lat, lon, comp, compatible_tiers(abo, rh, comp), NOW, TODAY, deadline, radius,
                            cap_count=dcfg.contact_cap_count, cap_days=dcfg.contact_cap_days)
            ctx = RankContext.of(hospital_lat=lat, hospital_lon=lon, now=NOW, today=TODAY, deadline=deadline,
                                 dispatch=dcfg, eligibility=rules)
            times, cpu, found = [], [], 0
            for i in range(repeat + 1):
                t0, c0 = time.perf_counter(), time.process_time()
                await count_eligible(s, search, rules, at_most=dcfg.rare_pool_threshold)
                ranked = await fetch_ranked(s, search, ctx, rules, limit)
                if i:  # the first run warms the page cache
                    times.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.process_time() - c0) * 1000)
                found = len(ranked)
            tracemalloc.start()
            await fetch_ranked(s, search, ctx, rules, limit)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            best = ranked[0].describe() if ranked else "-"
            # CPU time (this process, all threads) is what the code costs; wall time adds a busy machine.
            print(f"  {label:<40} median {statistics.median(times):6.1f} ms  worst {max(times):6.1f} ms"
                  f"  (cpu median {statistics.median(cpu):5.1f} ms)"
                  f"  found {found:>4}  py-peak {peak:5.1f} MB  best: {best}")
    await engine.dispose()
    print(f"  process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--limit", type=int, default=200, help="donors a wave may need (the best few hundred)")
    ap.add_argument("--url", help="an existing, loaded database instead of the cached SQLite files")
    a = ap.parse_args()
    for size in a.sizes:
        asyncio.run(run(size, a.repeat, a.limit, a.url))


if __name__ == "__main__":
    main()
