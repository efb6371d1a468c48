"""The reports' period (issue 16): the twelve calendar months up to the report's day."""

from __future__ import annotations

from datetime import date, timedelta

MONTHS = 12


def month_starts(today: date, count: int = MONTHS) -> tuple[date, ...]:
    """The first days of the ``count`` calendar months up to and including ``today``'s, oldest first."""
    year, month = today.year, today.month
    out = []
    for _ in range(count):
        out.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return tuple(reversed(out))


def month_index(months: tuple[date, ...], day: date) -> int:
    """Which of ``months`` holds ``day`` (the caller keeps ``day`` inside the period)."""
    return (day.year - months[0].year) * 12 + day.month - months[0].month


def period(today: date, month: date | None = None) -> tuple[date, date]:
    """(first, last day) a report covers: the twelve months up to ``today``, or one chosen month
    (``month`` is its first day; the current month ends today)."""
    if month is None:
        return month_starts(today)[0], today
    following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return month, min(today, following - timedelta(days=1))
