"""Donor registration: language → consent → phone → name → blood type → sex → birth date →
weight → location → last donation → club → summary.

Nothing is written to the donor tables until the summary is confirmed: the answers
live in the FSM (stored in the database, so a restart does not lose them), and the
final write is one transaction.
"""

from __future__ import annotations

from datetime import date

from aiogram import Bot, F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import keyboards
from bot.callbacks import BloodCb, ClubCb, ConsentCb, EditCb, RegCb, SexCb
from bot.commands import set_user_commands
from bot.i18n import render
from bot.inplace import edit_markup, edit_text
from bot.routing import RouterTemplate
from bot.states import Registration
from bot.texts import escape, explain, fmt_date, fmt_number, fmt_sex, fmt_type, fmt_weight
from ground.eligibility import DonorFacts, assess, assess_age, min_weight
from dispatcher.reminders import Reminders
from models import members
from models.audit import audit
from models.directory import list_clubs, nearest_clubs, roles_of
from models.donors import consented_in_bot
from models.geo import placed
from models.tables import Club, ClubMembership, Donor, TelegramUser
from ground.clock import Clock, local_today
from ground.config import Settings
from ground.parsing import (
    ParseError,
    format_phone,
    parse_birth_date,
    parse_past_date,
    parse_phone,
    parse_weight,
)

router = RouterTemplate("registration")
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

MAX_CLUB_CHOICES = 8


async def begin(message: Message, state: FSMContext, *, club_id: int | None = None) -> None:
    """Entry point used by /start: the language question comes first, before any data."""
    await state.clear()
    await state.set_state(Registration.language)
    await state.update_data(invite_club_id=club_id, club_id=club_id)
    await message.answer(
        "🩸 RedReserve\nChọn ngôn ngữ / Choose your language:",
        reply_markup=keyboards.language_keyboard(),
    )


# --- language and consent -------------------------------------------------------------------


async def language_chosen(query: CallbackQuery, state: FSMContext, code: str, i18n: I18n) -> None:
    """Registration's first step is done (common.set_language stored the choice): ask consent, in it."""
    await state.update_data(locale=code, consent={})
    await state.set_state(Registration.consent)
    with i18n.use_locale(code):
        await edit_text(query.message, consent_text(), reply_markup=keyboards.consent_keyboard({}))
    await query.answer()


def consent_text() -> str:
    return _(
        "Before we start, please choose what you agree to. Tap to tick:\n\n"
        "• <b>Keep my profile</b>: your name, phone, blood type and donation dates are stored "
        "so your club can reach you. Required.\n"
        "• <b>Contact me in emergencies</b>: the bot may message you when a hospital nearby "
        "urgently needs your blood type.\n"
        "• <b>Use my location</b>: we use your location pin to find the nearest hospital. "
        "Without it, you can type your area instead.\n\n"
        "You can see, pause or delete your data at any time (/mydata, /pause, /forget)."
    )


@router.callback_query(Registration.consent, ConsentCb.filter())
async def toggled_consent(
    query: CallbackQuery, callback_data: ConsentCb, state: FSMContext, clock: Clock, settings: Settings
) -> None:
    data = await state.get_data()
    given: dict = dict(data.get("consent") or {})
    item = callback_data.item
    if item in ("profile", "contact", "location"):
        # A timestamp, not a boolean: DOMAIN.md §7 asks for when and under which policy.
        given[item] = None if given.get(item) else clock().isoformat()
        await state.update_data(consent=given, policy_version=settings.bot.policy_version)
        await edit_markup(query.message, keyboards.consent_keyboard({k: bool(v) for k, v in given.items()}))
        await query.answer()
        return
    if item != "done":
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    if not given.get("profile"):
        await query.answer(
            _("We can only register you if we may keep your profile. Tick “Keep my profile”, or /cancel."),
            show_alert=True,
        )
        return
    await query.answer()
    await edit_markup(query.message)
    await ask_phone(query.message, state)


# --- phone and name -------------------------------------------------------------------------


