"""Club leads' commands: /roster, /find, /add, /export, /invitelink and /stats.

Each takes the lead's club, or asks which one with buttons when they lead several,
then hands over to its journey (see lead_common.py for the list). This router
comes first of the leads' routers, so a command typed in the middle of an edit or
an /add is a command, not an answer.
"""

from __future__ import annotations

from typing import Any

from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.callbacks import LeadClubCb
from bot.commands import command_filter
from bot.i18n import render
from bot.routers import lead_add, lead_files, lead_roster, lead_stats
from bot.routers.lead_common import (
    BLOOD_VALUES,
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
from bot.texts import escape
from models.directory import Roles
from ground.parsing import ParseError, parse_blood_type

router = lead_router("lead")

COMMANDS = ("roster", "find", "add", "export", "invitelink", "stats")
EXPORTS = ("", "donations")


@router.message(command_filter(*COMMANDS))
async def lead_command(message: Message, command: CommandObject, roles: Roles, **data: Any) -> None:
    name = command.command.lower()
    ctx = lead_ctx(data, message.from_user.id)
    value = ""
    if name == "find":
        try:
            abo, rh = parse_blood_type(command.args or "")
        except ParseError as err:
            await message.answer(render(err.text, ctx.i18n) + "\n"
                                 + _("Usage: /find followed by a blood type, e.g. /find O- or /find AB+"))
            return
        value = f"{abo}{rh}"
    elif name == "export":
        value = (command.args or "").strip().lower()
        if value not in EXPORTS:
            await message.answer(_("Usage: /export for the roster, /export donations for the members' donations "
                                   "of the last twelve months."))
            return
    elif name == "stats":
        value = " ".join((command.args or "").lower().split())
        try:
            lead_stats.stats_args(value, ctx.today)
        except ParseError as err:
            await message.answer(render(err.text, ctx.i18n) + "\n" + _(
                "Usage: /stats for the club's figures and chart, /stats 11/2026 for one month, "
                "/stats xlsx for a spreadsheet."))
            return
    await ctx.state.clear()
    club_id = await pick_club(message, ctx.session, roles, name, value)
    if club_id is not None:
        await _run(name, message, club_id, value, ctx)


@router.callback_query(LeadClubCb.filter())
async def chose_club(query: CallbackQuery, callback_data: LeadClubCb, roles: Roles, **data: Any) -> None:
    ctx = lead_ctx(data, query.from_user.id)
    cb = callback_data
    if not leads(roles, cb.club_id):
        await refuse(query, ctx.session, f"club:{cb.command}", cb.club_id)
        return
    if (cb.command not in (*COMMANDS, "import") or (cb.command == "find" and cb.value not in BLOOD_VALUES)
            or (cb.command == "stats" and not _stats_args_ok(cb.value, ctx))
            or (cb.command == "export" and cb.value not in EXPORTS)
            or (cb.command == "import" and await ctx.state.get_state() != ImportRoster.club.state)):
        await expired(query)
        return
    await query.answer()
    await edit(query.message, _("Club: {name}").format(name=escape(await club_name(ctx.session, cb.club_id))))
    await _run(cb.command, query.message, cb.club_id, cb.value, ctx)


def _stats_args_ok(value: str, ctx: LeadCtx) -> bool:
    try:
        lead_stats.stats_args(value, ctx.today)
    except ParseError:
        return False
    return True


async def _run(command: str, message: Message, club_id: int, value: str, ctx: LeadCtx) -> None:
    if command == "roster":
        await lead_roster.show_roster(message, ctx, club_id)
    elif command == "find":
        await lead_roster.show_type(message, ctx, club_id, value)
    elif command == "add":
        await lead_add.begin_add(message, ctx.state, ctx.session, club_id)
    elif command == "export" and value == "donations":
        await lead_files.send_donations(message, ctx, club_id)
    elif command == "export":
        await lead_files.send_export(message, ctx, club_id, "xlsx")
    elif command == "invitelink":
        await lead_files.send_invite_link(message, ctx, club_id)
    elif command == "stats":
        await lead_stats.send_stats(message, ctx, club_id, value)
    elif command == "import":
        await lead_files.trial_import(message, ctx, club_id)
