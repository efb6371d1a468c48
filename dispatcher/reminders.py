"""Reminders: messages that are due at a time, not in answer to anything (issue 4).

Each kind of reminder is a *source*: a small object with a ``name`` and

    async def run(self, session, now) -> datetime | None

that enqueues (dispatcher.outbox) whatever is due at or before ``now`` and returns when
it next has something due (None: nothing foreseen). Every message is keyed by its cause
(``eligible:{donor_id}:{date}``), so the database is the truth: a duplicated or late
wake-up sends nothing twice, and a missed one sends once, late, while the source still
considers it due. Sources keep no state of their own between runs.

:class:`Reminders` runs every source in its own transaction, wakes the sender, and
returns the earliest next due time over all sources; the scheduler
(dispatcher.scheduling.ReminderScheduler) re-arms its one job to that time after every
run. To add a source, pass it in ``sources`` (bot.runtime builds the list).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher.wakeups import Wakeups
from models.dispatch_tables import ReminderRun
from ground.clock import Clock

log = logging.getLogger(__name__)

# A source that failed is tried again after this long (its messages are keyed: nothing is sent twice).
RETRY_AFTER = timedelta(minutes=5)


class Source(Protocol):
    name: str

    async def run(self, session: AsyncSession, now: datetime) -> datetime | None: ...


def hh_mm(value: str) -> time:
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def local_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``at`` o'clock on ``day`` where the donors live, as an aware datetime."""
    return datetime.combine(day, at, tzinfo=tz)


class Reminders:
    def __init__(self, sessionmaker, settings, *, clock: Clock, sources: list[Source],
                 wakeups: Wakeups | None = None) -> None:
        self.sm = sessionmaker
        self.settings = settings
        self.clock = clock
        self.sources = list(sources)
        self.wakeups = wakeups or Wakeups()  # the sender hears of messages, the scheduler of the next run
        # One process runs the reminders (one poller per bot token); runs never interleave.
        self._lock = asyncio.Lock()
        self._pokes = 0

    def poke(self) -> None:
        """Something changed that may bring a reminder forward: run again soon (after the commit)."""
        self._pokes += 1
        self.wakeups.reminders_now()

    async def run_due(self) -> datetime | None:
        """Enqueue whatever is due now in every source; returns the earliest next due time."""
        async with self._lock:
            pokes = self._pokes
            now = self.clock()
            upcoming = []
            for source in self.sources:
                nxt = await self._run_one(source, now)
                if nxt is not None:
                    upcoming.append(nxt)
            nxt = min(upcoming, default=None)
            if nxt is not None and nxt <= now:  # a source must look forward; never spin
                log.warning("reminders: a source returned %s, not after %s", nxt, now)
                nxt = now + RETRY_AFTER
        self.wakeups.outbox_written()
        self.wakeups.reminders_due(nxt)
        if self._pokes != pokes:  # poked during the run, maybe after it read: the arm above must not hide it
            self.wakeups.reminders_now()
        return nxt

    async def _run_one(self, source: Source, now: datetime) -> datetime | None:
        try:
            async with self.sm() as s, s.begin():
                await _touch(s, source.name, now)
                return await source.run(s, now)
        except Exception:  # one broken source must not silence the others
            log.exception("reminders: source %s failed; retrying in %s", source.name, RETRY_AFTER)
            return now + RETRY_AFTER


async def _touch(s, name: str, now: datetime) -> None:
    """Write first (models.dispatch_tables.ReminderRun): the run holds the lock from its start."""
    res = await s.exec(update(ReminderRun).where(col(ReminderRun.name) == name).values(ran_at=now))
    if not res.rowcount:
        s.add(ReminderRun(name=name, ran_at=now))
        await s.flush()
