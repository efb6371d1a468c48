"""A workbook that unpacks to far more than a roster is refused before it is unpacked (issue 10)."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.xlsx_bomb import make_bomb, rss_mb
from ground import roster_file
from ground.roster_file import RosterFileError, RosterRow, open_roster, write_roster

TODAY = date(2026, 5, 9)


def a_roster(n: int = 3) -> bytes:
    out = io.BytesIO()
    write_roster(out, "xlsx", [RosterRow(f"Người {i}", f"+849120000{i:02d}", "O", "+") for i in range(n)])
    return out.getvalue()


def with_parts(data: bytes, extra: dict[str, int]) -> bytes:
    """The workbook with extra parts of the given (declared and real) sizes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        for name, size in extra.items():
            dst.writestr(name, b"\0" * size)
    return out.getvalue()


def test_a_zip_bomb_is_refused_from_its_directory_without_unpacking_it():
    bomb = make_bomb(unpacked_mb=200, level=1)
    assert len(bomb) < 5 * 1024 * 1024  # under the upload limit (a few hundred KB at zlib's level 9)
    before = rss_mb()
    with pytest.raises(RosterFileError) as exc:
        open_roster(io.BytesIO(bomb), filename="roster.xlsx", today=TODAY)
    after = rss_mb()
    print(f"bomb attempt: RSS {before:.0f} MB before, {after:.0f} MB after")
    assert exc.value.text.params["size"] == "200" and exc.value.text.params["limit"] == 128
    assert after - before < 20  # nothing was unpacked (openpyxl took +247 MB and 11–21 s for a smaller one)


def test_too_many_parts_or_too_many_shared_strings_are_refused_too():
    with pytest.raises(RosterFileError):
        open_roster(io.BytesIO(with_parts(a_roster(), {f"xl/media/p{i}.bin": 1 for i in range(600)})),
                    filename="roster.xlsx", today=TODAY)
    with pytest.raises(RosterFileError):
        open_roster(io.BytesIO(with_parts(a_roster(), {"xl/sharedStrings.xml": roster_file.MAX_XLSX_SHARED_STRINGS
                                                       + 1})), filename="roster.xlsx", today=TODAY)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"xl/extra/[a-z]{1,8}\.bin", fullmatch=True),
                       st.integers(min_value=0, max_value=4096), max_size=8),
       st.integers(min_value=0, max_value=12))
def test_a_workbook_within_the_bounds_reads_as_before(extra, n):
    """Extra parts within the bounds change nothing: the same rows come out."""
    with open_roster(io.BytesIO(with_parts(a_roster(n), extra)), filename="roster.xlsx", today=TODAY) as roster:
        rows = [r.row.phone for r in roster]
    assert rows == [f"+849120000{i:02d}" for i in range(n)]


def test_reading_stops_past_the_row_cap_blank_rows_included():
    """A workbook within the unpacked bound held 1,300,000 junk rows: 493 s of a worker thread."""
    with pytest.raises(RosterFileError) as exc:
        with open_roster(io.BytesIO(a_roster(20)), filename="roster.xlsx", today=TODAY, max_rows=10) as roster:
            list(roster)
    assert exc.value.text.params == {"limit": 10}
    csv = ("Họ tên,Điện thoại\n" + "\n" * 30 + "Lan,+84912000001\n").encode()
    with pytest.raises(RosterFileError):
        with open_roster(io.BytesIO(csv), filename="roster.csv", today=TODAY, max_rows=10) as roster:
            list(roster)
    with open_roster(io.BytesIO(a_roster(9)), filename="roster.xlsx", today=TODAY, max_rows=10) as roster:
        assert len(list(roster)) == 9  # header + 9 rows: within the cap
