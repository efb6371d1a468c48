"""The command menu each person sees: donors, club leads, staff and admins differ (UX.md)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandStart
from aiogram.types import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeChat, BotCommandScopeDefault
from aiogram.utils.i18n import I18n

from bot.i18n import LOCALES
from ground.i18n import N_

def command_filter(*names: str) -> Command:
    """The filter for typed commands. Any case: a phone may capitalise "/Start" itself, or
    someone types "/HELP". Telegram also delivers a command as a photo's or a file's caption;
    aiogram's filter reads captions too, so handlers take the command from ``CommandObject``,
    never from ``message.text``."""
    return Command(*names, ignore_case=True)


def start_command() -> CommandStart:
    return CommandStart(ignore_case=True)


DONOR = [
    ("me", N_("My profile and when I may give again")),
    ("pause", N_("Pause emergency calls for a while")),
    ("resume", N_("Resume emergency calls")),
    ("donated", N_("Record a donation made elsewhere")),
    ("language", N_("Language / Ngôn ngữ")),
    ("mydata", N_("Download everything stored about me")),
    ("forget", N_("Delete my data")),
]
LEAD = [
    ("roster", N_("Club roster by blood type")),
    ("find", N_("Find members by blood type, e.g. /find O-")),
    ("add", N_("Add a member")),
    ("export", N_("Export the roster as a spreadsheet")),
    ("invitelink", N_("Invite link for new donors")),
    ("stats", N_("Club figures and charts")),
    ("monthly", N_("Last month's report on the 1st: /monthly on or off")),
]
STAFF = [
    ("request", N_("Post a blood request, step by step")),
    ("urgent", N_("Urgent request, e.g. /urgent O- 2")),
    ("board", N_("Live board of a request, e.g. /board 12")),
    ("report", N_("After-action report, e.g. /report 12")),
    ("stats", N_("The hospital's figures and charts")),
    ("export", N_("Export the hospital's requests as a spreadsheet")),
    ("monthly", N_("Last month's report on the 1st: /monthly on or off")),
]
ADMIN = [
    ("addclub", N_("Add a club")),
    ("addhospital", N_("Add a hospital")),
    ("invite", N_("Create an invite")),
    ("stats", N_("Figures across all clubs and hospitals")),
]
ALWAYS = [("help", N_("What I can do")), ("cancel", N_("Stop the current step"))]


def commands_for(roles, is_admin: bool) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    if roles.donor_id is not None or not (roles.lead_club_ids or roles.staff_hospital_ids):
        items += DONOR
    if roles.lead_club_ids:
        items += LEAD
    if roles.staff_hospital_ids:
        items += STAFF
    if is_admin:
        items += ADMIN
    # A lead who is also staff has one /stats (the club's: lead.py comes first); a menu names a command once.
    menu: dict[str, str] = {}
    for command, description in items + ALWAYS:
        menu.setdefault(command, description)
    return list(menu.items())


# In groups the bot serves a hospital's staff; everything else happens in private chats, and so
# does a subscription to the monthly report (it is sent to the person, not to the group).
PRIVATE_ONLY = {"monthly"}
GROUP = [(c, d) for c, d in STAFF if c not in PRIVATE_ONLY] + ALWAYS


async def set_default_commands(bot: Bot, i18n: I18n) -> None:
    for locale in LOCALES:
        for scope, items in ((BotCommandScopeDefault(), DONOR + ALWAYS), (BotCommandScopeAllGroupChats(), GROUP)):
            cmds = [BotCommand(command=c, description=i18n.gettext(d, locale=locale)) for c, d in items]
            await bot.set_my_commands(cmds, scope=scope, language_code=locale)


async def set_user_commands(bot: Bot, i18n: I18n, chat_id: int, roles, is_admin: bool, locale: str) -> None:
    """Per-chat menu in the user's language. A failure here must not break the reply."""
    cmds = [
        BotCommand(command=c, description=i18n.gettext(d, locale=locale)) for c, d in commands_for(roles, is_admin)
    ]
    try:
        await bot.set_my_commands(cmds, scope=BotCommandScopeChat(chat_id=chat_id))
    except TelegramAPIError:
        pass
