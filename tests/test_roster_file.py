"""Reading and writing club roster spreadsheets."""

from __future__ import annotations

import io
import tracemalloc
from datetime import date, datetime

import openpyxl
import pytest

from ground.roster_file import RosterFileError, RosterRow, open_roster, write_roster

TODAY = date(2026, 5, 9)


def csv_file(text: str, *, bom: bool = False, name: str = "roster.csv") -> tuple[io.BytesIO, str]:
    data = text.encode("utf-8")
    return io.BytesIO((b"\xef\xbb\xbf" if bom else b"") + data), name


def read(source, name, **kwargs):
    with open_roster(source, filename=name, today=TODAY, **kwargs) as roster:
        return roster, list(roster)


def xlsx_file(rows: list[list]) -> io.BytesIO:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    buf.seek(0)
    return buf


def test_an_english_roster_is_read_into_checked_rows():
    roster, rows = read(*csv_file(
        "name,phone,blood_type,sex,birth_date,weight_kg,last_donation,donations,lat,lon,area,telegram_id,note\n"
        "Nguyễn Thị Lan,0912 345 678,O Rh−,F,25/12/1990,50,01/03/2026,4,21.03,105.85,Ba Đình,123456789,hi\n"))
    assert roster.format == "csv"
    assert roster.notices == []
    (result,) = rows
    assert result.row_number == 2
    assert result.errors == [] and result.warnings == []
    assert result.row == RosterRow(
        full_name="Nguyễn Thị Lan", phone="+84912345678", abo="O", rh="-", sex="F",
        birth_date=date(1990, 12, 25), weight_kg=50.0, last_donation_date=date(2026, 3, 1),
        donation_count=4, lat=21.03, lon=105.85, area="Ba Đình", telegram_id=123456789, note="hi")


@pytest.mark.parametrize("header", [
    "Họ tên;Số điện thoại;Nhóm máu;Giới tính;Ngày sinh;Cân nặng;Lần hiến gần nhất;Số lần hiến;Địa chỉ;Ghi chú",
    "HỌ TÊN;SỐ ĐIỆN THOẠI;NHÓM MÁU;GIỚI TÍNH;NGÀY SINH;CÂN NẶNG (KG);LẦN HIẾN GẦN NHẤT;SỐ LẦN HIẾN;ĐỊA CHỈ;GHI CHÚ",
    "ho ten;so dien thoai;nhom mau;gioi tinh;ngay sinh;can nang;lan hien gan nhat;so lan hien;dia chi;ghi chu",
    " Họ  tên ;Số_điện_thoại;Nhóm máu;Giới tính;Ngày sinh;Cân nặng (kg);Lần hiến gần nhất;Số lần hiến;Địa chỉ;Ghi chú",
])
def test_vietnamese_headers_with_or_without_diacritics_and_a_semicolon_csv(header):
    _roster, rows = read(*csv_file(header + "\nTrần Văn Nam;0987654321;B dương;Nam;1/2/1985;65,5;;12;Lào Cai;\n",
                                   bom=True))
    (result,) = rows
    row = result.row
    assert (row.full_name, row.phone, row.abo, row.rh, row.sex) == ("Trần Văn Nam", "+84987654321", "B", "+", "M")
    assert (row.birth_date, row.weight_kg, row.donation_count) == (date(1985, 2, 1), 65.5, 12)
    assert row.last_donation_date is None and row.area == "Lào Cai" and row.note == ""


def test_a_name_split_into_family_and_given_name_columns_is_joined():
    roster, rows = read(*csv_file("STT;Họ và tên đệm;Tên;SĐT\n1;Nguyễn Thị;Lan;0912345678\n2;;Mai;0912345679\n"))
    assert roster.ignored_columns == ["STT"]
    assert [r.row.full_name for r in rows] == ["Nguyễn Thị Lan", "Mai"]


def test_unknown_columns_are_ignored_and_reported_once():
    roster, rows = read(*csv_file("STT,name,phone,Facebook\n1,Lan,0912345678,fb.com/lan\n2,Mai,0912345679,\n"))
    assert roster.ignored_columns == ["STT", "Facebook"]
    assert len(roster.notices) == 1 and "STT, Facebook" in str(roster.notices[0])
    assert [r.row.full_name for r in rows] == ["Lan", "Mai"]


def test_a_file_without_a_phone_column_is_refused_naming_it():
    with pytest.raises(RosterFileError) as exc:
        read(*csv_file("name,blood_type\nLan,O+\n"))
    assert "phone (Số điện thoại)" in str(exc.value)


