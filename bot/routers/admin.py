"""Admins (telegram ids in settings.bot.admins): clubs, hospitals and invites.

/addclub and /addhospital work two ways:
- in one line, for someone pasting from a list:
  ``/addclub Name; 20.8449; 106.6881; Area``
  ``/addhospital Name; 20.86; 106.68; Address; Phone`` (address and phone optional);
- guided, when sent alone: name → location (a pin, or "lat, lon" typed) → area or
  address → (hospital) phone, each optional step with a Skip button.
/invite: who for (lead / staff / donor) → which club or hospital → how many uses →
the code and its deep link, as the CLI prints them. create_invite writes the audit row.

Every press re-checks that the presser is an admin: callback data can be forged.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot, F
from aiogram.filters import CommandObject, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import AdminCb, InviteCb
from bot.commands import command_filter
from bot.i18n import render
from bot.inplace import edit_markup, edit_text
from bot.routing import RouterTemplate
from bot.states import AddPlace
from bot.texts import escape
from models.directory import (
    DirectoryError,
    create_club,
    create_hospital,
    create_invite,
    deep_link,
    find_club,
    find_hospital,
    list_clubs,
    list_hospitals,
)
from models.tables import Club, Hospital
from ground.clock import Clock
from ground.config import Settings
from ground.i18n import N_, Text
from ground.parsing import ParseError, format_phone, parse_address, parse_latitude, parse_longitude, parse_place_name


class IsAdmin(Filter):
    """Lets only admins in, so anyone else's /addclub falls through to fallback.py's refusal."""

    async def __call__(self, event: TelegramObject, is_admin: bool = False) -> bool:
        return is_admin


router = RouterTemplate("admin")
router.message.filter(F.chat.type == "private", IsAdmin())
router.callback_query.filter(F.message.chat.type == "private")

INVITE_HOURS = 72  # the CLI's default: a lead or staff invite goes to one person, who uses it soon
USES_CHOICES = (1, 5, 20, 100)
MAX_TARGET_BUTTONS = 60  # there are tens of clubs and hospitals; Telegram allows 100 buttons
KINDS = ("lead", "staff", "donor")
# "20.8449, 106.6881", "20,8449; 106,6881", "20.8449 106.6881": two numbers, any common separator.
_LAT_LON = re.compile(r"\s*([+-]?\d+(?:[.,]\d+)?)\s*[,;\s]\s*([+-]?\d+(?:[.,]\d+)?)\s*")


def _refusal() -> str:
    return _("This is for administrators.")


def _skip_cancel(skip: bool = True):
    builder = InlineKeyboardBuilder()
    if skip:
        builder.button(text=_("Skip"), callback_data=AdminCb(action="skip"))
    builder.button(text=_("Cancel"), callback_data=AdminCb(action="cancel"))
    builder.adjust(2)
    return builder.as_markup()


# --- /addclub and /addhospital ------------------------------------------------------------


@router.message(command_filter("addclub", "addhospital"))
async def add_place(message: Message, command: CommandObject, state: FSMContext, session: AsyncSession,
                    settings: Settings, i18n: I18n) -> None:
    kind = "club" if command.command.lower() == "addclub" else "hospital"
    await state.clear()
    if command.args:
        await _one_line(message, kind, command.args, session, settings, i18n)
        return
    await state.set_state(AddPlace.name)
    await state.update_data(kind=kind)
    if kind == "club":
        text = _("New club. Its name?\n(Or all in one line: /addclub Name; 20.8449; 106.6881; Area)")
    else:
        text = _("New hospital. Its name?\n(Or all in one line: /addhospital Name; 20.86; 106.68; Address; Phone)")
    await message.answer(text, reply_markup=_skip_cancel(skip=False))


async def _one_line(message: Message, kind: str, args: str, session: AsyncSession, settings: Settings,
                    i18n: I18n) -> None:
    parts = [p.strip() for p in args.split(";")]
    if len(parts) < 3 or (kind == "club" and len(parts) > 4) or len(parts) > 5:
        usage = (_("Usage: /addclub Name; latitude; longitude; Area") if kind == "club"
                 else _("Usage: /addhospital Name; latitude; longitude; Address; Phone"))
        await message.answer(usage + "\n" + _("Or send the command alone to be asked step by step."))
        return
    try:
        lat, lon = parse_latitude(parts[1]), parse_longitude(parts[2])
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    extra = parts[3] if len(parts) > 3 else ""
    phone = parts[4] if len(parts) > 4 else None
    await _create(message, kind, parts[0], lat, lon, extra, phone, session, settings, i18n, message.from_user.id)


async def _create(message: Message, kind: str, name: str, lat: float, lon: float, extra: str, phone: str | None,
                  session: AsyncSession, settings: Settings, i18n: I18n, actor: int) -> bool:
    """Create the club or hospital and say so; False (with the reason said) when refused."""
    try:
        if kind == "club":
            club = await create_club(session, name, lat, lon, extra, actor=actor)
            await message.answer(_("✅ Club <b>{name}</b> added (id {id}) at {lat}, {lon}.\n"
                                   "/invite makes an invite for its lead.").format(
                name=escape(club.name), id=club.id, lat=club.lat, lon=club.lon))
        else:
            hospital = await create_hospital(session, name, lat, lon, extra, phone, settings.bot.phone_region,
                                             actor=actor)
            await message.answer(_("✅ Hospital <b>{name}</b> added (id {id}) at {lat}, {lon}{phone}.\n"
                                   "/invite makes an invite for its staff.").format(
                name=escape(hospital.name), id=hospital.id, lat=hospital.lat, lon=hospital.lon,
                phone=f", {format_phone(hospital.phone)}" if hospital.phone else ""))
    except DirectoryError as err:
        await message.answer(render(err.text, i18n))
        return False
    return True


@router.message(AddPlace.name, F.text)
async def got_name(message: Message, state: FSMContext, session: AsyncSession, i18n: I18n) -> None:
    if message.text.lstrip().startswith("/") or not message.text.strip():
        await message.answer(_("Please type the name, or /cancel."))
        return
    try:
        name = parse_place_name(message.text)
    except ParseError as err:
        await message.answer(render(err.text, i18n) + "\n" + _("Please type another name, or /cancel."))
        return
    kind = (await state.get_data()).get("kind")
    existing = await (find_club(session, name) if kind == "club" else find_hospital(session, name))
    if existing is not None:
        msgid = (N_("A club named “{name}” already exists.") if kind == "club"
                 else N_("A hospital named “{name}” already exists."))
        await message.answer(render(Text(msgid, {"name": existing.name}), i18n) + "\n"
                             + _("Please type another name, or /cancel."))
        return
    await state.update_data(name=name)
    await state.set_state(AddPlace.location)
    await message.answer(_("Where is it? Send a location pin (📎 → Location, then move the pin to the place), "
                           "or type the coordinates as “lat, lon”, e.g. 20.8449, 106.6881."),
                         reply_markup=_skip_cancel(skip=False))


@router.message(AddPlace.location, F.location | F.text)
async def got_location(message: Message, state: FSMContext, i18n: I18n) -> None:
    if message.location:
        lat, lon = message.location.latitude, message.location.longitude
    else:
        m = _LAT_LON.fullmatch(message.text)
        if m is None:
            await message.answer(_("Please send a location pin, or type the coordinates as “lat, lon”, "
                                   "e.g. 20.8449, 106.6881."))
            return
        try:
            lat, lon = parse_latitude(m.group(1)), parse_longitude(m.group(2))
        except ParseError as err:
            await message.answer(render(err.text, i18n))
            return
    await state.update_data(lat=lat, lon=lon)
    await state.set_state(AddPlace.area)
    kind = (await state.get_data()).get("kind")
    text = (_("Its area, as people say it (e.g. Lê Chân, Hải Phòng)?") if kind == "club"
            else _("Its address?"))
    await message.answer(text, reply_markup=_skip_cancel())


async def _after_area(message: Message, state: FSMContext, area: str, session: AsyncSession,
                      settings: Settings, i18n: I18n, actor: int) -> None:
    data = await state.get_data()
    if data.get("kind") == "club":
        await state.clear()
        await _create(message, "club", data["name"], data["lat"], data["lon"], area, None, session, settings,
                      i18n, actor)
        return
    await state.update_data(area=area)
    await state.set_state(AddPlace.phone)
    await message.answer(_("The phone of its blood bank or emergency desk (landlines are fine)?"),
                         reply_markup=_skip_cancel())


async def _finish_hospital(message: Message, state: FSMContext, phone: str | None, session: AsyncSession,
                           settings: Settings, i18n: I18n, actor: int) -> None:
    data = await state.get_data()
    if await _create(message, "hospital", data["name"], data["lat"], data["lon"], data.get("area", ""), phone,
                     session, settings, i18n, actor):
        await state.clear()
    else:
        await message.answer(_("Type the phone again, tap Skip, or /cancel."), reply_markup=_skip_cancel())


@router.message(AddPlace.area, F.text)
async def got_area(message: Message, state: FSMContext, session: AsyncSession, settings: Settings,
                   i18n: I18n) -> None:
    if message.text.startswith("/"):
        await message.answer(_("Please type the area, tap Skip, or /cancel."))
        return
    try:
        area = parse_address(message.text)
    except ParseError as err:
        await message.answer(render(err.text, i18n) + "\n" + _("Please type the area, tap Skip, or /cancel."))
        return
    await _after_area(message, state, area, session, settings, i18n, message.from_user.id)


@router.message(AddPlace.phone, F.text)
async def got_phone(message: Message, state: FSMContext, session: AsyncSession, settings: Settings,
                    i18n: I18n) -> None:
    if message.text.startswith("/"):
        await message.answer(_("Type the phone again, tap Skip, or /cancel."))
        return
    await _finish_hospital(message, state, message.text.strip(), session, settings, i18n, message.from_user.id)


@router.callback_query(AdminCb.filter())
async def admin_button(query: CallbackQuery, callback_data: AdminCb, state: FSMContext, is_admin: bool,
                       session: AsyncSession, settings: Settings, i18n: I18n) -> None:
    current = await state.get_state()
    if not is_admin:
        await query.answer(_refusal(), show_alert=True)
        return
    if current is None or not current.startswith(AddPlace.__name__) or callback_data.action not in ("skip",
                                                                                                      "cancel"):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await edit_markup(query.message)
    if callback_data.action == "cancel":
        await state.clear()
        await query.message.answer(_("Stopped. Nothing was saved."))
    elif current == AddPlace.area.state:
        await _after_area(query.message, state, "", session, settings, i18n, query.from_user.id)
    elif current == AddPlace.phone.state:
        await _finish_hospital(query.message, state, None, session, settings, i18n, query.from_user.id)
    else:
        await query.message.answer(_("This step cannot be skipped. Please answer it, or /cancel."))


# --- /invite ------------------------------------------------------------------------------


def _kind_label(kind: str) -> str:
    return {"lead": _("Club lead"), "staff": _("Hospital staff"), "donor": _("Donors of a club")}[kind]


@router.message(command_filter("invite"))
async def invite(message: Message, state: FSMContext) -> None:
    await state.clear()
    builder = InlineKeyboardBuilder()
    for kind in KINDS:
        builder.button(text=_kind_label(kind), callback_data=InviteCb(kind=kind))
    builder.adjust(1)
    await message.answer(_("Who is the invite for?"), reply_markup=builder.as_markup())


@router.callback_query(InviteCb.filter())
async def invite_step(query: CallbackQuery, callback_data: InviteCb, is_admin: bool, **data: Any) -> None:
    cb = callback_data
    if not is_admin:
        await query.answer(_refusal(), show_alert=True)
        return
    if cb.kind not in KINDS:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    session: AsyncSession = data["session"]
    model = Hospital if cb.kind == "staff" else Club
    if not cb.target:
        await _ask_target(query, cb, session)
        return
    target = await session.get(model, cb.target)
    if target is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    if not cb.uses:
        builder = InlineKeyboardBuilder()
        for uses in USES_CHOICES:
            builder.button(text=str(uses), callback_data=InviteCb(kind=cb.kind, target=cb.target, uses=uses))
        builder.adjust(len(USES_CHOICES))
        await query.answer()
        await edit_text(query.message,
            _("{kind} — <b>{name}</b>.\nHow many people may use it? (1 for one person)").format(
                kind=_kind_label(cb.kind), name=escape(target.name)), reply_markup=builder.as_markup())
        return
    await _make_invite(query, cb, target, session, data["clock"], data["settings"].bot.tz, data["bot"], data["i18n"])


async def _ask_target(query: CallbackQuery, cb: InviteCb, session: AsyncSession) -> None:
    targets = await (list_hospitals(session) if cb.kind == "staff" else list_clubs(session))
    await query.answer()
    if not targets:
        await edit_text(query.message, _("There is no hospital yet: /addhospital first.") if cb.kind == "staff"
                                      else _("There is no club yet: /addclub first."))
        return
    builder = InlineKeyboardBuilder()
    for target in targets[:MAX_TARGET_BUTTONS]:
        builder.button(text=target.name[:60], callback_data=InviteCb(kind=cb.kind, target=target.id))
    builder.adjust(1)
    text = _("Which hospital?") if cb.kind == "staff" else _("Which club?")
    await edit_text(query.message, f"{_kind_label(cb.kind)}\n{text}", reply_markup=builder.as_markup())


async def _make_invite(query: CallbackQuery, cb: InviteCb, target: Club | Hospital, session: AsyncSession,
                       clock: Clock, tz: ZoneInfo, bot: Bot, i18n: I18n) -> None:
    name = target.name
    try:
        made = await create_invite(
            session, cb.kind, club_id=None if cb.kind == "staff" else cb.target,
            hospital_id=cb.target if cb.kind == "staff" else None, uses=cb.uses, expires_hours=INVITE_HOURS,
            now=clock(), actor=query.from_user.id)
    except DirectoryError as err:
        await query.answer(render(err.text, i18n, html=False), show_alert=True)
        return
    me = await bot.me()
    link = deep_link(me.username or "", made.code)
    expires = made.expires_at.astimezone(tz)
    uses = _("{n} use", "{n} uses", made.max_uses).format(n=made.max_uses)
    whom = {
        "lead": _("Send it to the new lead only: whoever opens it leads the club."),
        "staff": _("Send it to the staff member only: whoever opens it can post urgent requests."),
        "donor": _("Share it with the club's donors: whoever opens it registers with the club."),
    }[cb.kind]
    await query.answer()
    await edit_text(query.message,
        _("✅ {kind} invite for <b>{name}</b>: {uses}, expires {expires}.\nCode: <code>{code}</code>\n"
          "Link: {link}\n{whom}").format(kind=_kind_label(cb.kind), name=escape(name), uses=uses,
                                         expires=f"{expires:%d/%m/%Y %H:%M}", code=made.code, link=link,
                                         whom=whom))
