"""The monthly report's three messages, read from the database when they are sent (issue 16).

dispatcher.monthly_reports decides who gets which month's report and writes one outbox row
per part; the transport asks :class:`MonthlyReportParts` for the part's content at the moment
it sends. The words and figures are those of /stats (bot.routers.lead_stats and staff_stats),
so the report a lead receives on the 1st is the one ``/stats MM/YYYY`` shows her. Charts are
drawn in a worker thread: the sender's loop also sends the emergency calls.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import partial

from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.charts import club_chart, hospital_chart
from bot.routers.lead_files import file_slug
from bot.routers.lead_stats import stats_text, stats_workbook
from bot.routers.staff_stats import hospital_text
from bot.render import monthly_title
from dispatcher import exports
from dispatcher import messages as M
from dispatcher.club_report import club_report
from dispatcher.hospital_report import hospital_report
from ground.clock import Clock
from ground.config import Settings
from ground.table_file import write_table


@dataclass(frozen=True)
class Part:
    """One message: a photo (``data``, captioned ``text``), a text, or a document (``data``, ``filename``)."""

    kind: str  # "photo", "text" or "document"
    text: str = ""
    data: bytes = b""
    filename: str = ""


class MonthlyReportParts:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings, i18n: I18n, *, clock: Clock) -> None:
        self.sm = sessionmaker
        self.settings = settings
        self.i18n = i18n
        self.clock = clock

    async def part(self, p: M.MonthlyReport, chat_id: int, locale: str | None) -> Part:
        if locale not in self.i18n.available_locales:
            locale = self.settings.bot.default_locale
        month = date.fromisoformat(p.month + "-01")
        tz = self.settings.bot.tz
        now = self.clock()
        _ = partial(self.i18n.gettext, locale=locale)
        with self.i18n.context(), self.i18n.use_locale(locale):
            title = monthly_title(p, _)
            stop = _("/monthly off stops these monthly reports.")
            slug = f"{file_slug(p.name)}-{month:%Y-%m}"
            async with self.sm() as session:
                if p.scope == "club":
                    today = now.astimezone(tz).date()
                    report = await club_report(session, p.scope_id, today, self.settings.eligibility, tz, month=month)
                    if p.part == "chart":
                        png = await asyncio.to_thread(club_chart, report, p.name, _)
                        return Part("photo", text=title, data=png, filename=f"{slug}.png")
                    if p.part == "figures":
                        return Part("text", text=stats_text(report, p.name, locale) + "\n" + stop)
                    return Part("document", text=title, data=stats_workbook(report, p.name),
                                filename=f"{slug}.xlsx")
                hospital = await hospital_report(session, p.scope_id, now, tz, month=month)
                if p.part == "chart":
                    png = await asyncio.to_thread(hospital_chart, hospital, p.name, _)
                    return Part("photo", text=title, data=png, filename=f"{slug}.png")
                if p.part == "figures":
                    return Part("text", text=hospital_text(hospital, p.name, locale) + "\n" + stop)
                following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
                table = await exports.hospital_requests(
                    session, p.scope_id, datetime.combine(month, time(), tz), tz, actor=chat_id,
                    until=datetime.combine(following, time(), tz))
                buffer = io.BytesIO()
                lang = "vi" if locale == "vi" else "en"
                write_table(buffer, "xlsx", table.sheet_name(lang), table.header_row(lang), table.rows)
                return Part("document", text=title, data=buffer.getvalue(), filename=f"{slug}.xlsx")
