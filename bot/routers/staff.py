"""Hospital staff: the quick request form ``/urgent O- 2 [component] [urgency]``.

Posting messages donors, so it is confirmed with one tap first (UX.md: confirm
before anything loud); the confirmation shows what will be sent and to whom.
The guided ``/request`` (staff_request.py) posts through :func:`post_request` too.
Both work in a private chat and in the hospital's staff group.
"""

from __future__ import annotations

from datetime import datetime

from aiogram.filters import CommandObject, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.board_view import board_keyboard, board_text
from bot.callbacks import UrgentCb
from bot.commands import command_filter
from bot.i18n import render
from bot.inplace import edit_text
from bot.texts import component_name, escape, urgency_name
from bot.routing import RouterTemplate
from dispatcher.engine import Dispatcher as DispatchEngine
from dispatcher.engine import InvalidRequest
from dispatcher.realism import DeadlineCheck
from models.directory import Roles
from models.tables import Hospital, HospitalChat
from ground.config import Settings
from ground.parsing import ParseError, format_blood_type
from ground.request_form import parse_quick_request

router = RouterTemplate("staff")


class IsStaff(Filter):
    """Hospital staff; in a group that belongs to a hospital (HospitalChat), staff of that hospital."""

    async def __call__(self, event: TelegramObject, roles: Roles | None = None,
                       session: AsyncSession | None = None) -> bool:
        if not (roles and roles.staff_hospital_ids):
            return False
        chat = getattr(event, "chat", None) or getattr(getattr(event, "message", None), "chat", None)
        if chat is None or chat.type == "private" or session is None:
            return True
        bound = await session.get(HospitalChat, chat.id)
        return bound is None or bound.hospital_id in roles.staff_hospital_ids


@router.message(command_filter("urgent"), IsStaff())
async def urgent(
    message: Message, command: CommandObject, state: FSMContext, session: AsyncSession, roles: Roles,
    settings: Settings, i18n: I18n, engine: DispatchEngine,
) -> None:
    try:
        form = parse_quick_request(command.args, max_units=settings.dispatch.max_units)
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    await state.clear()
    kb = InlineKeyboardBuilder()
    for hospital_id in roles.staff_hospital_ids:
        hospital = await session.get(Hospital, hospital_id)
        label = _("📣 Send to donors") if len(roles.staff_hospital_ids) == 1 else "📣 " + hospital.name
        kb.button(text=label, callback_data=UrgentCb(action="send", hospital_id=hospital_id))
    kb.button(text=_("Cancel"), callback_data=UrgentCb(action="cancel"))
    kb.adjust(1)
    warnings = []
    for hospital_id in roles.staff_hospital_ids:  # before posting: can the deadline be met? (issue 9)
        check = await engine.check_deadline(hospital_id=hospital_id, abo=form.abo, rh=form.rh,
                                            component=form.component, units=form.units, urgency=form.urgency)
        if check is not None and not check.ok:
            hospital = await session.get(Hospital, hospital_id)
            prefix = "" if len(roles.staff_hospital_ids) == 1 else escape(hospital.name) + ": "
            warnings.append(prefix + deadline_warning(check, form.component, _))
    sent = await answer_in_chat(
        message,
        _("Request: <b>{type}</b> {component}, {units} unit(s), {urgency}.\n"
          "Donors nearby will be messaged now. Send?").format(
            type=format_blood_type(form.abo, form.rh), component=component_name(form.component, _),
            units=form.units, urgency=urgency_name(form.urgency, _)) + "".join("\n\n" + w for w in warnings),
        reply_markup=kb.as_markup(),
    )
    # Tied to this confirmation: an older one's button cannot send this form.
    await state.update_data(urgent={**form.__dict__, "msg": sent.message_id})


