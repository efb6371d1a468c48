"""Leads and hospital staff: last month's report on the first of the month (issue 16).

Who asked for it (/monthly on: ``telegram_user.monthly_report_since``) gets, at the configured
local time on the 1st, last month's report for each club they lead and each hospital they are
staff of: three outbox messages (chart, figures, workbook) keyed by recipient, place, month and
part, so a duplicated wake-up sends nothing twice. A first missed while the bot was down is made
up once, late, within the month's first ``LATE_DAYS`` days; later than that, a report about the
month before last is no longer news and waits for the next first. The figures themselves are
read when the message is sent (bot.monthly_report): the month is over, they no longer change.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher import messages as M
from dispatcher.outbox import enqueue_many, message
from dispatcher.reminders import hh_mm, local_at
from models.tables import Club, ClubMembership, Hospital, HospitalStaff, TelegramUser
from ground.config import Settings

LATE_DAYS = 7
PARTS = ("chart", "figures", "workbook")  # the order they are enqueued, and so sent, in


def previous_month(day: date) -> date:
    """The first day of the month before ``day``'s."""
    last = day.replace(day=1) - timedelta(days=1)
    return last.replace(day=1)


def monthly_key(scope: str, scope_id: int, telegram_id: int, month: date, part: str) -> str:
    return f"monthly:{scope}:{scope_id}:{telegram_id}:{month:%Y-%m}:{part}"


class MonthlyReports:
    name = "monthly_report"

    def __init__(self, settings: Settings) -> None:
        cfg = settings.reminders
        self.enabled = cfg.monthly_enabled
        self.at = hh_mm(cfg.monthly_time)
        self.tz = settings.bot.tz

    def slot(self, day: date) -> datetime:
        """The report's time in the month holding ``day``."""
        return local_at(day.replace(day=1), self.at, self.tz)

    def next_slot(self, day: date) -> datetime:
        return self.slot(day.replace(day=1) + timedelta(days=32))

    async def run(self, session: AsyncSession, now: datetime) -> datetime | None:
        if not self.enabled:
            return None
        recipients = await self.recipients(session)
        if not recipients:
            return None  # nothing foreseen: /monthly on pokes the reminders
        today = now.astimezone(self.tz).date()
        slot = self.slot(today)
        if now < slot:
            return slot
        if today.day > LATE_DAYS:
            return self.next_slot(today)
        month = previous_month(today)
        await enqueue_many(session, [
            message(key=monthly_key(scope, scope_id, telegram_id, month, part), chat_id=telegram_id, now=now,
                    locale=locale, params=M.MonthlyReport(scope=scope, scope_id=scope_id, name=name,
                                                          month=f"{month:%Y-%m}", part=part))
            for scope, scope_id, name, telegram_id, locale in recipients for part in PARTS])
        return self.next_slot(today)

    async def recipients(self, session: AsyncSession) -> list[tuple[str, int, str, int, str | None]]:
        """(scope, club or hospital id, its name, Telegram id, locale) per report to send."""
        asked = (col(TelegramUser.monthly_report_since).is_not(None), col(TelegramUser.blocked_at).is_(None))
        leads = (await session.exec(
            select(col(Club.id), col(Club.name), col(TelegramUser.telegram_id), col(TelegramUser.locale))
            .join(ClubMembership, col(ClubMembership.club_id) == Club.id)
            .join(TelegramUser, col(TelegramUser.telegram_id) == ClubMembership.telegram_id)
            .where(col(ClubMembership.role) == "lead", *asked)
            .order_by(col(Club.id), col(TelegramUser.telegram_id)))).all()
        staff = (await session.exec(
            select(col(Hospital.id), col(Hospital.name), col(TelegramUser.telegram_id), col(TelegramUser.locale))
            .join(HospitalStaff, col(HospitalStaff.hospital_id) == Hospital.id)
            .join(TelegramUser, col(TelegramUser.telegram_id) == HospitalStaff.telegram_id)
            .where(*asked)
            .order_by(col(Hospital.id), col(TelegramUser.telegram_id)))).all()
        # Ids from joined rows are never None; the column types cannot say so.
        return ([("club", i, n, t, loc) for i, n, t, loc in leads if i is not None and t is not None]
                + [("hospital", i, n, t, loc) for i, n, t, loc in staff if i is not None and t is not None])
