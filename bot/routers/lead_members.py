"""Club leads: a member's card, opened from /find, and the edits and removal made from it.

Every press names the club and the member; before anything is read or changed the
presser must lead that club and the member must be on its roster (lead_common.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import FindCb, MemberCb
from bot.i18n import render
from bot.keyboards import BLOOD_TYPES
from bot.routers.lead_common import (
    BLOOD_VALUES,
    LeadCtx,
    club_name,
    edit,
    expired,
    lead_ctx,
    lead_router,
    leads,
    refuse,
    split_blood,
)
from bot.routers.donor_zalo import channels_line, lead_code_text
from bot.routers.lead_roster import find_position, list_text
from bot.states import MemberEdit
from bot.texts import DEFERRAL_LABELS, escape, explain, fmt_date, fmt_sex, fmt_type, fmt_weight
from dispatcher.candidates import donor_facts
from ground.eligibility import DEFERRAL_DAYS, DonorFacts, assess
from dispatcher.reminders import Reminders
from models import members
from models.directory import Roles
from models.tables import Donor, DonorStatus
from ground.clock import Clock, local_today
from ground.config import Settings
from ground.parsing import (
    ParseError,
    format_phone,
    parse_birth_date,
    parse_future_date,
    parse_name,
    parse_past_date,
    parse_phone,
    parse_weight,
)

router = lead_router("lead_members")

# Deferrals by their coarse category only, never a diagnosis (DOMAIN.md §2, §7). The
# days give the usual end date, offered as a button; the lead may type another. The waits
# live with the rule (ground.eligibility), the labels in bot.texts (the desk uses them too).
DEFERRAL_CATEGORIES: tuple[tuple[str, int | None, str], ...] = tuple(
    (code, DEFERRAL_DAYS[code], DEFERRAL_LABELS[code]) for code in ("12m", "6m", "4w", "7d", "pregnancy", "other"))
_DEFERRAL = {code: (days, label) for code, days, label in DEFERRAL_CATEGORIES}

EDIT_FIELDS = ("name", "phone", "blood", "sex", "birth", "weight", "last", "status")
TYPED_FIELDS = ("name", "phone", "birth", "weight", "last", "paused", "deferred")


# --- the card ---------------------------------------------------------------------------


def status_text(donor: Donor) -> str:
    if donor.status == DonorStatus.paused.value:
        return _("paused until {date}").format(date=fmt_date(donor.status_until))
    if donor.status == DonorStatus.deferred.value:
        text = _("deferred until {date}").format(date=fmt_date(donor.status_until))
        category = _DEFERRAL.get(donor.deferral_reason or "")
        return text + (f" ({_(category[1])})" if category else "")
    if donor.status == DonorStatus.retired.value:
        return _("retired")
    return _("active")


def card_text(donor: Donor, today: date, settings: Settings, facts: DonorFacts | None = None) -> str:
    facts = facts or DonorFacts.of(donor)
    details = [fmt_sex(donor.sex),
               _("born {date}").format(date=fmt_date(donor.birth_date)),
               fmt_weight(donor.weight_kg)]
    lines = [
        f"👤 <b>{escape(donor.full_name)}</b>",
        f"📞 {format_phone(donor.phone)}",
        _("Blood type: {v}").format(v=fmt_type(donor.abo, donor.rh)),
        " · ".join(details),
        _("Status: {v}").format(v=status_text(donor)),
        explain(assess(facts, today, settings.eligibility), facts),
        _("Last donation: {v}").format(v=fmt_date(donor.last_donation_date) if donor.last_donation_date
                                       else _("never")),
        _("📱 Linked to Telegram") if donor.telegram_id is not None
        else _("📵 Not on Telegram yet: share /invitelink with them so they can be called."),
    ]
    return "\n".join(lines)


def card_markup(club_id: int, donor_id: int, back: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for action, label in (("edit", _("✏️ Edit")), ("remove", _("🗑 Remove")), ("back", _("◀ Back"))):
        builder.button(text=label, callback_data=MemberCb(action=action, club_id=club_id, donor_id=donor_id,
                                                          back=back))
    builder.adjust(2, 1)
    return builder.as_markup()


@router.callback_query(MemberCb.filter())
async def member_action(query: CallbackQuery, callback_data: MemberCb, roles: Roles, **data: Any) -> None:
    ctx = lead_ctx(data, query.from_user.id)
    cb = callback_data
    if not leads(roles, cb.club_id):
        await refuse(query, ctx.session, cb.action, cb.club_id, cb.donor_id)
        return
    donor = await members.roster_member(ctx.session, cb.club_id, cb.donor_id)
    if donor is None:  # removed meanwhile by another lead, or a forged id from another club
        await refuse(query, ctx.session, cb.action, cb.club_id, cb.donor_id,
                     _("This member is not on your club's roster."))
        return
    handler = _MEMBER_ACTIONS.get(cb.action)
    if handler is None:
        await expired(query)
        return
    if await ctx.state.get_state() == MemberEdit.value.state:
        await ctx.state.clear()  # any button on the card leaves a half-typed edit
    await handler(query, cb, donor, ctx)


async def _open(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    await query.answer()
    text = card_text(donor, ctx.today, ctx.settings, await donor_facts(ctx.session, donor, ctx.today))
    markup = card_markup(cb.club_id, donor.id, cb.back)
    if ctx.settings.zalo.enabled:  # issue 15: her channels, and a code to link her Zalo
        text += "\n" + await channels_line(ctx.session, donor)
        markup.inline_keyboard.insert(0, [InlineKeyboardButton(text=_("🔗 Zalo code"),
                                                               callback_data=_member_cb(cb, "zalo").pack())])
    await edit(query.message, text, markup)


async def _zalo_code(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    if not ctx.settings.zalo.enabled:
        await expired(query)
        return
    await query.answer()
    builder = InlineKeyboardBuilder()
    _back_to_card(builder, cb)
    await edit(query.message, await lead_code_text(ctx.session, donor, query.from_user.id, ctx.clock, ctx.settings),
               builder.as_markup())


async def _back(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    await query.answer()
    await edit(query.message, *await list_text(ctx, cb.club_id, cb.back))


def _member_cb(cb: MemberCb, action: str, value: str = "") -> MemberCb:
    return MemberCb(action=action, club_id=cb.club_id, donor_id=cb.donor_id, value=value, back=cb.back)


def _back_to_card(builder: InlineKeyboardBuilder, cb: MemberCb) -> None:
    builder.button(text=_("◀ Back"), callback_data=_member_cb(cb, "open"))


# --- editing ----------------------------------------------------------------------------


def _field_label(field: str) -> str:
    return {
        "name": _("Name"), "phone": _("Phone"), "blood": _("Blood type"), "sex": _("Sex"),
        "birth": _("Birth date"), "weight": _("Weight"), "last": _("Last donation"), "status": _("Status"),
    }[field]


def _prompt(field: str) -> str:
    return {
        "name": _("Type the full name, as on the ID card:"),
        "phone": _("Type the mobile number (e.g. 0912 345 678):"),
        "birth": _("Type the date of birth (DD/MM/YYYY) or the birth year:"),
        "weight": _("Type the weight in kg (e.g. 55):"),
        "last": _("Type the date of the last donation (DD/MM/YYYY):"),
        "paused": _("Paused until which date (DD/MM/YYYY)? From that day they may be called again."),
        "deferred": _("Deferred until which date (DD/MM/YYYY)? From that day they may be called again."),
    }[field]


async def _choose_field(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    await query.answer()
    builder = InlineKeyboardBuilder()
    for field in EDIT_FIELDS:
        builder.button(text=_field_label(field), callback_data=_member_cb(cb, "field", field))
    _back_to_card(builder, cb)
    builder.adjust(2, 2, 2, 2, 1)
    await edit(query.message, _("What should change for <b>{name}</b>?").format(name=escape(donor.full_name)),
               builder.as_markup())


async def _field(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    field = cb.value
    builder = InlineKeyboardBuilder()
    if field == "blood":
        for abo, rh in BLOOD_TYPES:
            builder.button(text=fmt_type(abo, rh), callback_data=_member_cb(cb, "blood", f"{abo}{rh}"))
        builder.button(text=_("Unknown"), callback_data=_member_cb(cb, "blood", "unknown"))
        _back_to_card(builder, cb)
        builder.adjust(4, 4, 1, 1)
        text = _("Blood type of <b>{name}</b>:")
    elif field == "sex":
        builder.button(text=_("Male"), callback_data=_member_cb(cb, "sex", "M"))
        builder.button(text=_("Female"), callback_data=_member_cb(cb, "sex", "F"))
        _back_to_card(builder, cb)
        builder.adjust(2, 1)
        text = _("Sex of <b>{name}</b>:")
    elif field == "status":
        for value, label in (("active", _("Active")), ("paused", _("Paused until…")),
                             ("deferred", _("Deferred until…")), ("retired", _("Retired"))):
            builder.button(text=label, callback_data=_member_cb(cb, "status", value))
        _back_to_card(builder, cb)
        builder.adjust(2, 2, 1)
        text = _("Status of <b>{name}</b>:")
    elif field in ("name", "phone", "birth", "weight", "last"):
        await _ask_typed(query, cb, donor, ctx, field)
        return
    else:
        await expired(query)
        return
    await query.answer()
    await edit(query.message, text.format(name=escape(donor.full_name)), builder.as_markup())


async def _ask_typed(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx, field: str,
                     category: str | None = None) -> None:
    await query.answer()
    await ctx.state.set_state(MemberEdit.value)
    await ctx.state.update_data(club_id=cb.club_id, donor_id=donor.id, field=field, back=cb.back,
                                category=category)
    builder = InlineKeyboardBuilder()
    if field == "last":
        builder.button(text=_("Never gave blood"), callback_data=_member_cb(cb, "never"))
    if category and _DEFERRAL[category][0]:
        until = ctx.today + timedelta(days=_DEFERRAL[category][0])
        builder.button(text=_("Until {date}").format(date=fmt_date(until)), callback_data=_member_cb(
            cb, "deferdef", category))
    _back_to_card(builder, cb)
    builder.adjust(1)
    await edit(query.message, f"<b>{escape(donor.full_name)}</b>\n" + _prompt(field), builder.as_markup())


async def _save(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx, field: str,
                **changes: Any) -> None:
    await members.edit_member(ctx.session, donor, cb.club_id, field, actor=ctx.actor, now=ctx.clock(), **changes)
    if ctx.reminders is not None:
        ctx.reminders.poke()  # a changed status or donation date may bring the "donate again" day forward
    await query.answer(_("Saved."))
    await edit(query.message, card_text(donor, ctx.today, ctx.settings, await donor_facts(ctx.session, donor, ctx.today)),
               card_markup(cb.club_id, donor.id, cb.back))


async def _set_blood(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    if cb.value not in BLOOD_VALUES | {"unknown"}:
        await expired(query)
        return
    abo, rh = split_blood(cb.value)
    await _save(query, cb, donor, ctx, "blood_type", abo=abo, rh=rh)


async def _set_sex(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    if cb.value not in ("M", "F"):
        await expired(query)
        return
    await _save(query, cb, donor, ctx, "sex", sex=cb.value)


async def _set_never(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    await _save(query, cb, donor, ctx, "last_donation", last_donation_date=None, last_donation_component=None)


async def _set_status(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    if cb.value in ("active", "retired"):
        await _save(query, cb, donor, ctx, "status", status=cb.value, status_until=None, deferral_reason=None)
    elif cb.value == "paused":
        await _ask_typed(query, cb, donor, ctx, "paused")
    elif cb.value == "deferred":
        await query.answer()
        builder = InlineKeyboardBuilder()
        for code, _days, label in DEFERRAL_CATEGORIES:
            builder.button(text=_(label), callback_data=_member_cb(cb, "defer", code))
        _back_to_card(builder, cb)
        builder.adjust(1)
        await edit(query.message, _("Why is <b>{name}</b> deferred? Only a broad category is kept, "
                                    "never the diagnosis.").format(name=escape(donor.full_name)),
                   builder.as_markup())
    else:
        await expired(query)


async def _defer(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    if cb.value not in _DEFERRAL:
        await expired(query)
        return
    await _ask_typed(query, cb, donor, ctx, "deferred", category=cb.value)


async def _defer_default(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    days = _DEFERRAL.get(cb.value, (None, ""))[0]
    if days is None:
        await expired(query)
        return
    await _save(query, cb, donor, ctx, "status", status="deferred", status_until=ctx.today + timedelta(days=days),
                deferral_reason=cb.value)


def parse_field(field: str, text: str, today: date, region: str) -> dict[str, Any]:
    """A typed value → the Donor columns it sets, through the project's one parser per kind."""
    if field == "name":
        return {"full_name": parse_name(text)}
    if field == "phone":
        return {"phone": parse_phone(text, region)}
    if field == "birth":
        return {"birth_date": parse_birth_date(text, today=today)}
    if field == "weight":
        return {"weight_kg": parse_weight(text)}
    if field == "last":
        # A corrected date, not a recorded donation: no kind known, so the longer whole-blood wait.
        return {"last_donation_date": parse_past_date(text, today=today), "last_donation_component": None}
    if field in ("paused", "deferred"):
        return {"status": field, "status_until": parse_future_date(text, today=today)}
    raise ValueError(field)