def test_a_title_above_the_header_and_blank_rows_are_fine_and_row_numbers_stay_the_sheets():
    _roster, rows = read(*csv_file(
        "DANH SÁCH CLB HIẾN MÁU DỰ BỊ;;\n;;\nHọ tên;SĐT;STT\nLan;0912345678;1\n;;2\n;;\nMai;0912345679;4\n"))
    assert [(r.row_number, r.row.full_name) for r in rows] == [(4, "Lan"), (7, "Mai")]


def test_each_bad_cell_is_reported_with_its_row_and_column():
    _roster, rows = read(*csv_file(
        "name,phone,blood_type,birth_date,weight_kg\n"
        "Lan,0912345678,O+,1/1/1990,50\n"
        ",call me,C+,31/02/1990,5\n"
        "Mai,024 3826 2345,AB,,\n"))
    assert rows[0].row is not None
    bad = rows[1]
    assert bad.row is None and bad.row_number == 3
    assert sorted(e.column for e in bad.errors) == ["birth_date", "blood_type", "name", "phone", "weight_kg"]
    assert str(bad.errors[0].as_text()).startswith("row 3, ")
    worse = rows[2]
    assert {e.column for e in worse.errors} == {"phone", "blood_type"}
    assert any("mobile" in str(e.text) for e in worse.errors)
    assert any("no Rh" in str(e.text) for e in worse.errors)


def test_the_same_phone_twice_refuses_the_later_row_naming_the_earlier_one():
    _roster, rows = read(*csv_file("name,phone\nLan,0912345678\nMai,0912345679\nLan again,+84 912 345 678\n"))
    assert [r.row is not None for r in rows] == [True, True, False]
    (error,) = rows[2].errors
    assert error.column == "phone" and error.text.params["row"] == 2


def test_the_same_telegram_id_twice_is_refused_too():
    _roster, rows = read(*csv_file("name,phone,telegram_id\nLan,0912345678,42\nMai,0912345679,42\n"))
    assert rows[1].row is None and rows[1].errors[0].column == "telegram_id"


def test_a_last_donation_in_the_future_is_refused():
    _roster, rows = read(*csv_file("name,phone,last_donation\nLan,0912345678,10/05/2026\n"))
    (error,) = rows[0].errors
    assert error.column == "last_donation" and "future" in error.text.msgid


def test_an_under_18_is_kept_with_a_warning_saying_from_when_they_may_be_asked():
    _roster, rows = read(*csv_file("name,phone,birth_date\nMinh,0912345678,15/08/2009\n"))
    (result,) = rows
    assert result.row is not None
    (warning,) = result.warnings
    assert warning.column == "birth_date"
    assert "under 18" in str(warning.text) and "15/08/2027" in str(warning.text)


def test_over_60_and_underweight_and_unknown_type_are_kept_with_warnings():
    _roster, rows = read(*csv_file(
        "name,phone,blood_type,sex,birth_date,weight_kg\n"
        "Ông Ba,0912345678,O+,M,01/01/1950,60\n"
        "Cô Tư,0912345679,A+,F,01/01/1995,40\n"
        "Chú Năm,0912345670,,M,01/01/1990,60\n"))
    assert all(r.row is not None for r in rows)
    assert "over 60" in str(rows[0].warnings[0].text)
    assert "40 kg is under the 42 kg minimum" in str(rows[1].warnings[0].text)
    assert rows[2].row.abo is None and "unknown" in str(rows[2].warnings[0].text)


def test_an_xlsx_with_real_date_and_number_cells_is_read():
    buf = xlsx_file([
        ["Danh sách thành viên"],
        ["Họ tên", "Số điện thoại", "Nhóm máu", "Ngày sinh", "Cân nặng", "Lần hiến gần nhất", "Telegram ID"],
        ["Lan", 912345678, "O+", datetime(1990, 12, 25), 50.5, datetime(2026, 1, 2), 123456789],
        [None, None, None, None, None, None, None],
        ["Mai", "0912345679", "B-", 1988, 48, None, None],
        ["Cúc", "bad", "B-", None, None, None, None],
    ])
    roster, rows = read(buf, "roster.xlsx")
    assert roster.format == "xlsx" and roster.header_row == 2
    assert [r.row_number for r in rows] == [3, 5, 6]
    lan, mai, cuc = rows
    assert (lan.row.phone, lan.row.birth_date, lan.row.weight_kg) == ("+84912345678", date(1990, 12, 25), 50.5)
    assert lan.row.last_donation_date == date(2026, 1, 2) and lan.row.telegram_id == 123456789
    assert mai.row.birth_date == date(1988, 12, 31) and mai.row.rh == "-"
    assert cuc.errors[0].column == "Số điện thoại"


