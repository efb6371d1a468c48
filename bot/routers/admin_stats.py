"""Administrators: /stats — the steering committee's summary across every club and hospital;
/stats xlsx — the same, one row per club and per hospital (issue 16).

Counts and names of clubs and hospitals only: no donor is named here.
"""

from __future__ import annotations

import io

from aiogram import F
from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from openpyxl import Workbook
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.commands import command_filter
from bot.routers.admin import IsAdmin
from bot.i18n import render
from bot.routers.lead_stats import stats_args
from bot.routing import RouterTemplate
from bot.texts import escape, fmt_date, fmt_number, fmt_share
from dispatcher.committee_report import CommitteeReport, committee_report
from ground.clock import Clock
from ground.parsing import ParseError
from ground.config import Settings

router = RouterTemplate("admin_stats")
router.message.filter(F.chat.type == "private", IsAdmin())



def _usage() -> str:
    return _("Usage: /stats for the steering committee's summary, /stats xlsx for a spreadsheet, "
             "/stats 11/2026 for one month.")


def committee_text(r: CommitteeReport, locale: str) -> str:
    def num(n: float) -> str:
        return fmt_number(n, locale)

    donors, repeat = r.total("donors"), r.total("repeat_donors")
    known, big = r.total("volume_known"), r.total("volume_350")
    lines = [
        _("📊 <b>Steering committee</b>: {first} – {last}").format(first=fmt_date(r.first), last=fmt_date(r.last)),
        "",
        _("🩸 Donations by club members: {n}. 350 ml units: {big_share} of those with a recorded volume. "
          "Repeat donors: {repeat_share} of the members who gave (the target is over 50%).").format(
            n=num(r.donations), big_share=fmt_share(big, known, locale), repeat_share=fmt_share(repeat, donors, locale)),
        _("👥 Members: {members}, of them Rh−: {negative}; new in the period: {new}.").format(
            members=num(r.members), negative=num(r.rh_negative), new=num(r.new_members)),
        _("🏥 Requests: {n}. Every unit donated before the deadline: {in_time} of {decided} decided ({share}). "
          "Units received: {received} of {asked}.").format(
            n=num(r.hospital_total("requests")), in_time=num(r.hospital_total("in_time")),
            decided=num(r.hospital_total("decided")),
            share=fmt_share(r.hospital_total("in_time"), r.hospital_total("decided"), locale),
            received=num(r.hospital_total("units_received")), asked=num(r.hospital_total("units_asked"))),
    ]
    if r.clubs:
        lines += ["", _("<b>Clubs</b> (members · Rh− · donations · new)")]
        lines += [f"• {escape(c.name)}: {num(c.report.members)} · {num(c.rh_negative)} · "
                  f"{num(c.report.total_donations)} · {num(c.new_members)}" for c in r.clubs]
    if r.hospitals:
        lines += ["", _("<b>Hospitals</b> (requests · in time / decided · units received)")]
        lines += [f"• {escape(name)}: {num(h.requests)} · {num(h.in_time)}/{num(h.decided)} · {num(h.units_received)}"
                  for name, h in r.hospitals]
    lines += ["", _("/stats xlsx sends these figures as a spreadsheet.")]
    return "\n".join(lines)


def committee_workbook(r: CommitteeReport) -> bytes:
    book = Workbook()
    clubs = book.active
    clubs.title = _("Clubs")
    clubs.append([_("Club"), _("Members"), "Rh−", _("New members"), _("Donations"), _("Members who gave"),
                  _("Gave more than once")])
    for c in r.clubs:
        clubs.append([c.name, c.report.members, c.rh_negative, c.new_members, c.report.total_donations,
                      c.report.donors, c.report.repeat_donors])
    clubs.append([_("Total"), r.members, r.rh_negative, r.new_members, r.donations, r.total("donors"),
                  r.total("repeat_donors")])
    hospitals = book.create_sheet(_("Hospitals"))
    hospitals.append([_("Hospital"), _("Requests"), _("Decided"), _("In time"), _("Units asked"),
                      _("Units received")])
    for name, h in r.hospitals:
        hospitals.append([name, h.requests, h.decided, h.in_time, h.units_asked, h.units_received])
    hospitals.append([_("Total"), *(r.hospital_total(f) for f in
                                    ("requests", "decided", "in_time", "units_asked", "units_received"))])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@router.message(command_filter("stats"))
async def admin_stats(message: Message, command: CommandObject, session: AsyncSession, settings: Settings,
                      clock: Clock, i18n: I18n) -> None:
    try:
        fmt, month = stats_args(command.args or "", clock().astimezone(settings.bot.tz).date())
    except ParseError as err:
        await message.answer(render(err.text, i18n) + "\n" + _usage())
        return
    report = await committee_report(session, clock(), settings.eligibility, settings.bot.tz, month=month)
    if fmt == "xlsx":
        name = f"redreserve-stats-{report.first:%Y-%m}.xlsx" if month else f"redreserve-stats-{report.today:%Y-%m-%d}.xlsx"
        await message.answer_document(BufferedInputFile(committee_workbook(report), filename=name))
        return
    await message.answer(committee_text(report, i18n.current_locale))