async def ask_phone(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.phone)
    await message.answer(
        _("Please share your phone number with the button below. Your club uses it to reach you."),
        reply_markup=keyboards.contact_keyboard(),
    )


@router.message(Registration.phone, F.contact)
async def got_contact(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings, i18n: I18n
) -> None:
    contact = message.contact
    if contact.user_id != message.from_user.id:
        await message.answer(
            _("That is someone else's contact card. Please share your own number with the button below."),
            reply_markup=keyboards.contact_keyboard(),
        )
        return
    try:
        phone = parse_phone(contact.phone_number, settings.bot.phone_region)
    except ParseError as err:
        await message.answer(render(err.text, i18n), reply_markup=keyboards.contact_keyboard())
        return
    existing = (await session.exec(select(Donor).where(Donor.phone == phone))).first()
    if existing is not None and linked_elsewhere(existing, message.from_user.id):
        await message.answer(
            _("This number is already registered by another Telegram account. "
              "Please ask your club lead to help."),
            reply_markup=ReplyKeyboardRemove(),
        )
        await state.clear()
        return
    suggested = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    await state.update_data(phone=phone, suggested_name=suggested)
    if existing is not None:
        await prefill_from_roster(existing, session, state)
        await message.answer(
            _("We found you on your club's roster. Please check your details."),
            reply_markup=ReplyKeyboardRemove(),
        )
        await show_summary(message, state, session)
        return
    await message.answer(_("Thank you."), reply_markup=ReplyKeyboardRemove())
    await ask_name(message, state)


@router.message(Registration.phone)
async def phone_not_contact(message: Message) -> None:
    await message.answer(
        _("Please use the “Share my phone number” button below, so the number is surely yours."),
        reply_markup=keyboards.contact_keyboard(),
    )


def linked_elsewhere(donor: Donor, telegram_id: int) -> bool:
    """Another account registered with this phone. A link the donor never confirmed in the bot
    (an old roster file's Telegram id) does not count: the account that shares the phone is hers."""
    return donor.telegram_id not in (None, telegram_id) and (
        donor.consent_profile_at is not None or donor.consent_contact_at is not None)


async def prefill_from_roster(donor: Donor, session: AsyncSession, state: FSMContext) -> None:
    membership = (
        await session.exec(
            select(ClubMembership).where(ClubMembership.donor_id == donor.id, ClubMembership.role == "member")
        )
    ).first()
    data = await state.get_data()
    await state.update_data(
        linked_donor_id=donor.id,
        name=donor.full_name,
        blood=f"{donor.abo}{donor.rh}" if donor.abo and donor.rh else "unknown",
        sex=donor.sex,
        birth_date=donor.birth_date.isoformat() if donor.birth_date else None,
        weight=donor.weight_kg,
        lat=None if donor.location_approx else donor.lat,
        lon=None if donor.location_approx else donor.lon,
        area=donor.area,
        last_donation=donor.last_donation_date.isoformat() if donor.last_donation_date else None,
        last_donation_set=True,
        club_id=data.get("invite_club_id") or (membership.club_id if membership else None),
    )


async def ask_name(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.name)
    data = await state.get_data()
    kb = None
    if data.get("suggested_name"):
        builder = InlineKeyboardBuilder()
        builder.button(text=data["suggested_name"][:60], callback_data=RegCb(action="use_name"))
        kb = builder.as_markup()
    await message.answer(_("Your full name, as on your ID card:"), reply_markup=kb)


@router.callback_query(Registration.name, RegCb.filter(F.action == "use_name"))
async def used_suggested_name(query: CallbackQuery, state: FSMContext, session: AsyncSession) -> None:
    data = await state.get_data()
    await query.answer()
    await edit_markup(query.message)
    await state.update_data(name=data.get("suggested_name", "").strip())
    await next_step(query.message, state, session)