@pytest.mark.parametrize("name, data", [
    ("photo.xlsx", b"\x89PNG\r\n\x1a\n" + b"\0" * 100),
    ("photo.csv", b"\x89PNG\r\n\x1a\n" + b"\0" * 100),
    ("roster.xlsx", b"PK\x03\x04 but not really a zip"),
    ("roster.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    ("roster.pdf", b"%PDF-1.4"),
    ("roster", b"name,phone\n"),
    ("roster.csv", b""),
    ("roster.csv", "name,phone\n".encode("utf-16")),
])
def test_what_is_not_a_roster_spreadsheet_is_refused_clearly(name, data):
    with pytest.raises(RosterFileError) as exc:
        read(io.BytesIO(data), name)
    assert exc.value.text.msgid
    str(exc.value.text)


def test_a_non_utf8_csv_is_refused_with_the_line_to_look_at():
    data = "name,phone\nLan,0912345678\nLê Mai,0912345679\n".encode("cp1258")
    with pytest.raises(RosterFileError) as exc:
        read(io.BytesIO(data), "roster.csv")
    assert exc.value.text.params["line"] == 3


def test_a_path_is_opened_and_closed(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("name,phone\nLan,0912345678\n", encoding="utf-8")
    with open_roster(path, today=TODAY) as roster:
        assert [r.row.phone for r in roster] == ["+84912345678"]


def test_rows_stream_one_at_a_time_so_a_big_file_never_sits_in_memory():
    body = "".join(f"Donor {i},09{i:08d},O+,01/01/1990\n" for i in range(30_000))
    source, name = csv_file("name,phone,blood_type,birth_date\n" + body)
    tracemalloc.start()
    try:
        with open_roster(source, filename=name, today=TODAY) as roster:
            count = sum(1 for r in roster if r.row is not None)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    # The rows as a list would take well over 10 MB; streaming needs the duplicate-phone index only.
    assert peak < 6_000_000


SAMPLE = [
    RosterRow("Nguyễn Thị Lan", "+84912345678", "O", "-", "F", date(1990, 12, 25), 50.5, date(2026, 3, 1),
              4, 21.0285, 105.8542, "Ba Đình, Hà Nội", 123456789, "nhóm trưởng; gọi tối"),
    RosterRow("Trần Văn Nam", "+84987654321", "AB", "+", "M", date(1985, 2, 1), 65.0, None, 0,
              None, None, "", None, ""),
    RosterRow("Lê Mai", "+84912000001", None, None, None, None, None, None, None, None, None, "", None, ""),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("lang", ["en", "vi"])
def test_a_written_roster_reads_back_unchanged(fmt, lang):
    buf = io.BytesIO()
    write_roster(buf, fmt, SAMPLE, lang=lang)
    buf.seek(0)
    roster, rows = read(buf, f"export.{fmt}")
    assert roster.ignored_columns == []
    assert [r.row for r in rows] == SAMPLE


def test_vietnamese_headers_and_values_are_written_when_asked():
    buf = io.BytesIO()
    write_roster(buf, "csv", SAMPLE[:1], lang="vi")
    text = buf.getvalue().decode("utf-8-sig")
    assert text.startswith("Họ tên,Số điện thoại,Nhóm máu,")
    assert ",O\u2212,Nữ,25/12/1990," in text


@pytest.mark.parametrize("name", ["roster.csv", "roster.xlsx"])
def test_the_example_rosters_read_cleanly_and_match_their_script(name):
    """examples/ is what the README's commands import: every row reads, the two files agree with
    examples/make_roster.py, and an unknown type or a missing weight is kept, not refused."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_roster", root / "examples" / "make_roster.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    with open_roster(root / "examples" / name, today=date(2026, 12, 4)) as roster:
        results = list(roster)
    assert [r.errors for r in results if r.row is None] == []
    assert [r.row for r in results] == maker.rows()
    assert any(r.row.abo is None for r in results) and any(r.row.weight_kg is None for r in results)
    assert any(r.row.rh == "-" for r in results)
