"""The bot in a group chat (a hospital's staff group): quiet unless spoken to.

Staff's /request and /urgent come before this router (staff.py, staff_request.py);
what reaches it is someone else running them, or /start and /help. Every other router
that reads messages answers in private chats only, so the group's own conversation
never gets a reply, even when the bot can read it (privacy mode off, or a group admin).
Replies here are short and carry nothing personal (DOMAIN.md §7).
"""

from __future__ import annotations

from aiogram import F

from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.commands import command_filter, start_command
from bot.routers.staff import answer_in_chat
from bot.routing import RouterTemplate

router = RouterTemplate("group")
router.message.filter(F.chat.type.in_({"group", "supergroup"}))


@router.message(start_command())
@router.message(command_filter("help"))
async def explain(message: Message) -> None:
    await answer_in_chat(message, _(
        "🩸 I am RedReserve: I find reserve blood donors for hospitals.\n"
        "Hospital staff can post a request here: /request (step by step) or /urgent O- 2.\n"
        "Donors and club leads: please write to me in a private chat."))


@router.message(command_filter("request", "urgent"))
async def not_staff(message: Message) -> None:
    await answer_in_chat(message, _("Sorry, only the hospital's staff can post requests. Staff join through an "
                                    "invite from the Red Cross."))