@router.message(MemberEdit.value, F.text)
async def got_member_value(message: Message, state: FSMContext, session: AsyncSession, roles: Roles,
                           clock: Clock, settings: Settings, i18n: I18n, reminders: Reminders) -> None:
    data = await state.get_data()
    club_id, field = data.get("club_id"), data.get("field")
    donor = await members.roster_member(session, club_id, data.get("donor_id", 0)) if leads(roles, club_id) else None
    if donor is None or field not in TYPED_FIELDS:
        await state.clear()
        await message.answer(_("This member is no longer on your roster."))
        return
    today = local_today(clock, settings.bot.tz)
    try:
        changes = parse_field(field, message.text, today, settings.bot.phone_region)
    except ParseError as err:
        await message.answer(render(err.text, i18n) + "\n" + _prompt(field))
        return
    if field == "deferred":
        changes["deferral_reason"] = data.get("category")
    elif field == "paused":
        changes["deferral_reason"] = None
    if "phone" in changes and changes["phone"] != donor.phone:
        if await members.donor_id_by_phone(session, changes["phone"]) is not None:
            await message.answer(_("Another donor already has the number {phone}.").format(phone=format_phone(changes["phone"]))
                                 + "\n" + _prompt(field))
            return
    try:
        await members.edit_member(session, donor, club_id, field, actor=message.from_user.id, now=clock(),
                                  **changes)
    except IntegrityError:
        await session.rollback()
        await message.answer(_("Another donor already has the number {phone}.").format(phone=format_phone(changes["phone"])))
        return
    reminders.poke()
    await state.clear()
    await message.answer(card_text(donor, today, settings, await donor_facts(session, donor, today)),
                         reply_markup=card_markup(club_id, donor.id,
                                                                                   data.get("back", "")))


