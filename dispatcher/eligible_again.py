"""Donors: "you may donate again", on the local day the wait after their last donation ends.

The day is :func:`ground.eligibility.next_donation_date` (the most recent donation's
kind sets the wait, DOMAIN.md §2); SQL only narrows the search by date. Sent at the
configured local time, once per (donor, day), to donors the bot may write to: linked to
Telegram and not blocked (DOMAIN.md §8), consented to be contacted (§7), opted in
(``Donor.remind_eligible``), and with nothing else standing in the way that day (a pause,
a deferral, age, weight: :func:`ground.eligibility.assess`). A day the bot missed
entirely is not made up later: "you may donate again" a week late is noise.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TypeVar

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select, SelectOfScalar

from dispatcher.candidates import messageable_conditions, red_cell_days
from dispatcher.compat import COMPONENTS
from dispatcher import messages as M
from ground.eligibility import UNKNOWN_TYPE, DonorFacts, assess, interval_days, next_donation_date
from dispatcher.outbox import enqueue
from dispatcher.reminders import hh_mm, local_at
from ground.config import Settings
from models.tables import Donor, TelegramUser

_Select = TypeVar("_Select", Select, SelectOfScalar)


def eligible_key(donor_id: int, day: date) -> str:
    return f"eligible:{donor_id}:{day.isoformat()}"


class EligibleAgain:
    name = "eligible_again"

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.reminders.eligible_enabled
        self.at = hh_mm(settings.reminders.eligible_time)
        self.tz = settings.bot.tz
        self.rules = settings.eligibility
        # Every wait a donation can set (None: a donation of unknown kind).
        self.intervals = sorted({interval_days(c, self.rules) for c in (None, *COMPONENTS)})

    async def run(self, session: AsyncSession, now: datetime) -> datetime | None:
        if not self.enabled:
            return None
        today = now.astimezone(self.tz).date()
        time_has_come = now >= local_at(today, self.at, self.tz)
        if time_has_come:
            for donor, locale in await self._due(session, today):
                # A row read from the database, joined to its Telegram account by telegram_id.
                assert donor.id is not None and donor.telegram_id is not None
                await enqueue(session, key=eligible_key(donor.id, today), chat_id=donor.telegram_id,
                              params=M.EligibleAgain(count=donor.donation_count),
                              now=now, locale=donor.locale or locale)
        day = await self._next_day(session, today + timedelta(days=1) if time_has_come else today)
        return None if day is None else local_at(day, self.at, self.tz)

    def _reachable(self, stmt: _Select) -> _Select:
        return (stmt.join(TelegramUser, col(TelegramUser.telegram_id) == Donor.telegram_id)
                .where(*messageable_conditions(require_consent=True), col(Donor.remind_eligible).is_(True)))

    async def _due(self, session: AsyncSession, today: date) -> list[tuple[Donor, str | None]]:
        """Donors whose wait ends today and who may be told so."""
        days = [today - timedelta(days=d) for d in self.intervals]
        rows = (await session.exec(self._reachable(select(Donor, TelegramUser.locale))
                                   .where(col(Donor.last_donation_date).in_(days))
                                   .order_by(col(Donor.id)))).all()
        out: list[tuple[Donor, str | None]] = []
        given = await red_cell_days(session, [donor.id for donor, _ in rows if donor.id is not None], today)
        for donor, locale in rows:
            facts = DonorFacts.of(donor, given.get(donor.id, ()))
            if next_donation_date(facts, self.rules) != today:
                continue
            # Not knowing one's blood type does not stop anyone from giving at a blood drive.
            if set(assess(facts, today, self.rules).reasons) - {UNKNOWN_TYPE}:
                continue
            out.append((donor, locale))
        return out

    async def _next_day(self, session: AsyncSession, first: date) -> date | None:
        """The earliest day from ``first`` on when some reachable, opted-in donor's wait ends."""
        days: list[date] = []
        # The wait depends only on the kind of the last donation: per kind, the earliest donation
        # whose wait ends on or after ``first`` (a few index range scans on the date).
        for component in (None, *COMPONENTS):
            wait = interval_days(component, self.rules)
            given_on = col(Donor.last_donation_date)
            kind = (col(Donor.last_donation_component).is_(None) if component is None
                    else col(Donor.last_donation_component) == component)
            last = (await session.exec(self._reachable(select(func.min(given_on)))
                                       .where(kind, given_on >= first - timedelta(days=wait)))).one()
            day = (next_donation_date(DonorFacts(None, None, None, None, None, last, component), self.rules)
                   if last is not None else None)
            if day is not None:
                days.append(day)
        return min(days, default=None)
