"""How fast does a club's roster import, and how much memory does it take?

Generates a realistic roster (Vietnamese names and headers, ";"-separated as
Vietnamese Excel writes it, ABO O 45 % / B 30 % / A 20 % / AB 5 %, Rh− 0.1 %,
a few bad rows), then imports it through the real code path
(open_roster → import_roster) into a fresh database, and again to show a
re-import changes nothing. Also times a 10,000-row XLSX.

    python bench/import_roster.py [--rows 100000] [--xlsx-rows 10000]
                                  [--db-url postgresql+asyncpg://postgres@127.0.0.1/postgres]

With a PostgreSQL URL, a scratch database is created next to the one named
and dropped afterwards. Peak memory is the process's maximum resident set
(ru_maxrss), which includes Python itself and the loaded libraries.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.engine import create_schema, make_engine, make_sessionmaker
from models.roster import export_roster, import_roster
from models.tables import Club
from ground.roster_file import open_roster, write_roster

TODAY = date(2026, 5, 9)
SURNAMES = ["Nguyễn"] * 38 + ["Trần"] * 11 + ["Lê"] * 9 + ["Phạm"] * 7 + ["Hoàng"] * 5 + [
    "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trịnh"] * 2
MIDDLE_M = ["Văn", "Hữu", "Đức", "Minh", "Quang", "Thanh", "Công", "Xuân", "Ngọc", "Đình"]
MIDDLE_F = ["Thị", "Ngọc", "Thanh", "Thu", "Minh", "Thùy", "Kim", "Hồng", "Phương", "Mai"]
GIVEN_M = ["An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Long",
           "Nam", "Phong", "Quân", "Sơn", "Thắng", "Toàn", "Trung", "Tuấn", "Việt"]
GIVEN_F = ["Anh", "Châu", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Lan", "Linh",
           "Mai", "Nga", "Nhung", "Phương", "Quỳnh", "Thảo", "Trang", "Vy", "Yến"]
AREAS = ["Phường Cốc Lếu, TP Lào Cai", "Phường Kim Tân", "Xã Cam Đường", "Thị trấn Sa Pa",
         "Phường Bắc Lệnh", "Xã Gia Phú, Bảo Thắng", "Phường Duyên Hải", "Xã Văn Bàn"]
# Three-digit VN mobile prefixes (0 dropped), all valid in the national numbering plan.
PREFIXES = ["90", "91", "93", "94", "96", "97", "98", "32", "33", "34", "35", "36", "37", "38", "39",
            "70", "76", "77", "78", "79", "81", "82", "83", "84", "85", "86", "88"]
HEADERS = ["STT", "Họ tên", "Số điện thoại", "Nhóm máu", "Giới tính", "Ngày sinh", "Cân nặng (kg)",
           "Lần hiến gần nhất", "Số lần hiến", "Vĩ độ", "Kinh độ", "Địa chỉ", "Telegram ID", "Ghi chú"]


def _phone_forms(national: str) -> str:
    form = random.random()
    if form < 0.55:
        return f"0{national[:3]} {national[3:6]} {national[6:]}"
    if form < 0.8:
        return "0" + national
    if form < 0.95:
        return f"+84 {national}"
    return f"(+84) {national[:3]}.{national[3:6]}.{national[6:]}"


def _blood_type() -> str:
    abo = random.choices(["O", "B", "A", "AB"], weights=[45, 30, 20, 5])[0]
    negative = random.random() < 0.001
    return random.choice([f"{abo}{'-' if negative else '+'}",
                          f"{abo} Rh{'−' if negative else '+'}",
                          f"{abo} {'âm' if negative else 'dương'}"])


def generate_rows(n: int, seed: int):
    """Yield n data rows (lists of cells), one at a time; about 0.2 % are bad on purpose."""
    rng = random.Random(seed)
    random.seed(seed)
    numbers = rng.sample(range(len(PREFIXES) * 10_000_000), n)
    telegram_ids = iter(rng.sample(range(100_000_000, 8_000_000_000), n))
    previous_phone = "0912 000 000"
    for i, k in enumerate(numbers, 1):
        prefix, rest = divmod(k, 10_000_000)
        national = PREFIXES[prefix] + f"{rest:07d}"
        phone = _phone_forms(national)
        male = rng.random() < 0.5
        name = " ".join([rng.choice(SURNAMES), rng.choice(MIDDLE_M if male else MIDDLE_F),
                         rng.choice(GIVEN_M if male else GIVEN_F)])
        age_days = rng.randint(17 * 365, 63 * 365)  # a few under 18 and over 60: kept with a warning
        born = TODAY - timedelta(days=age_days)
        birth = f"{born.day:02d}/{born.month:02d}/{born.year}" if rng.random() < 0.85 else str(born.year)
        weight = f"{rng.randint(42, 85)}" if rng.random() < 0.7 else f"{rng.randint(42, 85)},5"
        gave = rng.random() < 0.6
        last = TODAY - timedelta(days=rng.randint(1, 700))
        last_text = f"{last.day}/{last.month}/{last.year}" if gave else ""
        count = str(rng.randint(1, 40)) if gave else ""
        located = rng.random() < 0.3
        lat = f"{22.48 + rng.uniform(-0.2, 0.2):.5f}" if located else ""
        lon = f"{103.97 + rng.uniform(-0.2, 0.2):.5f}" if located else ""
        tg = str(next(telegram_ids)) if rng.random() < 0.2 else ""
        note = "Trưởng nhóm" if rng.random() < 0.01 else ""
        row = [str(i), name, phone, _blood_type(), "Nam" if male else "Nữ", birth, weight,
               last_text, count, lat, lon, rng.choice(AREAS), tg, note]
        bad = rng.random()
        if bad < 0.0005:
            row[2] = "0243 826 2345"  # a landline
        elif bad < 0.001:
            row[3] = "C+"
        elif bad < 0.0015:
            row[7] = "01/01/2030"  # a last donation in the future
        elif bad < 0.002:
            row[2] = previous_phone  # the same person twice
        previous_phone = row[2]
        yield row


def write_csv(path: Path, n: int, seed: int) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(HEADERS)
        writer.writerows(generate_rows(n, seed))


def write_xlsx(path: Path, n: int, seed: int) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Danh sách")
    sheet.append(["DANH SÁCH THÀNH VIÊN CLB HIẾN MÁU DỰ BỊ"])  # a title row, as templates have
    sheet.append(HEADERS)
    for row in generate_rows(n, seed):
        row[2] = int(row[2].replace(" ", "").lstrip("0")) if row[2].startswith("0") else row[2]  # Excel drops the 0
        sheet.append(row)
    book.save(path)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


async def _scratch_database(url: str) -> tuple[str, Callable[[], Awaitable[None]] | None]:
    """The URL to run on, and how to drop it afterwards (PostgreSQL: a database of its own)."""
    if url.startswith("sqlite"):
        return url, None
    import asyncpg

    parts = urlsplit(url.replace("postgresql+asyncpg", "postgresql"))
    name = f"rr_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=parts.hostname, port=parts.port or 5432,
                                     user=parts.username, password=parts.password,
                                     database=parts.path.lstrip("/") or "postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(url)._replace(path="/" + name)), lambda: admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_import(sessionmaker, club_id: int, path: Path, *, dry_run: bool = False):
    started, cpu = time.perf_counter(), cpu_seconds()
    with open_roster(path, today=TODAY) as roster:
        async with sessionmaker() as session:
            report = await import_roster(session, club_id, roster, dry_run=dry_run, today=TODAY, actor="bench")
    return report, time.perf_counter() - started, cpu_seconds() - cpu


def parse_only(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    with open_roster(path, today=TODAY) as roster:
        n = sum(1 for _ in roster)
    return n, time.perf_counter() - started


def line(label: str, report, seconds: float, cpu: float) -> str:
    rate = report.rows / seconds if seconds else 0.0
    return (f"  {label:<20} {report.rows:>8,} rows {seconds:>6.2f} s {rate:>8,.0f} rows/s "
            f"(CPU {cpu:5.2f} s)  peak RSS {peak_mb():,.0f} MB\n"
            f"  {'':<20} created {report.created:,} · updated {report.updated:,} · "
            f"unchanged {report.unchanged:,} · refused {report.refused:,} · warned {report.warned:,}")


async def bench(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="rr-bench-"))
    csv_path, xlsx_path = tmp / "roster.csv", tmp / "roster.xlsx"
    started = time.perf_counter()
    write_csv(csv_path, args.rows, seed=1)
    print(f"Roster import benchmark — {sys.platform}, Python {sys.version.split()[0]}")
    print(f"  generated {args.rows:,}-row CSV ({csv_path.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - started:.1f} s; peak RSS so far {peak_mb():,.0f} MB")
    ok = True
    for label, url in (("CSV", args.db_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"),):
        url, drop = await _scratch_database(url)
        engine = make_engine(url)
        await create_schema(engine)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as s:
            club = Club(name="CLB hiến máu dự bị Lào Cai", lat=22.48, lon=103.97)
            s.add(club)
            await s.commit()
            club_id = club.id
        print(f"  database: {engine.dialect.name} ({engine.url.render_as_string(hide_password=True)})")
        cpu = cpu_seconds()
        n, secs = parse_only(csv_path)
        print(f"  {'read + check only':<20} {n:>8,} rows {secs:>6.2f} s {n / secs:>8,.0f} rows/s "
              f"(CPU {cpu_seconds() - cpu:5.2f} s)")
        report, secs, cpu = await run_import(sessionmaker, club_id, csv_path, dry_run=True)
        print(line("dry run", report, secs, cpu))
        report, secs, cpu = await run_import(sessionmaker, club_id, csv_path)
        print(line("first import", report, secs, cpu))
        first_rate = report.rows / secs
        again, secs2, cpu = await run_import(sessionmaker, club_id, csv_path)
        print(line("same file again", again, secs2, cpu))
        if again.created or again.updated or again.unchanged != report.created + report.updated:
            print("  !! the second import changed something")
            ok = False
        started, cpu = time.perf_counter(), cpu_seconds()
        async with sessionmaker() as session:
            exported = await export_roster(session, club_id, actor="bench")
        write_roster(tmp / "export.csv", "csv", exported)
        secs = time.perf_counter() - started
        print(f"  {'export + write CSV':<20} {len(exported):>8,} rows {secs:>6.2f} s "
              f"{len(exported) / secs:>8,.0f} rows/s (CPU {cpu_seconds() - cpu:5.2f} s)  peak RSS {peak_mb():,.0f} MB")
        del exported
        await engine.dispose()
        if drop:
            await drop()

    if args.xlsx_rows:
        write_xlsx(xlsx_path, args.xlsx_rows, seed=2)
        url, drop = await _scratch_database(args.db_url or f"sqlite+aiosqlite:///{tmp / 'bench-xlsx.db'}")
        engine = make_engine(url)
        await create_schema(engine)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as s:
            club = Club(name="CLB XLSX", lat=22.48, lon=103.97)
            s.add(club)
            await s.commit()
            club_id = club.id
        report, secs, cpu = await run_import(sessionmaker, club_id, xlsx_path)
        print(line(f"XLSX {args.xlsx_rows:,} rows", report, secs, cpu))
        await engine.dispose()
        if drop:
            await drop()

    target = 10_000
    print(f"  target: ≥ {target:,} rows/s and < 300 MB for the first CSV import: "
          f"{'met' if first_rate >= target and peak_mb() < 300 else 'NOT met'}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--xlsx-rows", type=int, default=10_000, help="0 to skip the XLSX run")
    parser.add_argument("--db-url", default=None,
                        help="default: a temporary SQLite file; a postgresql+asyncpg:// URL runs on a scratch database")
    return asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
