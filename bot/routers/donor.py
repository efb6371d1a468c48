"""Donor self-service: /me, /pause, /resume, /donated, /mydata, /forget (DOMAIN.md §7 rights)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import F
from aiogram.filters import CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import keyboards
from bot.callbacks import BloodCb, DonorCb, ForgetCb
from bot.commands import command_filter
from bot.i18n import render
from bot.inplace import edit_markup, edit_text
from bot.routers.donor_zalo import show_zalo
from bot.routing import RouterTemplate
from bot.states import DonatedElsewhere, DonorEdit, Forget, Pause
from bot.texts import escape, explain, fmt_date, fmt_sex, fmt_type, fmt_weight
from dispatcher.candidates import donor_facts
from ground.eligibility import DonorFacts, assess, interval_conflict, next_donation_date
from dispatcher.reminders import Reminders
from models import donors
from models.directory import Roles
from models.tables import Donor
from ground.clock import Clock, local_today
from ground.config import Settings
from ground.parsing import ParseError, format_phone, parse_past_date, parse_weight, whole_number

router = RouterTemplate("donor")
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

DONOR_COMMANDS = ("me", "pause", "resume", "donated", "mydata", "forget")
PAUSE_CHOICES = (7, 14, 30, 90)
MAX_PAUSE_DAYS = 365


@router.message(command_filter(*DONOR_COMMANDS))
async def donor_command(
    message: Message, command: CommandObject, state: FSMContext, session: AsyncSession, roles: Roles, clock: Clock,
    settings: Settings, i18n: I18n, reminders: Reminders,
) -> None:
    if roles.donor_id is None:
        await message.answer(_("You are not registered as a donor yet. Send /start to register."))
        return
    await state.clear()
    donor = await session.get(Donor, roles.donor_id)
    name = command.command.lower()
    if name == "me" and (command.args or "").strip().lower() == "zalo":
        await show_zalo(message, session, donor, clock, settings)  # issue 15: link her Zalo chat
    elif name == "me":
        await show_profile(message, session, donor, clock, settings)
    elif name == "pause":
        await ask_pause(message, state)
    elif name == "resume":
        await resume(message, session, donor, clock, settings)
        reminders.poke()
    elif name == "donated":
        await state.set_state(DonatedElsewhere.kind)
        builder = InlineKeyboardBuilder()
        for kind in DONATION_KINDS:
            builder.button(text=donation_kind_name(kind), callback_data=DonorCb(action="donated_kind", value=kind))
        builder.adjust(1)
        # The kind sets the wait before the next donation (DOMAIN.md §2): 12 weeks or 2 weeks.
        await message.answer(_("Thank you for giving! What did you give?"), reply_markup=builder.as_markup())
    elif name == "mydata":
        await send_my_data(message, session, donor, i18n)
    elif name == "forget":
        await state.set_state(Forget.confirm)
        builder = InlineKeyboardBuilder()
        builder.button(text=_("🗑 Yes, delete my data"), callback_data=ForgetCb(confirm=True))
        builder.button(text=_("Keep my data"), callback_data=ForgetCb(confirm=False))
        builder.adjust(1)
        await message.answer(
            _("This deletes your profile, phone number, blood type and donation history from RedReserve, "
              "and you will no longer be called. Only anonymous counts remain. This cannot be undone."),
            reply_markup=builder.as_markup(),
        )


# --- /me ----------------------------------------------------------------------------------


def profile_text(donor: Donor, clubs: list[str], clock: Clock, settings: Settings,
                 facts: DonorFacts | None = None) -> str:
    facts = facts or DonorFacts.of(donor)
    assessment = assess(facts, local_today(clock, settings.bot.tz), settings.eligibility)
    next_date = next_donation_date(facts, settings.eligibility)
    lines = [
        f"🩸 <b>{escape(donor.full_name)}</b>",
        _("Blood type: {v}").format(v=fmt_type(donor.abo, donor.rh)),
        _("Phone: {v}").format(v=format_phone(donor.phone)),
        _("Sex: {v}").format(v=fmt_sex(donor.sex)),
        _("Date of birth: {v}").format(v=fmt_date(donor.birth_date)),
        _("Weight: {v}").format(v=fmt_weight(donor.weight_kg)),
        _("Area: {v}").format(v=escape(donor.area or "—") + (" " + _("(approximate)") if donor.location_approx else "")),
        _("Club: {v}").format(v=escape(", ".join(clubs)) if clubs else "—"),
        _("Donations recorded: {n}").format(n=donor.donation_count),
        _("Last donation: {v}").format(v=fmt_date(donor.last_donation_date) if donor.last_donation_date else _("never")),
    ]
    if next_date:
        lines.append(_("Next possible donation: {v}").format(v=fmt_date(next_date)))
    lines.append("")
    lines.append(explain(assessment, facts))
    lines.append(
        _("📣 Emergency calls: on") if donor.consent_contact_at else _("🔕 Emergency calls: off")
    )
    lines.append(
        _("🔔 Reminder when you may give again: on") if donor.remind_eligible
        else _("🔕 Reminder when you may give again: off")
    )
    if settings.zalo.enabled:  # issue 15: calls on Zalo too
        lines.append(_("💬 Zalo: /me zalo to link it and get calls there too"))
    return "\n".join(lines)


def profile_keyboard(donor: Donor):
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✏️ Blood type"), callback_data=DonorCb(action="edit_blood"))
    builder.button(text=_("✏️ Weight"), callback_data=DonorCb(action="edit_weight"))
    if donor.consent_contact_at:
        builder.button(text=_("🔕 Stop emergency calls"), callback_data=DonorCb(action="calls_off"))
    else:
        builder.button(text=_("📣 Allow emergency calls"), callback_data=DonorCb(action="calls_on"))
    if donor.remind_eligible:
        builder.button(text=_("🔕 Turn off this reminder"), callback_data=DonorCb(action="remind_off"))
    else:
        builder.button(text=_("🔔 Remind me when I may give again"), callback_data=DonorCb(action="remind_on"))
    builder.adjust(2, 1, 1)
    return builder.as_markup()


async def show_profile(message: Message, session: AsyncSession, donor: Donor, clock: Clock, settings: Settings):
    clubs = await donors.club_names(session, donor.id)
    facts = await donor_facts(session, donor, local_today(clock, settings.bot.tz))
    await message.answer(profile_text(donor, clubs, clock, settings, facts), reply_markup=profile_keyboard(donor))


async def _own_donor(query: CallbackQuery, session: AsyncSession, roles: Roles) -> Donor | None:
    donor = await session.get(Donor, roles.donor_id) if roles.donor_id else None
    if donor is None:
        await query.answer(_("You are not registered as a donor yet. Send /start to register."), show_alert=True)
    return donor


@router.callback_query(DonorCb.filter(F.action.in_({"calls_on", "calls_off", "remind_on", "remind_off"})))
async def toggle_contact(
    query: CallbackQuery, callback_data: DonorCb, session: AsyncSession, roles: Roles, clock: Clock,
    settings: Settings, reminders: Reminders,
) -> None:
    donor = await _own_donor(query, session, roles)
    if donor is None:
        return
    if callback_data.action in ("calls_on", "calls_off"):
        await donors.set_contact_consent(session, donor, callback_data.action == "calls_on", now=clock(),
                                         policy_version=settings.bot.policy_version)
    else:
        await donors.set_eligible_reminder(session, donor, callback_data.action == "remind_on", now=clock())
    reminders.poke()  # consent or the reminder switched on may bring a reminder forward
    await query.answer(_("Saved."))
    clubs = await donors.club_names(session, donor.id)
    facts = await donor_facts(session, donor, local_today(clock, settings.bot.tz))
    await edit_text(query.message, profile_text(donor, clubs, clock, settings, facts),
                    reply_markup=profile_keyboard(donor))


@router.callback_query(DonorCb.filter(F.action == "edit_blood"))
async def edit_blood(query: CallbackQuery, state: FSMContext, session: AsyncSession, roles: Roles) -> None:
    if await _own_donor(query, session, roles) is None:
        return
    await state.set_state(DonorEdit.blood_type)
    await query.answer()
    await query.message.answer(_("Your blood type:"), reply_markup=keyboards.blood_type_keyboard())


@router.callback_query(DonorEdit.blood_type, BloodCb.filter())
async def got_new_blood(
    query: CallbackQuery, callback_data: BloodCb, state: FSMContext, session: AsyncSession, roles: Roles,
    clock: Clock,
) -> None:
    donor = await _own_donor(query, session, roles)
    if donor is None:
        return
    if callback_data.value not in keyboards.BLOOD_VALUES | {"unknown"}:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    abo, rh = keyboards.split_blood(callback_data.value)
    await donors.update_fields(session, donor, now=clock(), abo=abo, rh=rh)
    await state.clear()
    await query.answer(_("Saved."))
    await edit_text(query.message, _("Your blood type:") + " " + fmt_type(abo, rh))


@router.callback_query(DonorCb.filter(F.action == "edit_weight"))
async def edit_weight(query: CallbackQuery, state: FSMContext, session: AsyncSession, roles: Roles) -> None:
    if await _own_donor(query, session, roles) is None:
        return
    await state.set_state(DonorEdit.weight)
    await query.answer()
    await query.message.answer(_("Your weight in kg (e.g. 55):"))


@router.message(DonorEdit.weight, F.text)
async def got_new_weight(
    message: Message, state: FSMContext, session: AsyncSession, roles: Roles, clock: Clock, i18n: I18n
) -> None:
    donor = await session.get(Donor, roles.donor_id) if roles.donor_id else None
    if donor is None:
        await state.clear()
        await message.answer(_("You are not registered as a donor yet. Send /start to register."))
        return
    try:
        weight = parse_weight(message.text)
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    await donors.update_fields(session, donor, now=clock(), weight_kg=weight)
    await state.clear()
    await message.answer(_("Saved. /me shows your profile."))


# --- /pause and /resume -------------------------------------------------------------------


async def ask_pause(message: Message, state: FSMContext) -> None:
    await state.set_state(Pause.days)
    builder = InlineKeyboardBuilder()
    for days in PAUSE_CHOICES:
        builder.button(text=_("{n} day", "{n} days", days).format(n=days), callback_data=DonorCb(action="pause", value=str(days)))
    builder.adjust(4)
    await message.answer(
        _("For how many days should we not call you? Tap, or type a number of days (1–{max}).").format(
            max=MAX_PAUSE_DAYS),
        reply_markup=builder.as_markup(),
    )


@router.callback_query(Pause.days, DonorCb.filter(F.action == "pause"))
async def pause_button(
    query: CallbackQuery, callback_data: DonorCb, state: FSMContext, session: AsyncSession, roles: Roles,
    clock: Clock, settings: Settings,
) -> None:
    donor = await _own_donor(query, session, roles)
    if donor is None:
        return
    days = whole_number(callback_data.value)
    if days not in PAUSE_CHOICES:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    text = await pause_for(session, donor, days, state, clock, settings.bot.tz)
    await edit_text(query.message, text)


@router.message(Pause.days, F.text)
async def pause_typed(message: Message, state: FSMContext, session: AsyncSession, roles: Roles, clock: Clock,
                      settings: Settings) -> None:
    days = whole_number(message.text, low=1, high=MAX_PAUSE_DAYS)
    if days is None:
        await message.answer(_("Please type a number of days from 1 to {max}, or /cancel.").format(max=MAX_PAUSE_DAYS))
        return
    donor = await session.get(Donor, roles.donor_id)
    await message.answer(await pause_for(session, donor, days, state, clock, settings.bot.tz))


async def pause_for(session: AsyncSession, donor: Donor, days: int, state: FSMContext, clock: Clock,
                    tz: ZoneInfo) -> str:
    until = local_today(clock, tz) + timedelta(days=days)
    await donors.update_fields(session, donor, now=clock(), status="paused", status_until=until)
    await state.clear()
    return _("⏸ Paused. We will not call you until {date}. /resume to come back earlier.").format(date=fmt_date(until))


async def resume(message: Message, session: AsyncSession, donor: Donor, clock: Clock, settings: Settings) -> None:
    if donor.status == "deferred" or donor.status == "retired":
        await message.answer(_("Your status was set by your club lead. Please ask them to change it."))
        return
    await donors.update_fields(session, donor, now=clock(), status="active", status_until=None)
    facts = await donor_facts(session, donor, local_today(clock, settings.bot.tz))
    await message.answer(
        _("▶️ Welcome back! You can be called again.") + "\n"
        + explain(assess(facts, local_today(clock, settings.bot.tz), settings.eligibility), facts)
    )


# --- /donated -----------------------------------------------------------------------------


DONATION_KINDS = ("whole_blood", "red_cells", "platelets", "plasma")


def donation_kind_name(kind: str) -> str:
    return {"whole_blood": _("🩸 Whole blood"), "red_cells": _("🔴 Red cells (apheresis)"),
            "platelets": _("🟡 Platelets (apheresis)"), "plasma": _("🟠 Plasma (apheresis)")}[kind]


@router.callback_query(DonatedElsewhere.kind, DonorCb.filter(F.action == "donated_kind"))
async def donated_kind(query: CallbackQuery, callback_data: DonorCb, state: FSMContext, session: AsyncSession,
                       roles: Roles) -> None:
    if await _own_donor(query, session, roles) is None:
        return
    if callback_data.value not in DONATION_KINDS:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await state.update_data(kind=callback_data.value)
    await state.set_state(DonatedElsewhere.date)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Today"), callback_data=DonorCb(action="donated_today"))
    # Through bot.inplace: the message with the buttons may be one Telegram no longer shows the bot.
    await edit_text(query.message, donation_kind_name(callback_data.value) + "\n" + _("On which date (DD/MM/YYYY)?"),
                    reply_markup=builder.as_markup())


@router.message(DonatedElsewhere.kind, F.text, ~F.text.startswith("/"))
async def donated_kind_typed(message: Message) -> None:
    await message.answer(_("Please choose what you gave with the buttons above, or /cancel."))


@router.callback_query(DonatedElsewhere.date, DonorCb.filter(F.action == "donated_today"))
async def donated_today(query: CallbackQuery, state: FSMContext, session: AsyncSession, roles: Roles,
                        clock: Clock, settings: Settings, reminders: Reminders) -> None:
    donor = await _own_donor(query, session, roles)
    if donor is None:
        return
    await query.answer()
    if await record_elsewhere(query.message, session, donor, local_today(clock, settings.bot.tz), state, clock, settings):
        await edit_markup(query.message)
    reminders.poke()


@router.message(DonatedElsewhere.date, F.text, ~F.text.startswith("/"))
async def donated_on(message: Message, state: FSMContext, session: AsyncSession, roles: Roles, clock: Clock,
                     settings: Settings, i18n: I18n, reminders: Reminders) -> None:
    try:
        when = parse_past_date(message.text, today=local_today(clock, settings.bot.tz))
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    donor = await session.get(Donor, roles.donor_id)
    await record_elsewhere(message, session, donor, when, state, clock, settings)
    reminders.poke()  # a donation dated in the past may bring the "donate again" day forward


async def record_elsewhere(message, session, donor, when, state, clock, settings) -> bool:
    """Record it with its kind, whose interval applies from now on; False when refused (nothing written)."""
    kind = (await state.get_data()).get("kind") or "whole_blood"
    if when == donor.last_donation_date:
        await state.clear()
        await message.answer(_("A donation on {date} is already recorded. Thank you!").format(date=fmt_date(when)))
        return True
    first = interval_conflict(donor.last_donation_date, donor.last_donation_component, when, kind,
                              settings.eligibility)
    if first is not None:
        # Either the date is mistyped or the record is wrong: ask, and keep the record as it is.
        text = _("Not recorded: your last recorded donation was on {last}, and the rest after it lasts until "
                 "{first}. Please check the date and type it again, or /cancel. If your record is wrong, your "
                 "club lead can correct it.")
        await message.answer(text.format(last=fmt_date(donor.last_donation_date), first=fmt_date(first)))
        return False
    recorded = await donors.record_donation(session, donor, when, now=clock(), recorded_by=donor.telegram_id,
                                            component=kind)
    await state.clear()
    if not recorded:
        await message.answer(_("A donation on {date} is already recorded. Thank you!").format(date=fmt_date(when)))
        return True
    next_date = next_donation_date(DonorFacts.of(donor), settings.eligibility)
    await message.answer(
        _("🩸 Recorded — thank you! That makes {n} donation. We will not call you before {date}.",
          "🩸 Recorded — thank you! That makes {n} donations. We will not call you before {date}.",
          donor.donation_count).format(
            n=donor.donation_count, date=fmt_date(next_date))
    )
    return True


# --- /mydata and /forget ------------------------------------------------------------------


async def send_my_data(message: Message, session: AsyncSession, donor: Donor, i18n: I18n) -> None:
    payload = await donors.export_personal_data(session, donor)
    await message.answer_document(
        BufferedInputFile(payload, filename="redreserve-my-data.json"),
        caption=_("Everything RedReserve stores about you."),
    )


@router.callback_query(Forget.confirm, ForgetCb.filter())
async def forget_answer(
    query: CallbackQuery, callback_data: ForgetCb, state: FSMContext, session: AsyncSession, roles: Roles,
    clock: Clock,
) -> None:
    await state.clear()
    if not callback_data.confirm:
        await query.answer()
        await edit_text(query.message, _("Nothing was deleted. Thank you for staying with us."))
        return
    if roles.donor_id is None:
        await query.answer()
        await edit_text(query.message, _("There is no donor profile to delete."))
        return
    await donors.forget(session, roles.donor_id, now=clock(), actor=query.from_user.id)
    await query.answer()
    await edit_text(query.message,
        _("Your data has been deleted. Thank you for everything you have done. "
          "If you ever want to come back, send /start.")
    )
