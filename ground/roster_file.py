"""Roster spreadsheets: reading them row by row into checked rows, and writing them.

A club lead's file is CSV or XLSX (chosen by extension), with a header row in
English or Vietnamese. Rows stream one at a time, so a 100,000-row file never
sits in memory as a whole. Every row comes back as a :class:`RowResult`: a
checked :class:`RosterRow` with warnings, or the list of what is wrong with it,
each problem named by the row number the spreadsheet shows and the column.

Parsing each value is :mod:`ground.parsing`'s job; eligibility warnings
come from :func:`ground.eligibility.assess`.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Self

from ground import eligibility
from ground.eligibility import DonorFacts, Rules, assess
from ground.config import EligibilityConfig
from ground.i18n import N_, Text
from ground.parsing import (
    ParseError,
    fold,
    format_blood_type,
    format_date,
    parse_birth_date,
    parse_blood_type,
    parse_count,
    parse_latitude,
    parse_longitude,
    parse_name,
    parse_past_date,
    parse_phone,
    parse_sex,
    parse_telegram_id,
    parse_weight,
)

__all__ = [
    "COLUMNS",
    "RosterFile",
    "RosterFileError",
    "RosterRow",
    "RowError",
    "RowResult",
    "RowWarning",
    "open_roster",
    "write_roster",
]


@dataclass(slots=True)
class RosterRow:
    full_name: str
    phone: str  # E.164
    abo: str | None = None  # None: blood type unknown
    rh: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    weight_kg: float | None = None
    last_donation_date: date | None = None
    donation_count: int | None = None  # None: the file does not say
    lat: float | None = None
    lon: float | None = None
    area: str = ""
    telegram_id: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class _RowNote:
    row_number: int
    column: str  # the header as the file writes it
    text: Text

    def as_text(self) -> Text:
        return Text(N_("row {row}, {column}: {message}"),
                    {"row": self.row_number, "column": self.column, "message": self.text})


@dataclass(frozen=True, slots=True)
class RowError(_RowNote):
    """Why a row was refused."""


@dataclass(frozen=True, slots=True)
class RowWarning(_RowNote):
    """A row that was kept, with something the club lead should know about it."""


@dataclass(slots=True)
class RowResult:
    row_number: int
    row: RosterRow | None  # None when refused
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)


class RosterFileError(ParseError):
    """The whole file cannot be used (not a spreadsheet, no header, a required column missing)."""


# field name, English header, Vietnamese header, other spellings (compared folded, letters and digits only)
COLUMNS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("name", "name", "Họ tên", ("fullname", "hovaten", "ten", "hotenday", "tenthanhvien")),
    ("phone", "phone", "Số điện thoại", ("phonenumber", "mobile", "sdt", "dienthoai", "sodt", "sodidong")),
    ("blood_type", "blood_type", "Nhóm máu", ("bloodgroup",)),
    ("sex", "sex", "Giới tính", ("gender",)),
    ("birth_date", "birth_date", "Ngày sinh", ("dateofbirth", "dob", "birthday", "namsinh", "birthyear")),
    ("weight_kg", "weight_kg", "Cân nặng (kg)", ("weight", "cannang")),
    ("last_donation", "last_donation", "Lần hiến gần nhất",
     ("lastdonationdate", "ngayhiengannhat", "lanhienmaugannhat", "ngayhienmaugannhat")),
    ("donations", "donations", "Số lần hiến", ("donationcount", "solanhienmau", "solandahien")),
    ("lat", "lat", "Vĩ độ", ("latitude",)),
    ("lon", "lon", "Kinh độ", ("lng", "long", "longitude")),
    ("area", "area", "Địa chỉ", ("address", "khuvuc", "noio")),
    ("telegram_id", "telegram_id", "Telegram ID", ("telegram", "tgid")),
    ("note", "note", "Ghi chú", ("notes", "comment")),
)
REQUIRED = ("name", "phone")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _header_key(header: Any) -> str:
    return _NON_ALNUM.sub("", fold(str(header))) if header is not None else ""


_ALIASES: dict[str, str] = {}
for _field, _en, _vi, _others in COLUMNS:
    for _spelling in (_field, _en, _vi, *_others):
        _ALIASES[_header_key(_spelling)] = _field
# Vietnamese forms often split the name: "Họ (và tên đệm)" then "Tên". Read together they are the name.
FAMILY_NAME = "family_name"
for _spelling in ("Họ", "Họ lót", "Họ đệm", "Họ và tên đệm", "Họ và chữ lót", "family_name", "surname"):
    _ALIASES[_header_key(_spelling)] = FAMILY_NAME

# What people type in a cell to mean "nothing here".
_EMPTY_MARKERS = frozenset(
    form
    for marker in ("", "-", "—", "–", "?", "n/a", "na", "none", "unknown",
                   "không rõ", "chưa rõ", "chưa biết", "khong ro", "chua ro", "chua biet")
    for form in (marker, marker.upper(), marker.capitalize(), marker.title())
)
_HEADER_SEARCH_ROWS = 10  # templates often put a title above the header row
# A workbook is a zip: a few hundred KB can unpack to gigabytes (a "zip bomb"), and openpyxl
# holds every shared string in memory. A 100,000-member roster unpacks to about 70 MB
# (bench/import_roster.py), its shared strings to under 10 MB; these bounds are checked in the
# zip's directory before anything is unpacked (zipfile stops at the sizes it declares).
MAX_XLSX_UNPACKED = 128 * 1024 * 1024
MAX_XLSX_SHARED_STRINGS = 32 * 1024 * 1024
MAX_XLSX_PARTS = 500
_CSV_CHECK_CHUNK = 1 << 20


def _is_empty(value: Any) -> bool:
    if value is None or value in _EMPTY_MARKERS:
        return True
    # Called for every cell of every row: strip only when there is space to strip.
    return (value.__class__ is str and len(value) < 12 and (value[:1].isspace() or value[-1:].isspace())
            and value.strip().lower() in _EMPTY_MARKERS)


def _clean_text(value: Any) -> str:
    text = str(value).strip()
    return " ".join(text.split()) if "\n" in text or "  " in text else text


class _Layout:
    """Which column holds which field, worked out once from the header row."""

    def __init__(self, header_row: int, headers: tuple[Any, ...]) -> None:
        self.header_row = header_row
        self.columns: dict[str, tuple[int, str]] = {}
        self.ignored: list[str] = []
        for index, header in enumerate(headers):
            name = _clean_text(header) if header is not None else ""
            key = _header_key(header)
            if not key:
                continue
            fld = _ALIASES.get(key)
            if fld is None:
                self.ignored.append(name)
            elif fld in self.columns:
                raise RosterFileError(Text(
                    N_("Two columns mean the same thing: “{first}” and “{second}”. Keep one of them."),
                    {"first": self.columns[fld][1], "second": name}))
            else:
                self.columns[fld] = (index, name)

        if FAMILY_NAME in self.columns and "name" not in self.columns:
            self.ignored.append(self.columns.pop(FAMILY_NAME)[1])

    @property
    def missing(self) -> list[str]:
        return [f for f in REQUIRED if f not in self.columns]


def _find_layout(rows: Iterator[tuple[int, tuple[Any, ...]]]) -> _Layout:
    best: _Layout | None = None
    seen = 0
    for number, cells in rows:
        if all(_is_empty(c) for c in cells):
            continue
        layout = _Layout(number, cells)
        if not layout.missing:
            return layout
        if best is None or len(layout.columns) > len(best.columns):
            best = layout
        seen += 1
        if seen >= _HEADER_SEARCH_ROWS:
            break
    if best is None:
        raise RosterFileError(Text(N_("The file is empty: there is no header row and no donor.")))
    english = {f: en for f, en, _vi, _o in COLUMNS}
    vietnamese = {f: vi for f, _en, vi, _o in COLUMNS}
    missing = best.missing
    raise RosterFileError(Text(
        N_("The file has no {columns} column. The first row must name the columns, "
           "for example: name, phone, blood_type (or: Họ tên, Số điện thoại, Nhóm máu)."),
        {"columns": " / ".join(f"{english[f]} ({vietnamese[f]})" for f in missing)}))


class _RowChecker:
    """Turns one row of cells into a RowResult; keeps what it needs to catch duplicates."""

    def __init__(self, layout: _Layout, *, today: date, rules: Rules, region: str) -> None:
        self.today = today
        self.rules = rules
        cols = dict(layout.columns)
        family = cols.pop(FAMILY_NAME, None)
        # (family name, given name) column indexes when the file splits the name in two
        self.name_parts: tuple[int, int] | None = (family[0], cols["name"][0]) if family else None
        self.headers = {f: header for f, (_i, header) in cols.items()}
        parsers: dict[str, Callable[[Any], Any]] = {
            "name": parse_name,
            "phone": lambda v: parse_phone(v, region),
            "blood_type": parse_blood_type,
            "sex": parse_sex,
            "birth_date": lambda v: parse_birth_date(v, today=today),
            "weight_kg": parse_weight,
            "last_donation": lambda v: parse_past_date(v, today=today),
            "donations": parse_count,
            "lat": parse_latitude,
            "lon": parse_longitude,
            "area": _clean_text,
            "telegram_id": parse_telegram_id,
            "note": _clean_text,
        }
        self.plan = [(f, index, header, parsers[f]) for f, (index, header) in cols.items()]
        self.has_blood_type = "blood_type" in cols
        self.phone_rows: dict[str, int] = {}
        self.telegram_rows: dict[int, int] = {}

    def check(self, number: int, cells: tuple[Any, ...]) -> RowResult | None:
        if self.name_parts is not None:
            cells = self._join_name(cells, *self.name_parts)
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        width = len(cells)
        blank = True
        for fld, index, header, parser in self.plan:
            raw = cells[index] if index < width else None
            # _is_empty, inlined: this loop runs for every cell of a 100,000-row file.
            if raw is None or raw in _EMPTY_MARKERS or (
                    raw.__class__ is str and (raw[:1].isspace() or raw[-1:].isspace()) and _is_empty(raw)):
                continue
            blank = False
            try:
                values[fld] = parser(raw)
            except ParseError as exc:
                errors.append(RowError(number, header, exc.text))
        if blank:
            return None
        for fld in REQUIRED:
            if fld not in values and not any(e.column == self.headers[fld] for e in errors):
                msg = N_("The name is empty.") if fld == "name" else N_("The phone number is empty.")
                errors.append(RowError(number, self.headers[fld], Text(msg)))
        self._check_pairs_and_duplicates(number, values, errors)
        if errors:
            return RowResult(number, None, errors)
        abo, rh = values.get("blood_type", (None, None))
        row = RosterRow(
            full_name=values["name"], phone=values["phone"], abo=abo, rh=rh,
            sex=values.get("sex"), birth_date=values.get("birth_date"),
            weight_kg=values.get("weight_kg"), last_donation_date=values.get("last_donation"),
            donation_count=values.get("donations"), lat=values.get("lat"), lon=values.get("lon"),
            area=values.get("area", ""), telegram_id=values.get("telegram_id"),
            note=values.get("note", ""),
        )
        return RowResult(number, row, [], self._warnings(number, row))

    @staticmethod
    def _join_name(cells: tuple[Any, ...], family_index: int, name_index: int) -> tuple[Any, ...]:
        parts = [cells[i] for i in (family_index, name_index) if i < len(cells)]
        joined = " ".join(str(p).strip() for p in parts if not _is_empty(p))
        padded = list(cells) + [None] * (name_index + 1 - len(cells))
        padded[name_index] = joined or None
        return tuple(padded)

    def _check_pairs_and_duplicates(self, number: int, values: dict[str, Any], errors: list[RowError]) -> None:
        has_lat, has_lon = "lat" in values, "lon" in values
        if has_lat != has_lon:
            given, missing = ("lat", "lon") if has_lat else ("lon", "lat")
            errors.append(RowError(number, self.headers.get(missing, missing), Text(
                N_("A location needs both the latitude and the longitude; only the {given} is given."),
                {"given": self.headers[given]})))
        phone = values.get("phone")
        if phone is not None:
            first = self.phone_rows.get(phone)
            if first is not None:
                errors.append(RowError(number, self.headers["phone"], Text(
                    N_("{phone} is already on row {row} of this file; this row is left out."),
                    {"phone": phone, "row": first})))
            else:
                self.phone_rows[phone] = number
        telegram_id = values.get("telegram_id")
        if telegram_id is not None:
            first = self.telegram_rows.get(telegram_id)
            if first is not None:
                errors.append(RowError(number, self.headers["telegram_id"], Text(
                    N_("Telegram id {telegram_id} is already on row {row} of this file; this row is left out."),
                    {"telegram_id": telegram_id, "row": first})))
            else:
                self.telegram_rows[telegram_id] = number

    def _warnings(self, number: int, row: RosterRow) -> list[RowWarning]:
        facts = DonorFacts(abo=row.abo, rh=row.rh, sex=row.sex, birth_date=row.birth_date,
                           weight_kg=row.weight_kg, last_donation_date=row.last_donation_date)
        verdict = assess(facts, self.today, self.rules)
        if verdict.eligible:
            return []
        warnings: list[RowWarning] = []
        reasons = verdict.reasons
        if eligibility.UNKNOWN_TYPE in reasons and self.has_blood_type:
            warnings.append(RowWarning(number, self.headers["blood_type"], Text(
                N_("kept, but the blood type is unknown: will not be asked until it is known."))))
        if eligibility.TOO_YOUNG in reasons and row.birth_date is not None:
            warnings.append(RowWarning(number, self.headers["birth_date"], Text(
                N_("kept, but under {min_age} on {today}: will not be asked before {date}."),
                {"min_age": self.rules.min_age, "today": format_date(self.today),
                 "date": format_date(eligibility.add_years(row.birth_date, self.rules.min_age))})))
        if eligibility.TOO_OLD in reasons:
            warnings.append(RowWarning(number, self.headers["birth_date"], Text(
                N_("kept, but over {max_age}: will not be asked."), {"max_age": self.rules.max_age})))
        if eligibility.UNDERWEIGHT in reasons and row.weight_kg is not None:
            minimum = eligibility.min_weight(row.sex, "whole_blood", self.rules)
            warnings.append(RowWarning(number, self.headers["weight_kg"], Text(
                N_("kept, but {weight} kg is under the {min} kg minimum: will not be asked."),
                {"weight": _format_number(row.weight_kg), "min": _format_number(minimum)})))
        return warnings


# --- opening the file ------------------------------------------------------------

_NOT_A_ROSTER = N_("Send the roster as an Excel file (.xlsx) or a CSV file (.csv).")


class RosterFile:
    """An open roster: iterate it (once) for :class:`RowResult`s, blank rows left out.

    ``notices`` holds what concerns the whole file (ignored columns), to show once.
    """

    def __init__(self, rows: Iterator[tuple[int, tuple[Any, ...]]], fmt: str, *,
                 today: date, rules: Rules, region: str, closers: list[Callable[[], Any]]) -> None:
        self.format = fmt
        self._closers = closers
        try:
            self._layout = _find_layout(rows)
        except BaseException:
            self.close()
            raise
        self._rows = rows
        self._checker = _RowChecker(self._layout, today=today, rules=rules, region=region)
        self.notices: list[Text] = []
        if self._layout.ignored:
            self.notices.append(Text(N_("These columns were ignored: {columns}."),
                                     {"columns": ", ".join(self._layout.ignored)}))

    @property
    def header_row(self) -> int:
        return self._layout.header_row

    @property
    def columns(self) -> dict[str, str]:
        """Field name → the header as the file writes it."""
        return {f: header for f, (_i, header) in self._layout.columns.items()}

    @property
    def ignored_columns(self) -> list[str]:
        return list(self._layout.ignored)

    def __iter__(self) -> Iterator[RowResult]:
        check = self._checker.check
        for number, cells in self._rows:
            result = check(number, cells)
            if result is not None:
                yield result

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _at_most(rows: Iterator[tuple[int, tuple[Any, ...]]], max_rows: int) -> Iterator[tuple[int, tuple[Any, ...]]]:
    for number, cells in rows:
        if number > max_rows:
            raise RosterFileError(Text(N_(
                "This file has more than {limit} rows; a roster sent here may have at most {limit}. Remove the "
                "empty or extra rows, or split the roster into files of at most {limit} rows and send them one "
                "by one."), {"limit": max_rows}))
        yield number, cells


def open_roster(source: str | os.PathLike | IO[bytes], *, filename: str | None = None,
                today: date, rules: Rules | None = None, region: str = "VN",
                max_rows: int | None = None) -> RosterFile:
    """Open a roster file (a path, or a binary stream with its ``filename``) for reading.

    ``max_rows``: past this row of the file (blank rows and the header count), reading stops with
    a :class:`RosterFileError`. A workbook within the unpacked-size bound can still hold a million
    junk rows, minutes of a worker (issue 10); the bot caps uploads, the command line does not.

    Raises :class:`RosterFileError` when the file is not a usable CSV/XLSX roster.
    """
    name = filename or (str(source) if isinstance(source, (str, os.PathLike))
                        else getattr(source, "name", ""))
    ext = Path(str(name)).suffix.lower()
    if ext == ".xls":
        raise RosterFileError(Text(N_("This is an old Excel file (.xls). Save it as .xlsx "
                                      "(File → Save As → Excel Workbook) or as CSV UTF-8, and send it again.")))
    if ext not in (".csv", ".xlsx", ".xlsm"):
        raise RosterFileError(Text(_NOT_A_ROSTER))
    closers: list[Callable[[], Any]] = []
    if isinstance(source, (str, os.PathLike)):
        stream: IO[bytes] = open(source, "rb")  # noqa: SIM115 - rows stream from it until close()
        closers.append(stream.close)
    else:
        stream = source
    try:
        fmt = "csv" if ext == ".csv" else "xlsx"
        rows = _csv_rows(stream, closers) if fmt == "csv" else _xlsx_rows(stream, closers)
        if max_rows is not None:
            rows = _at_most(rows, max_rows)
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    return RosterFile(rows, fmt, today=today, rules=rules or EligibilityConfig(),
                      region=region, closers=closers)


def _check_utf8(stream: IO[bytes]) -> None:
    """Refuse binary or non-UTF-8 files up front, before any row is imported."""
    start = stream.tell()
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    line = 1
    while True:
        chunk = stream.read(_CSV_CHECK_CHUNK)
        if first and (not chunk.strip(b"\xef\xbb\xbf \r\n\t")):
            raise RosterFileError(Text(N_("The file is empty: there is no header row and no donor.")))
        if first and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise RosterFileError(Text(N_("The file is UTF-16 text. In Excel, save it as “CSV UTF-8”.")))
        if first and b"\0" in chunk:
            raise RosterFileError(Text(N_("This file is not a CSV text file. "
                                          "Send the roster as an Excel file (.xlsx) or a CSV file (.csv).")))
        first = False
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            line += chunk.count(b"\n", 0, exc.start)
            raise RosterFileError(Text(
                N_("The file is not UTF-8 text (line {line}). In Excel, save it as “CSV UTF-8”."),
                {"line": line})) from None
        line += chunk.count(b"\n")
        if not chunk:
            break
    stream.seek(start)


def _csv_rows(stream: IO[bytes], closers: list) -> Iterator[tuple[int, tuple[Any, ...]]]:
    if stream.seekable():
        _check_utf8(stream)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    # Detach rather than close: the caller's stream stays theirs to close.
    closers.append(lambda: text.detach() if not text.closed else None)
    head = [line for line in itertools.islice(text, _HEADER_SEARCH_ROWS + 1)]
    # Excel in Vietnamese (and most of Europe) writes ";" because "," is the decimal mark.
    # Count over several lines: a title line above the header has no delimiter at all.
    delimiter = max((",", ";", "\t"), key=lambda d: sum(line.count(d) for line in head))
    reader = csv.reader(itertools.chain(head, text), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, tuple[Any, ...]]]:
        try:
            for number, cells in enumerate(reader, 1):
                yield number, tuple(cells)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise RosterFileError(Text(N_("The file cannot be read past row {row}: {problem}."),
                                       {"row": reader.line_num, "problem": str(exc)})) from None

    return rows()


def _xlsx_rows(stream: IO[bytes], closers: list) -> Iterator[tuple[int, tuple[Any, ...]]]:
    import openpyxl  # only an XLSX upload pays for importing it

    head = stream.read(8)
    stream.seek(-len(head), io.SEEK_CUR)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise RosterFileError(Text(N_("This is an old Excel file (.xls) renamed. Save it as .xlsx "
                                      "(File → Save As → Excel Workbook) or as CSV UTF-8, and send it again.")))
    if not head.startswith(b"PK\x03\x04"):
        raise RosterFileError(Text(N_(
            "This file is not an Excel workbook, whatever its name says. "
            "Send the roster as an Excel file (.xlsx) or a CSV file (.csv).")))
    _check_unpacked_size(stream)
    try:
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise RosterFileError(Text(N_("This Excel file cannot be opened ({problem}). "
                                      "Send the roster as an Excel file (.xlsx) or a CSV file (.csv)."),
                                   {"problem": type(exc).__name__})) from None
    closers.append(book.close)
    if not book.worksheets:
        raise RosterFileError(Text(N_("The workbook has no sheet with a roster.")))
    sheet = book.worksheets[0]
    # Files written by other tools often state wrong dimensions; read_only mode trusts them.
    sheet.reset_dimensions()

    def rows() -> Iterator[tuple[int, tuple[Any, ...]]]:
        number = 0
        try:
            for number, cells in enumerate(sheet.iter_rows(values_only=True), 1):
                yield number, cells
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise RosterFileError(Text(N_("The file cannot be read past row {row}: {problem}."),
                                       {"row": number, "problem": type(exc).__name__})) from None

    return rows()


def _check_unpacked_size(stream: IO[bytes]) -> None:
    """Refuse a workbook that would unpack to far more than any roster, before unpacking any of it."""
    start = stream.tell()
    try:
        with zipfile.ZipFile(stream) as book:
            parts = book.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise RosterFileError(Text(N_("This Excel file cannot be opened ({problem}). "
                                      "Send the roster as an Excel file (.xlsx) or a CSV file (.csv)."),
                                   {"problem": type(exc).__name__})) from None
    finally:
        stream.seek(start)
    unpacked = sum(p.file_size for p in parts)
    shared = sum(p.file_size for p in parts if p.filename.lower().endswith("sharedstrings.xml"))
    if len(parts) > MAX_XLSX_PARTS or unpacked > MAX_XLSX_UNPACKED or shared > MAX_XLSX_SHARED_STRINGS:
        raise RosterFileError(Text(
            N_("This Excel file unpacks to {size} MB in {parts} pieces, far more than a roster needs (at most "
               "{limit} MB): it may be damaged. Save the roster again with only the member rows, as .xlsx or "
               "as CSV UTF-8, and send it again."),
            {"size": f"{unpacked / 1024 / 1024:,.0f}", "parts": len(parts),
             "limit": MAX_XLSX_UNPACKED // (1024 * 1024)}))


# --- writing ---------------------------------------------------------------------

def _format_number(x: float) -> str:
    # repr is the shortest text that reads back to the same float: an export re-imports unchanged.
    return str(int(x)) if x.is_integer() else repr(x)


def _cells(row: RosterRow, lang: str, typed: bool) -> list[Any]:
    """One row's cells in COLUMNS order; ``typed`` keeps dates and numbers for XLSX."""
    def day(d: date | None) -> Any:
        return "" if d is None else (d if typed else format_date(d))

    def num(x: float | None) -> Any:
        return "" if x is None else (x if typed else _format_number(x))

    sex = "" if row.sex is None else ({"M": "Nam", "F": "Nữ"}[row.sex] if lang == "vi" else row.sex)
    blood = "" if row.abo is None or row.rh is None else format_blood_type(row.abo, row.rh)
    count = "" if row.donation_count is None else (row.donation_count if typed else str(row.donation_count))
    tg = "" if row.telegram_id is None else (row.telegram_id if typed else str(row.telegram_id))
    return [row.full_name, row.phone, blood, sex, day(row.birth_date), num(row.weight_kg),
            day(row.last_donation_date), count, num(row.lat), num(row.lon), row.area, tg, row.note]


