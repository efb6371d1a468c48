"""Commands everyone has, in any state: /start (with invites), /help, /cancel, /language."""

from __future__ import annotations

from aiogram import Bot, F
from aiogram.filters import CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import keyboards
from bot.callbacks import LangCb
from bot.commands import command_filter, commands_for, set_user_commands, start_command
from bot.i18n import render
from bot.inplace import edit_text, remove_buttons
from bot.routers import registration
from bot.routing import RouterTemplate
from bot.states import Registration
from bot.texts import escape
from models import members
from models.directory import DirectoryError, Roles, redeem_invite, roles_of
from models.tables import Donor, TelegramUser
from ground.clock import Clock
from ground.config import Settings

router = RouterTemplate("common")


@router.message(start_command(), F.chat.type == "private")
async def start(
    message: Message, command: CommandObject, state: FSMContext, session: AsyncSession, roles: Roles,
    is_admin: bool, tg_user: TelegramUser, clock: Clock, settings: Settings, bot: Bot, i18n: I18n,
) -> None:
    code = (command.args or "").strip()
    club_id = None
    if code:
        try:
            redemption = await redeem_invite(session, code, message.from_user.id, now=clock(), tz=settings.bot.tz)
        except DirectoryError as err:
            await message.answer(render(err.text, i18n))
            return
        roles = await roles_of(session, message.from_user.id)
        locale = tg_user.locale or i18n.current_locale
        await set_user_commands(bot, i18n, message.chat.id, roles, is_admin, locale)
        if redemption.kind == "lead":
            await state.clear()
            await message.answer(
                _("✅ You are now a lead of <b>{club}</b>.\n/roster shows your members by blood type; "
                  "/help lists everything you can do.").format(club=escape(redemption.club.name))
            )
            return
        if redemption.kind == "staff":
            await state.clear()
            await message.answer(
                _("✅ You are now staff of <b>{hospital}</b>.\nPost a request step by step with /request, or "
                  "at once with /urgent followed by the blood type and units, e.g. /urgent O- 2. Both work in "
                  "your hospital's staff group too, once the bot is added there.").format(
                    hospital=escape(redemption.hospital.name))
            )
            return
        club_id = redemption.club.id if redemption.club else None
        if roles.donor_id is not None:
            await join_club(session, roles.donor_id, club_id)
            await message.answer(
                _("Welcome back! You are now also on the roster of <b>{club}</b>.").format(club=escape(redemption.club.name))
            )
            return
    elif roles.donor_id is not None:
        await state.clear()
        await message.answer(_("Welcome back! /me shows your profile; /help lists what you can do."))
        return
    elif roles.lead_club_ids or roles.staff_hospital_ids:
        await state.clear()
        await message.answer(help_text(roles, is_admin))
        return
    await registration.begin(message, state, club_id=club_id)


async def join_club(session: AsyncSession, donor_id: int, club_id: int | None) -> None:
    if club_id is None:
        return
    await members.ensure_member(session, club_id, donor_id)
    await session.commit()


def help_text(roles: Roles, is_admin: bool) -> str:
    lines = [_("<b>What you can do here</b>")]
    for command, description in commands_for(roles, is_admin):
        lines.append(f"/{command} — {_(description)}")
    return "\n".join(lines)


@router.message(command_filter("help"), F.chat.type == "private")  # in groups: bot/routers/group.py
async def help_(message: Message, roles: Roles, is_admin: bool) -> None:
    await message.answer(help_text(roles, is_admin))


@router.message(command_filter("cancel"))
async def cancel(message: Message, state: FSMContext) -> None:
    """Any flow, in any chat (a group's flows are per person). A flow that keeps its form
    message under ``form_msg`` has its buttons removed, so none is left to tap."""
    had_flow = await state.get_state() is not None
    form_msg = (await state.get_data()).get("form_msg")
    await state.clear()
    if form_msg is not None:
        await remove_buttons(message.bot, message.chat.id, form_msg)
    if message.chat.type != "private":
        # No reply keyboards in groups; keep it short and tied to the person's command.
        text = _("Stopped. Nothing was saved.") if had_flow else _("There is nothing to stop.")
        await message.reply(text, allow_sending_without_reply=True)
    elif had_flow:
        await message.answer(_("Stopped. Nothing was saved."), reply_markup=ReplyKeyboardRemove())
    else:
        await message.answer(_("There is nothing to stop. /help lists what you can do."),
                             reply_markup=ReplyKeyboardRemove())


@router.message(command_filter("language"), F.chat.type == "private")
async def language(message: Message) -> None:
    await message.answer("Chọn ngôn ngữ / Choose your language:", reply_markup=keyboards.language_keyboard())


@router.callback_query(LangCb.filter(), F.message.chat.type == "private")
async def set_language(
    query: CallbackQuery, callback_data: LangCb, state: FSMContext, session: AsyncSession, tg_user: TelegramUser,
    roles: Roles, is_admin: bool, bot: Bot, i18n: I18n,
) -> None:
    """A language button: /language's, or registration's first step (which then goes on to consent)."""
    if callback_data.code not in i18n.available_locales:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    tg_user.locale = callback_data.code
    session.add(tg_user)
    if roles.donor_id is not None:
        donor = await session.get(Donor, roles.donor_id)
        donor.locale = callback_data.code
        session.add(donor)
    await session.commit()
    if await state.get_state() == Registration.language.state:
        await registration.language_chosen(query, state, callback_data.code, i18n)
        return
    with i18n.use_locale(callback_data.code):
        await query.answer()
        await edit_text(query.message, _("Language set: English"))
        await set_user_commands(bot, i18n, query.message.chat.id, roles, is_admin, callback_data.code)
