"""Last in line: whatever no other handler took still gets an answer (UX.md: never silence)."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.commands import ADMIN, LEAD, STAFF, command_filter
from bot.routing import RouterTemplate

router = RouterTemplate("fallback")
# A staff group must not be spammed: in groups only bot/routers/group.py speaks.
router.message.filter(F.chat.type == "private")

ROLE_COMMANDS = {
    **{c: "lead" for c, _d in LEAD},
    **{c: "staff" for c, _d in STAFF},
    **{c: "admin" for c, _d in ADMIN},
    **{c: "lead_or_staff" for c, _d in LEAD if c in dict(STAFF)},
}


@router.message(command_filter(*ROLE_COMMANDS))
async def not_your_command(message: Message, command: CommandObject) -> None:
    role = ROLE_COMMANDS.get(command.command.lower())
    if role == "lead_or_staff":
        text = _("This command is for club leads and hospital staff. They join through an invite link from the "
                 "Red Cross.")
    elif role == "lead":
        text = _("This command is for club leads. A lead becomes one through an invite link from the Red Cross.")
    elif role == "staff":
        text = _("This command is for hospital staff. Staff join through an invite link from the Red Cross.")
    else:
        text = _("This command is for administrators.")
    await message.answer(text + "\n" + _("/help lists what you can do."))


@router.message()
async def not_understood(message: Message, state: FSMContext) -> None:
    if await state.get_state() is not None:
        await message.answer(_("Please answer the question above (use its buttons if it has any), or /cancel."))
    else:
        await message.answer(_("Sorry, I didn't understand that. /help lists what you can do."))


@router.callback_query()  # in any chat: every press is answered (UX.md)
async def stale_button(query: CallbackQuery) -> None:
    await query.answer(_("This button is no longer active."), show_alert=True)