@router.message(Registration.name, F.text)
async def got_name(message: Message, state: FSMContext, session: AsyncSession) -> None:
    name = " ".join(message.text.split())
    if not (2 <= len(name) <= 100) or name.startswith("/") or not any(c.isalpha() for c in name):
        await message.answer(_("Please type your full name (2 to 100 letters), e.g. Nguyễn Thị Lan."))
        return
    await state.update_data(name=name)
    await next_step(message, state, session)


# --- blood type, sex, birth date, weight ---------------------------------------------------


async def ask_blood_type(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.blood_type)
    await message.answer(_("Your blood type:"), reply_markup=keyboards.blood_type_keyboard())


@router.callback_query(Registration.blood_type, BloodCb.filter())
async def got_blood_type(
    query: CallbackQuery, callback_data: BloodCb, state: FSMContext, session: AsyncSession
) -> None:
    if callback_data.value not in keyboards.BLOOD_VALUES | {"unknown"}:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await edit_text(query.message, _("Your blood type:") + " " + fmt_blood(callback_data.value))
    await state.update_data(blood=callback_data.value)
    if callback_data.value == "unknown":
        await query.message.answer(
            _("No problem — we keep your registration, but we can only call you once we know your type. "
              "You will find it on your blood donation certificate, or the staff can tell you at your next "
              "donation. Then set it with /me.")
        )
    await next_step(query.message, state, session)


def fmt_blood(value: str | None) -> str:
    return fmt_type(*keyboards.split_blood(value))  # fmt_type says "unknown" for (None, None)


async def ask_sex(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.sex)
    await message.answer(_("You are:"), reply_markup=keyboards.sex_keyboard())


@router.callback_query(Registration.sex, SexCb.filter())
async def got_sex(query: CallbackQuery, callback_data: SexCb, state: FSMContext, session: AsyncSession) -> None:
    if callback_data.value not in ("M", "F"):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await edit_text(query.message, _("You are:") + " " + fmt_sex(callback_data.value))
    await state.update_data(sex=callback_data.value)
    await next_step(query.message, state, session)


async def ask_birth_date(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.birth_date)
    await message.answer(_("Your date of birth (DD/MM/YYYY):"))


@router.message(Registration.birth_date, F.text)
async def got_birth_date(
    message: Message, state: FSMContext, session: AsyncSession, clock: Clock, settings: Settings, i18n: I18n
) -> None:
    today = local_today(clock, settings.bot.tz)
    try:
        born = parse_birth_date(message.text, today=today)
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    await state.update_data(birth_date=born.isoformat())
    rules = settings.eligibility
    age_check = assess_age(born, today, rules)
    if not age_check.eligible:
        # Kept, not refused: a 17-year-old can join now and be called once 18 (issue #2).
        if age_check.eligible_from:
            await message.answer(
                _("Thank you. Donors must be {min} to {max} years old on the day they give. We keep your "
                  "registration and will not call you before {date}.").format(
                    min=rules.min_age, max=rules.max_age, date=fmt_date(age_check.eligible_from))
            )
        else:
            await message.answer(
                _("Thank you. Donors must be {min} to {max} years old on the day they give, so we will not "
                  "call you for emergencies — but you are welcome to stay in the club.").format(
                    min=rules.min_age, max=rules.max_age)
            )
    await next_step(message, state, session)


async def ask_weight(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.weight)
    await message.answer(_("Your weight in kg (e.g. 55):"))


@router.message(Registration.weight, F.text)
async def got_weight(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings, i18n: I18n
) -> None:
    try:
        weight = parse_weight(message.text)
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    data = await state.get_data()
    await state.update_data(weight=weight)
    rules = settings.eligibility
    minimum = min_weight(data.get("sex"), "whole_blood", rules)
    if weight < minimum:
        await message.answer(
            _("Thank you. The minimum to give blood is {min} kg, so we will not call you for now. "
              "If your weight changes, update it in /me.").format(min=fmt_number(minimum))
        )
    await next_step(message, state, session)


# --- location, last donation, club ---------------------------------------------------------


