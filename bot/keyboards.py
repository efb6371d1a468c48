"""Keyboard builders shared by the routers."""

from __future__ import annotations

from aiogram.types import KeyboardButton, ReplyKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import BloodCb, ConsentCb, LangCb, SexCb
from ground.parsing import format_blood_type

BLOOD_TYPES = [("O", "-"), ("A", "-"), ("B", "-"), ("AB", "-"), ("O", "+"), ("A", "+"), ("B", "+"), ("AB", "+")]
BLOOD_VALUES = frozenset(f"{abo}{rh}" for abo, rh in BLOOD_TYPES)  # what the buttons send, besides "unknown"


def split_blood(blood: str | None) -> tuple[str | None, str | None]:
    """"O-" → ("O", "-"); an empty or "unknown" type → (None, None)."""
    return (None, None) if not blood or blood == "unknown" else (blood[:-1], blood[-1])


def language_keyboard():
    kb = InlineKeyboardBuilder()
    kb.button(text="🇻🇳 Tiếng Việt", callback_data=LangCb(code="vi"))
    kb.button(text="🇬🇧 English", callback_data=LangCb(code="en"))
    return kb.as_markup()


def consent_keyboard(given: dict[str, bool]):
    def box(item: str) -> str:
        return "☑" if given.get(item) else "☐"

    kb = InlineKeyboardBuilder()
    kb.button(text=f"{box('profile')} " + _("Keep my profile"), callback_data=ConsentCb(item="profile"))
    kb.button(text=f"{box('contact')} " + _("Contact me in emergencies"), callback_data=ConsentCb(item="contact"))
    kb.button(text=f"{box('location')} " + _("Use my location"), callback_data=ConsentCb(item="location"))
    kb.button(text=_("Continue ➡️"), callback_data=ConsentCb(item="done"))
    kb.adjust(1)
    return kb.as_markup()


def blood_type_keyboard(with_unknown: bool = True):
    kb = InlineKeyboardBuilder()
    for abo, rh in BLOOD_TYPES:
        kb.button(text=format_blood_type(abo, rh), callback_data=BloodCb(value=f"{abo}{rh}"))
    sizes = [4, 4]
    if with_unknown:
        kb.button(text=_("I don't know"), callback_data=BloodCb(value="unknown"))
        sizes.append(1)
    kb.adjust(*sizes)
    return kb.as_markup()


def sex_keyboard():
    kb = InlineKeyboardBuilder()
    kb.button(text=_("Male"), callback_data=SexCb(value="M"))
    kb.button(text=_("Female"), callback_data=SexCb(value="F"))
    return kb.as_markup()


def contact_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=_("📱 Share my phone number"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def location_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=_("📍 Share my location"), request_location=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
        input_field_placeholder=_("…or type your district / commune"),
    )
