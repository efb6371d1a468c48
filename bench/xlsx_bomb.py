"""What does a zip-bomb workbook cost the bot? Memory and time before and after an attempt.

Builds a small .xlsx (a few hundred KB) whose worksheet or shared-strings part unpacks to
hundreds of MB, then hands it to the real reader (``open_roster``), which refuses it from
the zip's directory before parsing anything. ``--unguarded`` also times openpyxl reading
it directly, i.e. what the reader did before the check.

    python bench/xlsx_bomb.py [--unpacked-mb 400] [--part sheet|strings] [--unguarded]

Memory is the process's resident set (VmRSS) read from /proc before and after.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ground.roster_file import RosterFileError, RosterRow, open_roster, write_roster

_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
         '<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c><c r="B1" t="inlineStr"><is><t>phone</t></is>'
         '</c></row>')
_SST_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
_CHUNK_ROWS = 20_000


def make_bomb(unpacked_mb: float = 400, part: str = "sheet", level: int = 9) -> bytes:
    """A workbook whose ``part`` (the first sheet, or the shared strings) unpacks to about ``unpacked_mb``.

    ``level``: zlib's; 9 makes the smallest file, 1 the fastest to build (tests)."""
    plain = io.BytesIO()
    write_roster(plain, "xlsx", [RosterRow("Lan", "+84912345678")])
    out = io.BytesIO()
    target = int(unpacked_mb * 1024 * 1024)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as dst:
        for info in src.infolist():
            if info.filename == "xl/worksheets/sheet1.xml" and part == "sheet":
                with dst.open(info.filename, "w", force_zip64=True) as f:
                    f.write(_HEAD.encode())
                    row = b"<row><c t=\"inlineStr\"><is><t>x</t></is></c></row>"
                    written = 0
                    while written < target:
                        f.write(row * _CHUNK_ROWS)
                        written += len(row) * _CHUNK_ROWS
                    f.write(b"</sheetData></worksheet>")
            else:
                dst.writestr(info, src.read(info.filename))
        if part == "strings":
            with dst.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
                f.write(_SST_HEAD.encode())
                si = b"<si><t>x</t></si>"
                written = 0
                while written < target:
                    f.write(si * _CHUNK_ROWS)
                    written += len(si) * _CHUNK_ROWS
                f.write(b"</sst>")
    return out.getvalue()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unpacked-mb", type=float, default=400)
    parser.add_argument("--part", choices=("sheet", "strings"), default="sheet")
    parser.add_argument("--unguarded", action="store_true", help="also time openpyxl reading the bomb directly")
    args = parser.parse_args()
    bomb = make_bomb(args.unpacked_mb, args.part)
    print(f"bomb: {len(bomb) / 1024:.0f} KB on disk, {args.unpacked_mb:g} MB unpacked ({args.part})")
    before = rss_mb()
    t0 = time.perf_counter()
    try:
        with open_roster(io.BytesIO(bomb), filename="bomb.xlsx", today=date(2026, 5, 9)) as roster:
            rows = sum(1 for _ in roster)
        outcome = f"read {rows} rows"
    except RosterFileError as err:
        outcome = f"refused: {err.text.msgid[:60]}…"
    secs = time.perf_counter() - t0
    print(f"open_roster: {outcome} in {secs * 1000:.1f} ms; RSS {before:.0f} MB before, {rss_mb():.0f} MB after")
    if args.unguarded:
        import openpyxl

        before = rss_mb()
        t0 = time.perf_counter()
        book = openpyxl.load_workbook(io.BytesIO(bomb), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        sheet.reset_dimensions()
        rows = sum(1 for _ in sheet.iter_rows(values_only=True))
        book.close()
        print(f"openpyxl unguarded: {rows} rows in {time.perf_counter() - t0:.1f} s; "
              f"RSS {before:.0f} MB before, {rss_mb():.0f} MB after")


if __name__ == "__main__":
    main()
