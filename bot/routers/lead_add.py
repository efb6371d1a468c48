"""Club leads: /add puts someone on the club's roster, one question at a time.

The answers live in the FSM; nothing is written until "Save", in one transaction
(models.members.add_member). A phone already known to RedReserve, through another
club or the donor's own registration, only adds that donor to this roster.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import AddMemberCb, BloodCb, MemberCb, SexCb
from bot.i18n import render
from bot.inplace import edit_markup
from bot.keyboards import BLOOD_TYPES
from bot.routers.lead_common import (
    BLOOD_VALUES,
    club_name,
    edit,
    expired,
    lead_router,
    leads,
    refuse,
    split_blood,
)
from bot.routers.lead_members import card_markup, card_text
from bot.states import AddMember
from bot.texts import escape, fmt_date, fmt_sex, fmt_type, fmt_weight
from models import members
from models.directory import Roles
from models.members import NewMember
from ground.clock import Clock, local_today
from ground.config import Settings
from ground.parsing import (
    ParseError,
    format_phone,
    parse_birth_date,
    parse_name,
    parse_past_date,
    parse_phone,
    parse_weight,
)

router = lead_router("lead_add")


def _cancel_button(builder: InlineKeyboardBuilder) -> None:
    builder.button(text=_("Cancel"), callback_data=AddMemberCb(action="cancel"))


def _new_member(data: dict[str, Any]) -> NewMember:
    """The answers kept in the FSM, as the member they describe."""
    abo, rh = split_blood(data.get("blood"))
    return NewMember(
        full_name=data["name"], abo=abo, rh=rh, sex=data.get("sex"),
        birth_date=date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None,
        weight_kg=data.get("weight"),
        last_donation_date=date.fromisoformat(data["last_donation"]) if data.get("last_donation") else None,
    )


async def begin_add(message: Message, state: FSMContext, session: AsyncSession, club_id: int) -> None:
    await state.clear()
    await state.update_data(club_id=club_id)
    await message.answer(_("Adding a member to <b>{club}</b>. /cancel stops at any step; nothing is saved "
                           "before you confirm.").format(club=escape(await club_name(session, club_id))))
    await _next_add_step(message, state)


async def _next_add_step(message: Message, state: FSMContext) -> None:
    """Ask for the first missing answer, or show the summary."""
    data = await state.get_data()
    builder = InlineKeyboardBuilder()
    if not data.get("name"):
        await state.set_state(AddMember.name)
        text = _("Full name, as on the ID card:")
    elif not data.get("phone"):
        await state.set_state(AddMember.phone)
        text = _("Mobile number (e.g. 0912 345 678):")
    elif not data.get("blood"):
        await state.set_state(AddMember.blood_type)
        for abo, rh in BLOOD_TYPES:
            builder.button(text=fmt_type(abo, rh), callback_data=BloodCb(value=f"{abo}{rh}"))
        builder.button(text=_("Unknown"), callback_data=BloodCb(value="unknown"))
        text = _("Blood type:")
    elif "sex" not in data:
        await state.set_state(AddMember.sex)
        builder.button(text=_("Male"), callback_data=SexCb(value="M"))
        builder.button(text=_("Female"), callback_data=SexCb(value="F"))
        builder.button(text=_("Skip"), callback_data=AddMemberCb(action="skip"))
        text = _("Sex:")
    elif "birth_date" not in data:
        await state.set_state(AddMember.birth_date)
        builder.button(text=_("Skip"), callback_data=AddMemberCb(action="skip"))
        text = _("Date of birth (DD/MM/YYYY) or birth year:")
    elif "weight" not in data:
        await state.set_state(AddMember.weight)
        builder.button(text=_("Skip"), callback_data=AddMemberCb(action="skip"))
        text = _("Weight in kg (e.g. 55):")
    elif "last_donation" not in data:
        await state.set_state(AddMember.last_donation)
        builder.button(text=_("Never gave blood"), callback_data=AddMemberCb(action="never"))
        text = _("Date of the last donation (DD/MM/YYYY):")
    else:
        await _add_summary(message, state, data["phone"], _new_member(data))
        return
    _cancel_button(builder)
    sizes = {AddMember.blood_type.state: (4, 4, 1, 1), AddMember.sex.state: (2, 1, 1)}
    builder.adjust(*sizes.get(await state.get_state(), (1,)))
    await message.answer(text, reply_markup=builder.as_markup())


async def _add_summary(message: Message, state: FSMContext, phone: str, member: NewMember) -> None:
    await state.set_state(AddMember.confirm)
    lines = [
        _("<b>New member — please check</b>"),
        _("Name: {v}").format(v=escape(member.full_name)),
        _("Phone: {v}").format(v=format_phone(phone)),
        _("Blood type: {v}").format(v=fmt_type(member.abo, member.rh)),
        _("Sex: {v}").format(v=fmt_sex(member.sex)),
        _("Date of birth: {v}").format(v=fmt_date(member.birth_date)),
        _("Weight: {v}").format(v=fmt_weight(member.weight_kg)),
        _("Last donation: {v}").format(v=fmt_date(member.last_donation_date) if member.last_donation_date
                                       else _("never")),
    ]
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Save"), callback_data=AddMemberCb(action="save"))
    _cancel_button(builder)
    builder.adjust(2)
    await message.answer("\n".join(lines), reply_markup=builder.as_markup())


# --- the answers ------------------------------------------------------------------------


async def _typed_step(message: Message, state: FSMContext, i18n: I18n, key: str, parse) -> None:
    try:
        value = parse(message.text)
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    await state.update_data({key: value})
    await _next_add_step(message, state)


@router.message(AddMember.name, F.text)
async def add_name(message: Message, state: FSMContext, i18n: I18n) -> None:
    await _typed_step(message, state, i18n, "name", parse_name)


@router.message(AddMember.phone, F.text | F.contact)
async def add_phone(message: Message, state: FSMContext, session: AsyncSession, settings: Settings,
                    i18n: I18n) -> None:
    raw = message.contact.phone_number if message.contact else message.text
    try:
        phone = parse_phone(raw, settings.bot.phone_region)
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    data = await state.get_data()
    club_id = data["club_id"]
    existing = await members.donor_id_by_phone(session, phone)
    if existing is not None and await members.roster_member(session, club_id, existing) is not None:
        await state.clear()
        builder = InlineKeyboardBuilder()
        builder.button(text=_("Open"), callback_data=MemberCb(action="open", club_id=club_id, donor_id=existing))
        await message.answer(_("{phone} is already on your club's roster. Nothing was added.").format(phone=format_phone(phone)),
                             reply_markup=builder.as_markup())
        return
    await state.update_data(phone=phone, existing_id=existing)
    if existing is None:
        await _next_add_step(message, state)
        return
    # Known to RedReserve through another club or their own registration: their details are
    # theirs and stay as they are; this club only adds them to its roster.
    await state.set_state(AddMember.join)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Add to our roster"), callback_data=AddMemberCb(action="join"))
    _cancel_button(builder)
    builder.adjust(2)
    await message.answer(_("{phone} is already registered with RedReserve. Add this donor to your club's "
                           "roster? Their details stay as they are.").format(phone=format_phone(phone)),
                         reply_markup=builder.as_markup())


@router.callback_query(AddMember.blood_type, BloodCb.filter())
async def add_blood(query: CallbackQuery, callback_data: BloodCb, state: FSMContext) -> None:
    if callback_data.value not in BLOOD_VALUES | {"unknown"}:
        await expired(query)
        return
    await query.answer()
    await edit(query.message, _("Blood type: {v}").format(v=fmt_type(*split_blood(callback_data.value))))
    await state.update_data(blood=callback_data.value)
    await _next_add_step(query.message, state)


@router.callback_query(AddMember.sex, SexCb.filter())
async def add_sex(query: CallbackQuery, callback_data: SexCb, state: FSMContext) -> None:
    if callback_data.value not in ("M", "F"):
        await expired(query)
        return
    await query.answer()
    await edit(query.message, _("Sex: {v}").format(v=fmt_sex(callback_data.value)))
    await state.update_data(sex=callback_data.value)
    await _next_add_step(query.message, state)


@router.message(AddMember.birth_date, F.text)
async def add_birth(message: Message, state: FSMContext, clock: Clock, settings: Settings, i18n: I18n) -> None:
    today = local_today(clock, settings.bot.tz)
    await _typed_step(message, state, i18n, "birth_date",
                      lambda t: parse_birth_date(t, today=today).isoformat())


@router.message(AddMember.weight, F.text)
async def add_weight(message: Message, state: FSMContext, i18n: I18n) -> None:
    await _typed_step(message, state, i18n, "weight", parse_weight)


@router.message(AddMember.last_donation, F.text)
async def add_last(message: Message, state: FSMContext, clock: Clock, settings: Settings, i18n: I18n) -> None:
    today = local_today(clock, settings.bot.tz)
    await _typed_step(message, state, i18n, "last_donation",
                      lambda t: parse_past_date(t, today=today).isoformat())


_SKIPPED = {AddMember.sex.state: "sex", AddMember.birth_date.state: "birth_date", AddMember.weight.state: "weight"}


@router.callback_query(AddMember.sex, AddMemberCb.filter(F.action == "skip"))
@router.callback_query(AddMember.birth_date, AddMemberCb.filter(F.action == "skip"))
@router.callback_query(AddMember.weight, AddMemberCb.filter(F.action == "skip"))
async def add_skip(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await edit_markup(query.message)
    await state.update_data({_SKIPPED[await state.get_state()]: None})
    await _next_add_step(query.message, state)


@router.callback_query(AddMember.last_donation, AddMemberCb.filter(F.action == "never"))
async def add_never(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await edit(query.message, _("Last donation: {v}").format(v=_("never")))
    await state.update_data(last_donation=None)
    await _next_add_step(query.message, state)


@router.callback_query(AddMemberCb.filter(F.action == "cancel"))
async def add_cancel(query: CallbackQuery, state: FSMContext) -> None:
    current = await state.get_state()
    if current is None or not current.startswith(AddMember.__name__):
        await expired(query)
        return
    await state.clear()
    await query.answer()
    await edit(query.message, _("Stopped. Nothing was saved."))


# --- saving -----------------------------------------------------------------------------


@router.callback_query(AddMember.confirm, AddMemberCb.filter(F.action == "save"))
@router.callback_query(AddMember.join, AddMemberCb.filter(F.action == "join"))
async def add_save(query: CallbackQuery, state: FSMContext, session: AsyncSession, roles: Roles, clock: Clock,
                   settings: Settings) -> None:
    data = await state.get_data()
    club_id = data.get("club_id")
    if not leads(roles, club_id):
        await state.clear()
        await refuse(query, session, "add", club_id or 0)
        return
    existing_id = data.get("existing_id")
    new = _new_member(data) if existing_id is None else None
    try:
        donor = await members.add_member(session, club_id, data["phone"], new, existing_id=existing_id,
                                         actor=query.from_user.id, now=clock())
    except IntegrityError:
        await session.rollback()
        donor = None
    await state.clear()
    if donor is None:
        await query.answer(_("{phone} was just added by someone else. Nothing was saved.").format(
            phone=format_phone(data.get("phone"))), show_alert=True)
        await edit(query.message, _("Stopped. Nothing was saved."))
        return
    await query.answer(_("Saved."))
    await edit(query.message, _("✅ Added to the roster.") + "\n\n" + card_text(donor, local_today(clock, settings.bot.tz), settings),
               card_markup(club_id, donor.id, ""))
