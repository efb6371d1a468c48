"""Time, passed in rather than read from the system deep inside the code.

Tests, the demo and the simulator run the same code on a clock they control.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def local_today(clock: Clock, tz: ZoneInfo) -> date:
    """Today's date where the donors live: a donation interval ends on a local calendar day."""
    return clock().astimezone(tz).date()


def as_utc(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes for what was stored as UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


class FrozenClock:
    """A clock for tests and simulations that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**kwargs)
