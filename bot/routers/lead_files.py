"""Club leads: a roster sent as a spreadsheet is imported; /export sends it back; /invitelink.

An import is a trial run first, its report shown with "Import" and "Cancel"; only
"Import" writes. The file stays with Telegram meanwhile: the FSM keeps its file_id.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from pathlib import Path
from typing import Any

from aiogram import F
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import ExportCb, ImportCb
from bot.i18n import render
from bot.routers.lead_common import (
    LeadCtx,
    club_name,
    edit,
    expired,
    lead_ctx,
    lead_router,
    leads,
    pick_club,
    refuse,
)
from bot.states import ImportRoster
from bot.texts import escape, fmt_date
from dispatcher import exports
from dispatcher.report_months import month_starts
from models.directory import DirectoryError, Roles, create_invite, deep_link
from models.roster import ImportReport, export_roster, import_roster
from ground.parsing import ParseError, fold
from ground.roster_file import open_roster, write_roster
from ground.table_file import write_table

log = logging.getLogger(__name__)

router = lead_router("lead_files")

# One link shared in the club's group: enough uses for a large club's newcomers, and a
# month of life, so a link that leaks beyond the group stops working soon.
INVITE_USES = 200
INVITE_DAYS = 30
# The trial-run report lists this many refused rows (and as many warnings) word for word.
REPORT_DETAILS = 15
REPORT_LINE_CHARS = 200  # a refused cell is quoted in the message; a pasted essay must not fill it
MESSAGE_CHARS = 4000  # Telegram's limit is 4096
# .xls is accepted here only so that roster_file can explain how to save it as .xlsx.
SPREADSHEET_SUFFIXES = (".csv", ".xlsx", ".xlsm", ".xls")


# --- import by upload -------------------------------------------------------------------


@router.message(F.document)
async def got_document(message: Message, roles: Roles, **data: Any) -> None:
    ctx = lead_ctx(data, message.from_user.id)
    document = message.document
    name = document.file_name or ""
    if Path(name).suffix.lower() not in SPREADSHEET_SUFFIXES:
        await message.answer(_("To import members, send the roster as an Excel file (.xlsx) or a CSV file "
                               "(.csv). “{name}” is neither.").format(name=escape(name or "?")))
        return
    limit_mb = ctx.settings.bot.max_upload_mb
    if document.file_size is not None and document.file_size > limit_mb * 1024 * 1024:
        await message.answer(_("This file is {size} MB; the limit is {limit} MB. Split the roster into smaller "
                               "files and send them one by one.").format(
            size=f"{document.file_size / 1024 / 1024:.1f}", limit=f"{limit_mb:g}"))
        return
    await ctx.state.clear()
    # The file_id, not the bytes: a roster can be megabytes, and Telegram keeps the file for us.
    await ctx.state.update_data(file_id=document.file_id, file_name=name)
    club_id = await pick_club(message, ctx.session, roles, "import")
    if club_id is None:
        await ctx.state.set_state(ImportRoster.club)
        return
    await trial_import(message, ctx, club_id)


async def _import(ctx: LeadCtx, club_id: int, *, dry_run: bool) -> ImportReport | str:
    """Download the file and import it (or try it); a report, or what is wrong, rendered."""
    data = await ctx.state.get_data()
    try:
        content = await ctx.bot.download(data["file_id"])
    except (TelegramAPIError, KeyError):
        return _("I could not fetch the file from Telegram. Please send it again.")
    try:
        # Opening a workbook unpacks and parses it (openpyxl reads every shared string at once):
        # in a worker thread, so everyone else is answered meanwhile; import_roster reads the rows
        # in worker threads too. The size check in open_roster bounds what the worker may unpack.
        roster = await asyncio.to_thread(open_roster, content, filename=data.get("file_name"), today=ctx.today,
                                         rules=ctx.settings.eligibility, region=ctx.settings.bot.phone_region,
                                         max_rows=ctx.settings.bot.max_roster_rows)
        with roster:
            return await import_roster(ctx.session, club_id, roster, dry_run=dry_run, today=ctx.today,
                                       actor=ctx.actor, now=ctx.clock())
    except ParseError as err:  # RosterFileError: not a usable roster, or unreadable part-way
        text = render(err.text, ctx.i18n)
        if not dry_run:
            text += "\n" + _("Rows before that point were saved; /roster shows the result.")
        return text
    except Exception:
        if not dry_run:
            raise
        # The file is the lead's, from any program: whatever a reader library throws at an odd
        # one, the lead gets an answer (the trial wrote nothing), and the log keeps the details.
        log.exception("roster file %r could not be read", data.get("file_name"))
        return _("This file could not be read as a roster. Save it again as .xlsx or as CSV UTF-8 and send it, "
                 "or send the file /export gives as a model.")


def _clip(html: str, limit: int) -> str:
    """At most ``limit`` characters, ending in "…" when cut; never cut inside an entity ("&lt;")."""
    if len(html) <= limit:
        return html
    cut = html[:limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def report_text(title: str, report: ImportReport, i18n: I18n) -> str:
    lines = [title, *(_clip(render(line, i18n), REPORT_LINE_CHARS) for line in report.summary(limit=REPORT_DETAILS))]
    return _clip("\n".join(lines), MESSAGE_CHARS)


async def trial_import(message: Message, ctx: LeadCtx, club_id: int) -> None:
    status = await message.answer(_("⏳ Checking the file…"))
    club = escape(await club_name(ctx.session, club_id))
    result = await _import(ctx, club_id, dry_run=True)
    if isinstance(result, str):
        await ctx.state.clear()
        await edit(status, result)
        return
    title = _("📄 <b>{file}</b> → <b>{club}</b>").format(file=escape((await ctx.state.get_data()).get("file_name", "")),
                                                        club=club)
    text = report_text(title, result, ctx.i18n)
    if not (result.created or result.updated):
        await ctx.state.clear()
        await edit(status, text + "\n\n" + _("Nothing to import: the roster already holds everything "
                                               "this file can add."))
        return
    await ctx.state.set_state(ImportRoster.confirm)
    await ctx.state.update_data(club_id=club_id)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Import"), callback_data=ImportCb(action="go"))
    builder.button(text=_("Cancel"), callback_data=ImportCb(action="cancel"))
    builder.adjust(2)
    await edit(status, text, builder.as_markup())


@router.callback_query(ImportRoster.confirm, ImportCb.filter(F.action == "go"))
async def import_confirmed(query: CallbackQuery, roles: Roles, **data: Any) -> None:
    ctx = lead_ctx(data, query.from_user.id)
    club_id = (await ctx.state.get_data()).get("club_id")
    if not leads(roles, club_id):
        await ctx.state.clear()
        await refuse(query, ctx.session, "import", club_id or 0)
        return
    await query.answer()
    await edit(query.message, _("⏳ Importing…"))
    result = await _import(ctx, club_id, dry_run=False)
    await ctx.state.clear()
    if isinstance(result, str):
        await edit(query.message, result)
        return
    await edit(query.message, report_text(_("✅ <b>Imported.</b>"), result, ctx.i18n) + "\n\n"
               + _("/roster shows the club's members by blood type."))


@router.callback_query(ImportRoster.confirm, ImportCb.filter(F.action == "cancel"))
async def import_cancelled(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await edit(query.message, _("Import cancelled. Nothing was saved."))


# --- /export and /invitelink ------------------------------------------------------------


def file_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:40] or "club"


async def send_export(message: Message, ctx: LeadCtx, club_id: int, fmt: str) -> None:
    name = await club_name(ctx.session, club_id)
    rows = await export_roster(ctx.session, club_id, actor=ctx.actor, now=ctx.clock())  # audits roster.export
    buffer = io.BytesIO()
    write_roster(buffer, fmt, rows, lang="vi" if ctx.i18n.current_locale == "vi" else "en")
    filename = f"{file_slug(name)}-{ctx.today:%Y-%m-%d}.{fmt}"
    builder = InlineKeyboardBuilder()
    if fmt == "xlsx":
        builder.button(text=_("CSV instead"), callback_data=ExportCb(club_id=club_id, fmt="csv"))
    await message.answer_document(
        BufferedInputFile(buffer.getvalue(), filename=filename),
        caption=_("Roster of {club}: {n} member. It holds personal and health data: keep it safe and do not "
                  "post it in groups. Send it back edited to update the roster.",
                  "Roster of {club}: {n} members. It holds personal and health data: keep it safe and do not "
                  "post it in groups. Send it back edited to update the roster.", len(rows)).format(club=escape(name),
                                                                                         n=len(rows)),
        reply_markup=builder.as_markup() if fmt == "xlsx" else None,
    )


async def send_donations(message: Message, ctx: LeadCtx, club_id: int) -> None:
    """The members' donations of the last twelve months, as a workbook (audited like the roster export)."""
    name = await club_name(ctx.session, club_id)
    first = month_starts(ctx.today)[0]
    table = await exports.club_donations(ctx.session, club_id, first, ctx.today, actor=ctx.actor)
    lang = "vi" if ctx.i18n.current_locale == "vi" else "en"
    buffer = io.BytesIO()
    write_table(buffer, "xlsx", table.sheet_name(lang), table.header_row(lang), table.rows)
    await message.answer_document(
        BufferedInputFile(buffer.getvalue(), filename=f"{file_slug(name)}-donations-{ctx.today:%Y-%m-%d}.xlsx"),
        caption=_("Donations by members of {club}, {first} – {last}: {n}. It names donors and their phones: keep it "
                  "safe and do not post it in groups.").format(club=escape(name), first=fmt_date(first),
                                                               last=fmt_date(ctx.today), n=len(table.rows)))