async def ask_location(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.location)
    data = await state.get_data()
    if (data.get("consent") or {}).get("location"):
        await message.answer(
            _("Where do you usually stay? Share your location with the button, or type your district "
              "and commune (e.g. Lê Chân, Hải Phòng)."),
            reply_markup=keyboards.location_keyboard(),
        )
    else:
        await message.answer(
            _("Which area do you usually stay in? Type your district and commune (e.g. Lê Chân, Hải Phòng).")
        )


@router.message(Registration.location, F.location)
async def got_location(message: Message, state: FSMContext, session: AsyncSession) -> None:
    data = await state.get_data()
    if not (data.get("consent") or {}).get("location"):
        await message.answer(
            _("You chose not to share your location, so we don't keep the pin. Please type your area instead."),
            reply_markup=ReplyKeyboardRemove(),
        )
        return
    loc = message.location
    await state.update_data(lat=loc.latitude, lon=loc.longitude)
    await message.answer(_("Location saved."), reply_markup=ReplyKeyboardRemove())
    await next_step(message, state, session)


@router.message(Registration.location, F.text)
async def got_area(message: Message, state: FSMContext, session: AsyncSession) -> None:
    area = " ".join(message.text.split())
    if not (2 <= len(area) <= 200) or area.startswith("/"):
        await message.answer(_("Please type your district and commune, e.g. Lê Chân, Hải Phòng."))
        return
    await state.update_data(area=area, lat=None, lon=None)
    await message.answer(_("Area saved."), reply_markup=ReplyKeyboardRemove())
    await next_step(message, state, session)


async def ask_last_donation(message: Message, state: FSMContext) -> None:
    await state.set_state(Registration.last_donation)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("I have never given blood"), callback_data=RegCb(action="never"))
    await message.answer(
        _("When did you last give blood? Type the date (DD/MM/YYYY)."), reply_markup=builder.as_markup()
    )


@router.callback_query(Registration.last_donation, RegCb.filter(F.action == "never"))
async def never_donated(query: CallbackQuery, state: FSMContext, session: AsyncSession) -> None:
    await query.answer()
    await edit_text(query.message, _("Last donation: never"))
    await state.update_data(last_donation=None, last_donation_set=True)
    await next_step(query.message, state, session)


@router.message(Registration.last_donation, F.text)
async def got_last_donation(
    message: Message, state: FSMContext, session: AsyncSession, clock: Clock, settings: Settings, i18n: I18n
) -> None:
    try:
        when = parse_past_date(message.text, today=local_today(clock, settings.bot.tz))
    except ParseError as err:
        await message.answer(render(err.text, i18n))
        return
    await state.update_data(last_donation=when.isoformat(), last_donation_set=True)
    await next_step(message, state, session)


async def ask_club(message: Message, state: FSMContext, session: AsyncSession) -> bool:
    """Offer the nearest clubs (or all, without a pin). Returns False when no club exists yet."""
    data = await state.get_data()
    if data.get("lat") is not None:
        clubs = [club for club, _km in await nearest_clubs(session, data["lat"], data["lon"], limit=3)]
    else:
        clubs = (await list_clubs(session))[:MAX_CLUB_CHOICES]
    if not clubs:
        return False
    await state.set_state(Registration.club)
    builder = InlineKeyboardBuilder()
    for club in clubs:
        builder.button(text=club.name[:60], callback_data=ClubCb(club_id=club.id))
    builder.adjust(1)
    await message.answer(_("Which reserve club do you join?"), reply_markup=builder.as_markup())
    return True


@router.callback_query(Registration.club, ClubCb.filter())
async def chose_club(
    query: CallbackQuery, callback_data: ClubCb, state: FSMContext, session: AsyncSession
) -> None:
    club = await session.get(Club, callback_data.club_id)
    if club is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await edit_text(query.message, _("Club: {name}").format(name=escape(club.name)))
    await state.update_data(club_id=club.id)
    await next_step(query.message, state, session)


# --- the step order, the summary and the final write --------------------------------------

