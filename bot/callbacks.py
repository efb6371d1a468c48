"""Callback data factories. Telegram returns callback data exactly as sent and anyone
can forge it (DOMAIN.md §8): handlers re-check on every press that the presser may act."""

from typing import Annotated, Any

from aiogram.filters.callback_data import CallbackData
from pydantic import BeforeValidator

from ground.parsing import whole_number


def _row_id(value: Any) -> int:
    """A forged number (twenty digits, "①", "-1", "5.0") fails the unpacking, so the
    factory's filter does not match and the press falls through to the answer every
    dead button gets (bot/routers/fallback.py), instead of reaching the database."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    number = whole_number(value) if isinstance(value, str) else None
    if number is None:
        raise ValueError("not a whole number in range")
    return number


# Every int a button carries is an id, a count or a page: ASCII digits within an id column.
Num = Annotated[int, BeforeValidator(_row_id)]


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
    club_id: Num


class EditCb(CallbackData, prefix="edit"):
    field: str


class ForgetCb(CallbackData, prefix="fgt"):
    confirm: bool


class DonorCb(CallbackData, prefix="dn"):
    action: str  # calls_on | calls_off | remind_on | remind_off | edit_blood | edit_weight | pause | donated_today
    value: str = ""


# --- club leads (bot/routers/lead*.py) ----------------------------------------------------


class LeadClubCb(CallbackData, prefix="lclub"):
    """A lead of several clubs chose the club for a command."""

    command: str  # roster | find | add | export | invitelink | import
    club_id: Num
    value: str = ""  # /find: the blood type, e.g. "O-"


class FindCb(CallbackData, prefix="lfind"):
    club_id: Num
    blood: str  # "O-", "AB+", …
    page: Num


class MemberCb(CallbackData, prefix="lmem"):
    action: str  # open | edit | field | blood | sex | never | status | defer | deferdef | remove | remove_yes | back
    club_id: Num
    donor_id: Num
    value: str = ""
    back: str = ""  # "<blood>.<page>": the /find page to go back to; empty: the roster


class AddMemberCb(CallbackData, prefix="ladd"):
    action: str  # skip | never | save | join | cancel


class ImportCb(CallbackData, prefix="limp"):
    action: str  # go | cancel


class ExportCb(CallbackData, prefix="lexp"):
    club_id: Num
    fmt: str  # xlsx | csv


# --- admins (bot/routers/admin.py) --------------------------------------------------------


class AdminCb(CallbackData, prefix="adm"):
    action: str  # skip | cancel


class InviteCb(CallbackData, prefix="ainv"):
    kind: str  # lead | staff | donor
    target: Num = 0  # club id (lead, donor) or hospital id (staff); 0: not chosen yet
    uses: Num = 0  # 0: not chosen yet


class AnswerCb(CallbackData, prefix="ans"):
    """A donor's answer to a call. ``t`` is the per-donor token the dispatcher checks (DOMAIN.md §8)."""

    r: Num  # request id
    t: str  # token
    a: str  # y | n | w (on my way) | h (arrived) | x (I can't come after all, issue 9)


class UrgentCb(CallbackData, prefix="urg"):
    action: str  # send | cancel
    hospital_id: Num = 0


class BoardCb(CallbackData, prefix="bd"):
    """The live board's buttons. Whoever presses is checked against the request's hospital."""

    a: str  # units | addu | covered | covered_yes | donors | pick | mark | nmark | calls | refresh | close
    #         | close_yes | cancel | cancel_yes | back | report
    r: Num  # request id
    v: Num = 0  # addu: the units the presser saw; pick, mark: the contact id
    x: str = ""  # addu: how many; mark: arrived | no_show | donated250…; cancel_yes: the reason


class RequestCb(CallbackData, prefix="rq"):
    """A step of the guided /request. Only valid on the flow's current message and step."""

    action: str  # bt | comp | units | units_other | urg | deadline | back | rh | note_write | skip | send | restart | cancel
    value: str = ""
    hospital_id: Num = 0  # send: the hospital posting (staff of several choose here)