def write_roster(target: str | os.PathLike | IO[bytes], fmt: str, rows: Iterable[RosterRow],
                 *, lang: str = "en") -> None:
    """Write ``rows`` as a CSV (UTF-8 with BOM, so Excel shows Vietnamese right) or an XLSX.

    The columns and spellings are the ones :func:`open_roster` reads, so a written
    file imports back unchanged. ``lang="vi"`` writes Vietnamese headers.
    """
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"unknown roster format {fmt!r}")
    headers = [vi if lang == "vi" else en for _f, en, vi, _o in COLUMNS]
    own = isinstance(target, (str, os.PathLike))
    stream: IO[bytes] = open(target, "wb") if isinstance(target, (str, os.PathLike)) else target  # noqa: SIM115
    try:
        if fmt == "csv":
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            writer = csv.writer(text)
            writer.writerow(headers)
            writer.writerows(_cells(r, lang, typed=False) for r in rows)
            text.flush()
            text.detach()
        else:
            _write_xlsx(stream, headers, rows, lang)
    finally:
        if own:
            stream.close()


def _write_xlsx(stream: IO[bytes], headers: list[str], rows: Iterable[RosterRow], lang: str) -> None:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Roster" if lang != "vi" else "Danh sách")
    sheet.append(headers)
    date_columns = {4, 6}
    for row in rows:
        cells = _cells(row, lang, typed=True)
        for i in date_columns:
            if cells[i] != "":
                cell = WriteOnlyCell(sheet, value=cells[i])
                cell.number_format = "DD/MM/YYYY"
                cells[i] = cell
        sheet.append([None if c == "" else c for c in cells])
    book.save(stream)
