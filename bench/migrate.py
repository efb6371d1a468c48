"""How long schema upgrades take on a 100,000-donor SQLite database.

    .venv/bin/python bench/migrate.py                 # 100,000 donors
    .venv/bin/python bench/migrate.py --donors 20000

Three figures, each on a fresh copy of the same database:
1. adopting a database made by the first release (commit fc1bd5c, no migrations: the schema of
   tests/fixtures/first_release_fc1bd5c.sqlite.sql), with the donors, their Telegram users,
   club memberships and 20 % of them asked once: the missing columns, tables and indexes are added
   and it is stamped at the newest revision — what `redreserve db upgrade` does after the upgrade
   from that release;
2. the start-up check on a database that is already current (every command and `run` make it);
3. a batch-mode rebuild of the donor table (a copy, as SQLite needs for most ALTERs): the cost of
   a future revision that alters `donor` on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._roster import DONOR_COLUMNS, donor_rows  # noqa: E402
from models.engine import make_engine  # noqa: E402
from models.schema import alembic_config, schema_status, upgrade  # noqa: E402

FIRST_RELEASE = ROOT / "tests" / "fixtures" / "first_release_fc1bd5c.sqlite.sql"


def build_first_release(path: Path, n: int) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(FIRST_RELEASE.read_text(encoding="utf-8"))
    conn.execute("PRAGMA journal_mode=WAL")
    now = "2026-01-01 00:00:00.000000"
    conn.execute("INSERT INTO club (id, name, lat, lon, area, created_at) VALUES (1, 'CLB', 21.0, 105.8, '', ?)",
                 (now,))
    conn.execute("INSERT INTO hospital (id, name, lat, lon, address, created_at) VALUES (1, 'BV', 21.0, 105.8, '', ?)",
                 (now,))
    conn.execute("INSERT INTO blood_request (id, hospital_id, abo, rh, component, units, urgency, deadline, note, "
                 "rh_positive_ok, state, rare, target_available, wave_no, radius_km, created_at, updated_at) "
                 "VALUES (1, 1, 'O', '+', 'red_cells', 2, 'urgent', ?, '', 0, 'cancelled', 0, 4, 1, 10, ?, ?)",
                 (now, now, now))
    cols, qs = ", ".join(DONOR_COLUMNS), ", ".join("?" * len(DONOR_COLUMNS))
    rows, users = [], []
    for row, tg in donor_rows(n, seed=1):
        rows.append(row)
        if tg is not None:
            users.append((tg, "", now))
    conn.executemany(f"INSERT INTO donor ({cols}) VALUES ({qs})", rows)
    conn.executemany("INSERT INTO telegram_user (telegram_id, first_name, started_at) VALUES (?, ?, ?)", users)
    conn.executemany("INSERT INTO club_membership (club_id, role, donor_id, created_at) VALUES (1, 'member', ?, ?)",
                     [(i, now) for i in range(1, n + 1)])
    rng = random.Random(2)
    asked = rng.sample(range(1, n + 1), n // 5)
    conn.executemany("INSERT INTO request_contact (request_id, donor_id, state, wave_no, tier, reasons, token, "
                     "asked_at) VALUES (1, ?, 'declined', 1, 0, '[]', ?, ?)",
                     [(d, f"t{d}", now) for d in asked])
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def timed_upgrade(path: Path) -> tuple[float, str]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        started = time.perf_counter()
        before, after = await upgrade(engine)
        took = time.perf_counter() - started
        assert after.state.value == "current", after
        return took, f"{before.state.value} → {after.current[0]}"
    finally:
        await engine.dispose()


async def timed_check(path: Path) -> float:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        started = time.perf_counter()
        status = await schema_status(engine)
        took = time.perf_counter() - started
        assert status.state.value == "current"
        return took
    finally:
        await engine.dispose()


async def timed_donor_rebuild(path: Path) -> float:
    """What a revision altering ``donor`` costs on SQLite: batch mode copies the table."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(f"sqlite+aiosqlite:///{path}")

    def rebuild(conn) -> None:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        ops = Operations(MigrationContext.configure(conn))
        with ops.batch_alter_table("donor", recreate="always"):
            pass
        conn.commit()

    try:
        async with engine.connect() as conn:
            started = time.perf_counter()
            await conn.run_sync(rebuild)
            return time.perf_counter() - started
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--donors", type=int, default=100_000)
    args = parser.parse_args()
    alembic_config()  # fail early if the migrations cannot be found
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "first_release.db"
        started = time.perf_counter()
        build_first_release(source, args.donors)
        print(f"built a first-release database with {args.donors:,} donors in {time.perf_counter() - started:.1f} s "
              f"({source.stat().st_size / 1e6:.0f} MB)")
        work = Path(tmp) / "work.db"
        shutil.copyfile(source, work)
        took, what = await timed_upgrade(work)
        print(f"1. upgrade of the first release's database ({what}): {took:.2f} s")
        checks = sorted([await timed_check(work) for _ in range(5)])
        print(f"2. start-up schema check on a current database: median {checks[2] * 1000:.1f} ms of 5")
        took = await timed_donor_rebuild(work)
        print(f"3. batch-mode rebuild of the donor table ({args.donors:,} rows, its indexes): {took:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