# --- removing ---------------------------------------------------------------------------


async def _ask_remove(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    await query.answer()
    if donor.telegram_id is not None:
        after = _("They keep their own RedReserve account; only their place on this roster goes.")
    elif await members.in_another_club(ctx.session, donor.id, cb.club_id):
        after = _("They stay on the roster of the other club they belong to.")
    else:
        after = _("They are not on Telegram and in no other club, so their record is deleted. "
                  "This cannot be undone.")
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🗑 Yes, remove"), callback_data=_member_cb(cb, "remove_yes"))
    builder.button(text=_("Keep"), callback_data=_member_cb(cb, "open"))
    builder.adjust(2)
    await edit(query.message, _("Remove <b>{name}</b> from <b>{club}</b>?").format(
        name=escape(donor.full_name), club=escape(await club_name(ctx.session, cb.club_id))) + "\n" + after,
        builder.as_markup())


async def _remove(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: LeadCtx) -> None:
    name = donor.full_name
    deleted = await members.remove_member(ctx.session, cb.club_id, donor.id, actor=ctx.actor, now=ctx.clock())
    await query.answer(_("Removed."))
    text = _("<b>{name}</b> was removed from the roster.").format(name=escape(name))
    if deleted:
        text += "\n" + _("Their record was deleted.")
    markup = None
    if (position := find_position(cb.back)) is not None:
        builder = InlineKeyboardBuilder()
        builder.button(text=_("◀ Back"), callback_data=FindCb(club_id=cb.club_id, blood=position[0],
                                                              page=position[1]))
        markup = builder.as_markup()
    await edit(query.message, text, markup)


_MEMBER_ACTIONS = {
    "open": _open, "back": _back, "edit": _choose_field, "field": _field, "blood": _set_blood,
    "sex": _set_sex, "never": _set_never, "status": _set_status, "defer": _defer, "deferdef": _defer_default,
    "remove": _ask_remove, "remove_yes": _remove, "zalo": _zalo_code,
}
