"""Callback data factories. Telegram returns callback data exactly as sent and anyone
can forge it (DOMAIN.md §8): handlers re-check on every press that the presser may act."""

from aiogram.filters.callback_data import CallbackData


class LangCb(CallbackData, prefix="lang"):
    code: str


class ConsentCb(CallbackData, prefix="cons"):
    item: str  # profile | contact | location | done


class BloodCb(CallbackData, prefix="bt"):
    value: str  # "O-", "AB+", … or "unknown"


class SexCb(CallbackData, prefix="sex"):
    value: str  # M | F


class RegCb(CallbackData, prefix="reg"):
    action: str  # never | use_name | confirm | cancel
    value: str = ""


class ClubCb(CallbackData, prefix="club"):
    club_id: int


class EditCb(CallbackData, prefix="edit"):
    field: str


class ForgetCb(CallbackData, prefix="fgt"):
    confirm: bool


class DonorCb(CallbackData, prefix="dn"):
    action: str  # calls_on | calls_off | edit_blood | edit_weight | pause | donated_today
    value: str = ""