@router.callback_query(ExportCb.filter())
async def export_other_format(query: CallbackQuery, callback_data: ExportCb, roles: Roles, **data: Any) -> None:
    ctx = lead_ctx(data, query.from_user.id)
    if not leads(roles, callback_data.club_id):
        await refuse(query, ctx.session, "export", callback_data.club_id)
        return
    if callback_data.fmt not in ("csv", "xlsx"):
        await expired(query)
        return
    await query.answer()
    await send_export(query.message, ctx, callback_data.club_id, callback_data.fmt)


async def send_invite_link(message: Message, ctx: LeadCtx, club_id: int) -> None:
    try:
        invite = await create_invite(ctx.session, "donor", club_id=club_id, uses=INVITE_USES,
                                     expires_hours=INVITE_DAYS * 24, now=ctx.clock(), actor=ctx.actor)
    except DirectoryError as err:
        await message.answer(render(err.text, ctx.i18n))
        return
    me = await ctx.bot.me()
    link = deep_link(me.username or "", invite.code)
    await message.answer(
        _("🔗 Invite link for <b>{club}</b>:\n{link}\n\nShare it in your club's group. Whoever opens it registers "
          "as a donor of your club. It works for {uses} people until {date}.").format(
            club=escape(await club_name(ctx.session, club_id)), link=link, uses=INVITE_USES,
            date=fmt_date(invite.expires_at.astimezone(ctx.settings.bot.tz).date()))
    )