async def next_step(message: Message, state: FSMContext, session: AsyncSession) -> None:
    """Ask for the first missing answer, or show the summary.

    An edit from the summary clears one answer, so this same walk asks just that one again.
    """
    data = await state.get_data()
    if not data.get("name"):
        return await ask_name(message, state)
    if not data.get("blood"):
        return await ask_blood_type(message, state)
    if not data.get("sex"):
        return await ask_sex(message, state)
    if not data.get("birth_date"):
        return await ask_birth_date(message, state)
    if data.get("weight") is None:
        return await ask_weight(message, state)
    if data.get("lat") is None and not data.get("area"):
        return await ask_location(message, state)
    if not data.get("last_donation_set"):
        return await ask_last_donation(message, state)
    if not data.get("club_id") and not data.get("no_club"):
        if await ask_club(message, state, session):
            return
        await state.update_data(no_club=True)
    await show_summary(message, state, session)


async def show_summary(message: Message, state: FSMContext, session: AsyncSession) -> None:
    await state.set_state(Registration.summary)
    data = await state.get_data()
    club = await session.get(Club, data["club_id"]) if data.get("club_id") else None
    if data.get("lat") is not None:
        where = _("location pin") + (f" · {data['area']}" if data.get("area") else "")
    else:
        where = data.get("area") or "—"
    birth = date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None
    last = date.fromisoformat(data["last_donation"]) if data.get("last_donation") else None
    lines = [
        _("<b>Please check your details</b>"),
        _("Name: {v}").format(v=escape(data.get("name", ""))),
        _("Phone: {v}").format(v=format_phone(data.get("phone", ""))),
        _("Blood type: {v}").format(v=fmt_blood(data.get("blood"))),
        _("Sex: {v}").format(v=fmt_sex(data.get("sex"))),
        _("Date of birth: {v}").format(v=fmt_date(birth)),
        _("Weight: {v}").format(v=fmt_weight(data.get("weight"))),
        _("Area: {v}").format(v=escape(where)),
        _("Last donation: {v}").format(v=fmt_date(last) if last else _("never")),
        _("Club: {v}").format(v=escape(club.name) if club else "—"),
    ]
    builder = InlineKeyboardBuilder()
    for field, label in (
        ("name", _("Name")), ("blood", _("Blood type")), ("sex", _("Sex")), ("birth_date", _("Birth date")),
        ("weight", _("Weight")), ("location", _("Area")), ("last_donation", _("Last donation")),
        ("club", _("Club")),
    ):
        builder.button(text="✏️ " + label, callback_data=EditCb(field=field))
    builder.button(text=_("✅ Confirm"), callback_data=RegCb(action="confirm"))
    builder.button(text=_("Cancel"), callback_data=RegCb(action="cancel"))
    builder.adjust(2, 2, 2, 2, 1, 1)
    await message.answer("\n".join(lines), reply_markup=builder.as_markup())


@router.callback_query(Registration.summary, EditCb.filter())
async def edit_field(query: CallbackQuery, callback_data: EditCb, state: FSMContext, session: AsyncSession) -> None:
    clear = {
        "name": {"name": None},
        "blood": {"blood": None},
        "sex": {"sex": None},
        "birth_date": {"birth_date": None},
        "weight": {"weight": None},
        "location": {"lat": None, "lon": None, "area": None},
        "last_donation": {"last_donation_set": False},
        "club": {"club_id": None, "no_club": False},
    }.get(callback_data.field)
    if clear is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await edit_markup(query.message)
    await state.update_data(**clear)
    await next_step(query.message, state, session)


