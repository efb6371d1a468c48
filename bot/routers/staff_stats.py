"""Hospital staff: /stats — did the blood come in time, month by month — and /export, the requests
as a workbook (issue 16).

In a hospital's staff group, that hospital's figures; in a private chat, those of each
hospital the person is staff of. The figures come from dispatcher.hospital_report; the
text carries every number the chart shows.
"""

from __future__ import annotations

import io
from datetime import datetime, time

from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts import hospital_chart
from bot.commands import command_filter
from bot.routers.staff import IsStaff
from bot.routing import RouterTemplate
from bot.texts import component_name, escape, fmt_date, fmt_number, fmt_share, urgency_name
from bot.i18n import render
from bot.routers.lead_files import file_slug
from bot.routers.lead_stats import stats_args
from dispatcher import exports
from dispatcher.hospital_report import HospitalReport, hospital_report
from dispatcher.report_months import month_starts
from ground.parsing import ParseError
from ground.table_file import write_table
from ground.clock import Clock
from ground.config import Settings
from models.directory import Roles
from models.tables import Hospital, HospitalChat

router = RouterTemplate("staff_stats")


def hospital_text(report: HospitalReport, hospital: str, locale: str) -> str:
    def num(n: float) -> str:
        return fmt_number(n, locale)

    lines = [
        _("📊 <b>{hospital}</b>: figures for {first} – {last}").format(
            hospital=escape(hospital), first=fmt_date(report.first), last=fmt_date(report.last)),
        "",
        _("📋 Requests: {n} (cancelled: {cancelled}; still running: {running}).").format(
            n=num(report.requests), cancelled=num(report.cancelled), running=num(report.running)),
    ]
    by_urgency = [f"{urgency_name(u, _)} {num(sum(v))}" for u, v in report.by_urgency.items() if sum(v)]
    by_component = [f"{component_name(c, _)} {num(n)}" for c, n in sorted(report.by_component.items())]
    if by_urgency:
        lines.append(" · ".join(by_urgency))
        lines.append(" · ".join(by_component))
    lines.append(_("✅ Every unit donated before the deadline: {in_time} of {decided} decided request "
                   "({share}).", "✅ Every unit donated before the deadline: {in_time} of {decided} decided requests "
                   "({share}).", report.decided).format(in_time=num(report.in_time), decided=num(report.decided),
                                       share=fmt_share(report.in_time, report.decided, locale)))
    lines.append(_("🩸 Units received: {received} of {asked} asked.").format(
        received=num(report.units_received), asked=num(report.units_asked)))
    median, p90 = report.median_first_donation, report.p90_first_donation
    if median is not None and p90 is not None:
        lines.append(_("⏱ From the request to the first donation: median {median} min, 90% within {p90} min.").format(
            median=num(round(median)), p90=num(round(p90))))
    lines.append(_("🚶 Said coming and did not come: {no_shows} of {said} ({no_show_share}). Deferred at screening: "
                   "{deferred} of {came} who came ({deferred_share}).").format(
        no_shows=num(report.no_shows), said=num(report.said_coming),
        no_show_share=fmt_share(report.no_shows, report.said_coming, locale), deferred=num(report.deferred),
        came=num(report.came), deferred_share=fmt_share(report.deferred, report.came, locale)))
    if report.clubs:
        lines.append(_("🤝 Clubs whose members gave (units): {clubs}").format(
            clubs=" · ".join(f"{escape(name)} {num(units)}" for name, units in report.clubs)))
    return "\n".join(lines)


@router.message(command_filter("stats"), IsStaff())
async def staff_stats(message: Message, command: CommandObject, session: AsyncSession, roles: Roles,
                      settings: Settings, clock: Clock, i18n: I18n) -> None:
    try:
        _fmt, month = stats_args(command.args or "", clock().astimezone(settings.bot.tz).date())
    except ParseError as err:
        await message.answer(render(err.text, i18n) + "\n" + _(
            "Usage: /stats for the hospital's figures and chart, /stats 11/2026 for one month."))
        return
    for hospital_id in await _hospitals(message, session, roles):
        hospital = await session.get(Hospital, hospital_id)
        name = hospital.name if hospital is not None else "?"
        report = await hospital_report(session, hospital_id, clock(), settings.bot.tz, month=month)
        await message.answer_photo(BufferedInputFile(hospital_chart(report, name, _), filename="stats.png"))
        await message.answer(hospital_text(report, name, i18n.current_locale))


@router.message(command_filter("export"), IsStaff())
async def staff_export(message: Message, session: AsyncSession, roles: Roles, settings: Settings, clock: Clock,
                       i18n: I18n) -> None:
    """The hospital's requests of the last twelve months: counts and times, no donor named."""
    lang = "vi" if i18n.current_locale == "vi" else "en"
    tz = settings.bot.tz
    today = clock().astimezone(tz).date()
    first = month_starts(today)[0]
    for hospital_id in await _hospitals(message, session, roles):
        hospital = await session.get(Hospital, hospital_id)
        name = hospital.name if hospital is not None else "?"
        table = await exports.hospital_requests(session, hospital_id, datetime.combine(first, time(), tz), tz,
                                                actor=message.from_user.id)
        buffer = io.BytesIO()
        write_table(buffer, "xlsx", table.sheet_name(lang), table.header_row(lang), table.rows)
        await message.answer_document(
            BufferedInputFile(buffer.getvalue(), filename=f"{file_slug(name)}-requests-{today:%Y-%m-%d}.xlsx"),
            caption=_("Requests of {hospital}, {first} – {last}: {n}. Counts and times only; no donor is named.")
            .format(hospital=escape(name), first=fmt_date(first), last=fmt_date(today), n=len(table.rows)))


async def _hospitals(message: Message, session: AsyncSession, roles: Roles) -> list[int]:
    """In a hospital's staff group, that hospital; in a private chat, each the person is staff of."""
    if message.chat.type != "private":
        bound = await session.get(HospitalChat, message.chat.id)
        if bound is not None:
            return [bound.hospital_id]
    return list(roles.staff_hospital_ids)
