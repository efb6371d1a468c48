"""Club leads: /stats — the club's figures as a chart and text; /stats xlsx as a workbook (issue 16).

The figures come from dispatcher.club_report; this module only lays them out. The
text carries every number the chart shows, so a lead on a slow connection, or one
who forwards it to the committee's group, loses nothing when the picture does not load.
"""

from __future__ import annotations

import io
from datetime import date

from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _
from openpyxl import Workbook

from bot.charts import club_chart
from bot.routers.lead_common import LeadCtx, club_name
from bot.routers.lead_files import file_slug
from bot.texts import component_name, escape, fmt_date, fmt_number, fmt_share, fmt_type
from dispatcher.club_report import SOON_DAYS, ClubReport, club_report
from ground.i18n import N_, Text
from ground.parsing import ParseError, parse_month

def stats_args(args: str, today: date) -> tuple[str, date | None]:
    """``/stats [xlsx] [MM/YYYY]`` → (format, the month's first day or None for twelve months).
    Raises ParseError with the reason; the usage line is the caller's."""
    words = args.lower().split()
    fmt = "xlsx" if "xlsx" in words else ""
    rest = [w for w in words if w != "xlsx"]
    if len(rest) > 1 or words.count("xlsx") > 1:
        raise ParseError(Text(N_("Give at most one month, like 11/2026.")))
    return fmt, parse_month(rest[0], today=today) if rest else None


def stats_text(report: ClubReport, club: str, locale: str) -> str:
    def num(n: float) -> str:
        return fmt_number(n, locale)

    today = sum(t.eligible_today for t in report.types)
    soon = sum(t.eligible_soon for t in report.types)
    negative = sum(t.members for t in report.types if t.rh == "-")
    lines = [
        _("📊 <b>{club}</b>: figures for {first} – {last}").format(
            club=escape(club), first=fmt_date(report.first), last=fmt_date(report.last)),
        "",
        _("👥 Members: {members}, of them Rh−: {negative}. Able to give today: {today}; within {days} day: "
          "{soon}.", "👥 Members: {members}, of them Rh−: {negative}. Able to give today: {today}; within {days} days: "
          "{soon}.", SOON_DAYS).format(members=num(report.members), negative=num(negative), today=num(today),
                            days=num(SOON_DAYS), soon=num(soon)),
    ]
    by_type = [f"{fmt_type(t.abo, t.rh)} {num(t.members)} ({num(t.eligible_today)})" for t in report.types if t.members]
    if by_type:
        lines.append(_("By type, members (able today): {list}").format(list=" · ".join(by_type)))
    donated = report.total_donations
    lines.append(_("🩸 Donations: {n}; members who gave: {donors}; more than once: {repeat} ({repeat_share}).").format(
        n=num(donated), donors=num(report.donors), repeat=num(report.repeat_donors),
        repeat_share=fmt_share(report.repeat_donors, report.donors, locale)))
    if donated:
        parts = [f"{component_name(c, _)} {num(sum(v))}" for c, v in report.donations.items()]
        lines.append(" · ".join(parts))
    if report.volume_known:
        lines.append(_("350 ml units: {share} of the donations with a recorded volume ({known}).").format(
            share=fmt_share(report.volume_350, report.volume_known, locale), known=num(report.volume_known)))
    lines.append(_("📞 Calls received: {calls}. Said available: {available} ({available_share}); came: {came} "
                   "({came_share}); donated: {donated}.").format(
        calls=num(report.calls), available=num(report.said_available),
        available_share=fmt_share(report.said_available, report.calls, locale), came=num(report.came),
        came_share=fmt_share(report.came, report.said_available, locale), donated=num(report.donated)))
    median = report.median_first_donation
    if report.requests_helped and median is not None:
        lines.append(_("🏥 Requests helped: {n}; median time from the request to a member's first donation: "
                       "{minutes} min.").format(n=num(report.requests_helped), minutes=num(round(median))))
    else:
        lines.append(_("🏥 No request was helped by a member's donation in this period."))
    if report.milestones:
        lines.append("")
        lines.append(_("🏅 Next donation is a milestone:"))
        for m in report.milestones:
            lines.append(_("• {name}: {count} so far, next is number {next}").format(
                name=escape(m.name), count=num(m.donations), next=num(m.next_milestone)))
    lines.append("")
    lines.append(_("/stats xlsx sends these figures as a spreadsheet."))
    return "\n".join(lines)


def stats_workbook(report: ClubReport, club: str) -> bytes:
    """Three sheets a committee can total itself: members by type, donations by month, calls."""
    book = Workbook()
    members = book.active
    members.title = _("Members")
    members.append([_("Type"), _("Members"), _("Able to give today"), _("Within 30 days")])
    for t in report.types:
        members.append([fmt_type(t.abo, t.rh), t.members, t.eligible_today, t.eligible_soon])
    members.append([_("Total"), report.members, sum(t.eligible_today for t in report.types),
                    sum(t.eligible_soon for t in report.types)])

    months = book.create_sheet(_("Donations"))
    components = list(report.donations)
    months.append([_("Month"), *(component_name(c, _) for c in components), _("Total")])
    for i, month in enumerate(report.months):
        counts = [report.donations[c][i] for c in components]
        months.append([f"{month:%m/%Y}", *counts, sum(counts)])
    months.append([_("Total"), *(sum(report.donations[c]) for c in components), report.total_donations])

    calls = book.create_sheet(_("Calls"))
    for label, value in ((_("Club"), club), (_("Calls received"), report.calls),
                         (_("Said available"), report.said_available), (_("Came"), report.came),
                         (_("Donated"), report.donated), (_("Requests helped"), report.requests_helped),
                         (_("Members who gave"), report.donors), (_("Gave more than once"), report.repeat_donors)):
        calls.append([label, value])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def send_stats(message: Message, ctx: LeadCtx, club_id: int, args: str) -> None:
    fmt, month = stats_args(args, ctx.today)  # checked by the command already
    club = await club_name(ctx.session, club_id) or "?"
    report = await club_report(ctx.session, club_id, ctx.today, ctx.settings.eligibility, ctx.settings.bot.tz,
                               month=month)
    locale = ctx.i18n.current_locale
    if fmt == "xlsx":
        await message.answer_document(BufferedInputFile(
            stats_workbook(report, club), filename=f"{file_slug(club)}-stats-{ctx.today:%Y-%m-%d}.xlsx"))
        return
    await message.answer_photo(BufferedInputFile(club_chart(report, club, _), filename="stats.png"))
    await message.answer(stats_text(report, club, locale))