@router.callback_query(Registration.summary, RegCb.filter(F.action == "cancel"))
async def cancel_at_summary(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await edit_text(query.message, _("Registration cancelled. Nothing was saved. Send /start to begin again."))


@router.callback_query(Registration.summary, RegCb.filter(F.action == "confirm"))
async def confirmed(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, clock: Clock, settings: Settings,
    tg_user: TelegramUser, is_admin: bool, bot: Bot, i18n: I18n, reminders: Reminders,
) -> None:
    data = await state.get_data()
    locale = tg_user.locale or i18n.current_locale
    donor = await save_donor(session, data, query.from_user.id, tg_user.locale, clock)
    reminders.poke()  # a new donor's "donate again" day may come before the one the reminders wait for
    if donor is None:
        await query.answer(
            _("This number is already registered by another Telegram account. Please ask your club lead to help."),
            show_alert=True,
        )
        await state.clear()
        return
    await state.clear()
    await query.answer()
    await edit_markup(query.message)
    facts = DonorFacts.of(donor)
    status = explain(assess(facts, local_today(clock, settings.bot.tz), settings.eligibility), facts)
    text = _("🩸 Thank you, {name}! You are now on the reserve list.").format(name=escape(donor.full_name))
    text += "\n" + status
    if donor.consent_contact_at:
        text += "\n" + _("When a hospital near you needs your blood type, we will message you here.")
    else:
        text += "\n" + _("You did not agree to be contacted in emergencies, so we will not message you. "
                         "You can change this in /me.")
    text += "\n\n" + _("/me shows your profile; /help lists everything you can do.")
    await query.message.answer(text)
    roles = await roles_of(session, query.from_user.id)
    await set_user_commands(bot, i18n, query.message.chat.id, roles, is_admin, locale)


async def save_donor(
    session: AsyncSession, data: dict, telegram_id: int, locale: str | None, clock: Clock
) -> Donor | None:
    """One transaction: the donor row (new, or the imported one now linked), the club membership,
    the audit entry. Returns None when the phone was taken by another account meanwhile."""
    now = clock()
    existing = (await session.exec(select(Donor).where(Donor.phone == data["phone"]))).first()
    if existing is not None and linked_elsewhere(existing, telegram_id):
        return None
    # This account may be on another donor's record without her consent (an old roster file
    # linked it): that link was never real, and the account is now this donor's.
    await session.exec(update(Donor).where(Donor.telegram_id == telegram_id, ~consented_in_bot(),
                                           Donor.phone != data["phone"]).values(telegram_id=None))
    donor = existing or Donor(full_name=data["name"], phone=data["phone"])
    club = await session.get(Club, data["club_id"]) if data.get("club_id") else None
    blood = data.get("blood")
    donor.full_name = data["name"]
    donor.telegram_id = telegram_id
    donor.abo, donor.rh = keyboards.split_blood(blood)
    donor.sex = data.get("sex")
    donor.birth_date = date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None
    donor.weight_kg = data.get("weight")
    if data.get("lat") is not None:
        donor.sqlmodel_update(placed(data["lat"], data["lon"], approx=False))
    elif club is not None:
        # No pin: the club's location stands in, marked as an approximation (issue #2).
        donor.sqlmodel_update(placed(club.lat, club.lon, approx=True))
    else:
        donor.sqlmodel_update(placed(None, None, approx=False))
    donor.area = data.get("area") or ""
    donor.last_donation_date = date.fromisoformat(data["last_donation"]) if data.get("last_donation") else None
    if donor.last_donation_date and existing is None:
        donor.last_donation_component = "whole_blood"
        donor.donation_count = max(donor.donation_count, 1)
    consent = data.get("consent") or {}
    from datetime import datetime

    def ts(key: str):
        return datetime.fromisoformat(consent[key]) if consent.get(key) else None

    donor.consent_profile_at = ts("profile") or now
    donor.consent_contact_at = ts("contact")
    donor.consent_location_at = ts("location")
    donor.consent_policy_version = data.get("policy_version")
    donor.locale = locale
    donor.updated_at = now
    session.add(donor)
    await session.flush()
    if club is not None:
        await members.ensure_member(session, club.id, donor.id)
    audit(session, telegram_id, "donor.link" if existing else "donor.register", f"donor:{donor.id}",
          f"consent contact={bool(donor.consent_contact_at)} location={bool(donor.consent_location_at)}")
    await session.commit()
    return donor