def deadline_warning(check: DeadlineCheck, component: str, _) -> str:
    """The figures behind "this deadline is hard to meet" (DOMAIN.md §6), for the confirmation."""
    if check.found == 0:
        return _("⚠️ No likely-eligible donor of this type was found within reach. Consider the blood bank.")
    if check.found < check.donors:
        return _("⚠️ Only {found} likely-eligible donor of this type was found within reach; about {donors} need "
                 "to say yes for this request. Consider the blood bank too.",
                 "⚠️ Only {found} likely-eligible donors of this type were found within reach; about {donors} need "
                 "to say yes for this request. Consider the blood bank too.", check.found).format(
            found=check.found, donors=check.donors)
    return _("⚠️ The deadline {deadline} is {left} min away, but the nearest likely-eligible donor needs "
             "up to {travel} min to get ready and come, and collecting {component} takes about {collect} min: "
             "about {need} min in all. Consider a later deadline, or the blood bank.",
             "⚠️ The deadline {deadline} is {left} min away, but the nearest {donors} likely-eligible donors need "
             "up to {travel} min to get ready and come, and collecting {component} takes about {collect} min: "
             "about {need} min in all. Consider a later deadline, or the blood bank.", check.donors).format(
        deadline=check.deadline_local, left=check.minutes_left, donors=check.donors, travel=check.travel_min,
        component=component_name(component, _), collect=check.collect_min, need=check.need_min)


async def answer_in_chat(message: Message, text: str, **kwargs) -> Message:
    """In a group, reply to the person's command so everyone sees whose form it is."""
    if message.chat.type == "private":
        return await message.answer(text, **kwargs)
    return await message.reply(text, allow_sending_without_reply=True, **kwargs)


@router.callback_query(UrgentCb.filter())
async def urgent_answer(
    query: CallbackQuery, callback_data: UrgentCb, state: FSMContext, roles: Roles, engine: DispatchEngine,
    i18n: I18n,
) -> None:
    data = (await state.get_data()).get("urgent")
    if data and data.get("msg") != query.message.message_id:
        data = None  # an older confirmation, or (in a group) someone else's
    if callback_data.action == "cancel":
        if not data:
            await query.answer(_("This request was already sent or cancelled."), show_alert=True)
            return
        await state.clear()
        await query.answer()
        await edit_text(query.message, _("Not sent. Nothing was posted."))
        return
    # Callback data can be forged: the presser must be staff of that very hospital.
    if callback_data.hospital_id not in roles.staff_hospital_ids:
        await query.answer(_("Only staff of that hospital can post its requests."), show_alert=True)
        return
    if not data:
        await query.answer(_("This request was already sent or cancelled."), show_alert=True)
        return
    await state.clear()  # before posting: a second tap finds nothing to send
    await post_request(query, engine, i18n, hospital_id=callback_data.hospital_id, abo=data["abo"], rh=data["rh"],
                       component=data["component"], units=data["units"], urgency=data["urgency"])


async def post_request(
    query: CallbackQuery, engine: DispatchEngine, i18n: I18n, *, hospital_id: int, abo: str, rh: str,
    component: str, units: int, urgency: str, deadline: datetime | None = None, note: str = "",
    rh_positive_ok: bool = False,
) -> None:
    """Post from a confirmation tap (/urgent and /request alike) and turn the confirmation into the outcome.

    The caller has checked that the presser is staff of ``hospital_id`` and cleared its
    flow first, so that a second tap finds nothing to send. The request belongs to the
    chat the tap came from: a private chat or the hospital's staff group.
    """
    try:
        request_id = await engine.create_request(
            hospital_id=hospital_id, abo=abo, rh=rh, component=component, units=units, urgency=urgency,
            posted_by=query.from_user.id, chat_id=query.message.chat.id, deadline=deadline, note=note,
            rh_positive_ok=rh_positive_ok, board_message_id=query.message.message_id,
            board_locale=i18n.current_locale,
        )
    except InvalidRequest as err:
        await query.answer()
        await edit_text(query.message, render(err.text, i18n))
        return
    await query.answer()
    await show_posted(query.message, request_id, engine)


async def show_posted(message: Message, request_id: int, engine: DispatchEngine) -> None:
    """The confirmation message becomes the request's live board, edited in place from now on.

    It was attached with the request (``board_message_id``), and its first edit is queued in the
    outbox: this reply only draws it sooner (the outbox's copy then changes nothing)."""
    params = await engine.board_params(request_id, message.chat.id)
    await edit_text(message, board_text(params, _), reply_markup=board_keyboard(params, _))  # "not modified": done
