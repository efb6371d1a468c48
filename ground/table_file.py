"""A table as a spreadsheet a committee opens: CSV (UTF-8 with BOM, so Excel shows Vietnamese) or XLSX.

For the exports that are not rosters (donations, requests; issue 16). Dates are written as dates
(DD/MM/YYYY in Excel), times as local date-times; everything else as given.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import IO

FORMATS = ("csv", "xlsx")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def write_table(target: str | os.PathLike | IO[bytes], fmt: str, sheet: str, headers: Sequence[str],
                rows: Iterable[Sequence[object]]) -> int:
    """Write ``rows`` under ``headers``; returns how many rows were written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}")
    own = isinstance(target, (str, os.PathLike))
    stream: IO[bytes] = open(target, "wb") if isinstance(target, (str, os.PathLike)) else target  # noqa: SIM115
    count = 0
    try:
        if fmt == "csv":
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            writer = csv.writer(text)
            writer.writerow(headers)
            for row in rows:
                writer.writerow([_text(v) for v in row])
                count += 1
            text.flush()
            text.detach()
        else:
            import openpyxl
            from openpyxl.cell import WriteOnlyCell

            book = openpyxl.Workbook(write_only=True)
            ws = book.create_sheet(sheet[:31])  # Excel's limit for a sheet name
            ws.append(list(headers))
            for row in rows:
                cells: list[object] = []
                for value in row:
                    if isinstance(value, datetime):
                        cell = WriteOnlyCell(ws, value=value.replace(tzinfo=None))
                        cell.number_format = "DD/MM/YYYY HH:MM"
                        cells.append(cell)
                    elif isinstance(value, date):
                        cell = WriteOnlyCell(ws, value=value)
                        cell.number_format = "DD/MM/YYYY"
                        cells.append(cell)
                    else:
                        cells.append(value)
                ws.append(cells)
                count += 1
            book.save(stream)
    finally:
        if own:
            stream.close()
    return count
