"""Club leads: the roster by blood type, finding and managing members, imports, exports, invites.

/roster, /find, /add, /export and /invitelink take the lead's club, or ask which one
with buttons when they lead several. A spreadsheet sent as a document is a roster
import: a trial run first, then "Import" or "Cancel".

Callback data can be forged (DOMAIN.md §8): every press is re-checked here — does
the presser lead the club the button names, and is the member on that club's
roster? — before anything is read or changed. A refused press gets a show_alert
and an ``access.refused`` audit row, and changes nothing.
"""

from __future__ import annotations

import io
import logging
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot, F
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import (
    AddMemberCb,
    BloodCb,
    ExportCb,
    FindCb,
    ImportCb,
    LeadClubCb,
    MemberCb,
    SexCb,
)
from bot.i18n import render
from bot.keyboards import BLOOD_TYPES
from bot.routing import RouterTemplate
from bot.states import AddMember, ImportRoster, MemberEdit
from bot.texts import escape, explain, fmt_date, fmt_number, fmt_sex, fmt_type
from dispatcher import eligibility as elig
from dispatcher.eligibility import DonorFacts, assess
from models import donors
from models.directory import DirectoryError, Roles, create_invite, deep_link
from models.geo import geo_cell
from models.roster import ImportReport, export_roster, import_roster
from models.tables import AuditLog, Club, ClubMembership, Donor, DonorStatus, MemberRole
from redreserve.clock import VIETNAM, Clock, local_today
from redreserve.config import Settings
from redreserve.i18n import N_, Text
from redreserve.parsing import (
    ParseError,
    fold,
    format_date,
    parse_birth_date,
    parse_blood_type,
    parse_date,
    parse_name,
    parse_past_date,
    parse_phone,
    parse_weight,
)
from redreserve.roster_file import open_roster, write_roster

log = logging.getLogger(__name__)


class IsLead(Filter):
    """Lets only club leads in, so everyone else's /roster falls through to fallback.py's refusal."""

    async def __call__(self, event: TelegramObject, roles: Roles | None = None) -> bool:
        return bool(roles and roles.lead_club_ids)


router = RouterTemplate("lead")
router.message.filter(F.chat.type == "private", IsLead())
# Callbacks are not filtered by role: a non-lead's (forged) press must be refused with an
# alert, which each handler does after checking the club.
router.callback_query.filter(F.message.chat.type == "private")

# One link shared in the club's group: enough uses for a large club's newcomers, and a
# month of life, so a link that leaks beyond the group stops working soon.
INVITE_USES = 200
INVITE_DAYS = 30
# The trial-run report lists this many refused rows (and as many warnings) word for word.
REPORT_DETAILS = 15
REPORT_LINE_CHARS = 200  # a refused cell is quoted in the message; a pasted essay must not fill it
MESSAGE_CHARS = 4000  # Telegram's limit is 4096
# .xls is accepted here only so that roster_file can explain how to save it as .xlsx.
SPREADSHEET_SUFFIXES = (".csv", ".xlsx", ".xlsm", ".xls")
BLOOD_VALUES = frozenset(f"{abo}{rh}" for abo, rh in BLOOD_TYPES)
ROSTER_ORDER: tuple[tuple[str | None, str | None], ...] = (*BLOOD_TYPES, (None, None))

# Deferrals by their coarse category only, never a diagnosis (DOMAIN.md §2, §7). The
# days give the usual end date, offered as a button; the lead may type another.
DEFERRAL_CATEGORIES: tuple[tuple[str, int | None, str], ...] = (
    ("12m", 365, N_("Surgery, childbirth, transfusion (12 months)")),
    ("6m", 182, N_("Tattoo, piercing, blood exposure (6 months)")),
    ("4w", 28, N_("Infection, live vaccine (4 weeks)")),
    ("7d", 7, N_("Flu, cold, vaccine, aspirin (7 days)")),
    ("pregnancy", None, N_("Pregnancy")),
    ("other", None, N_("Other")),
)
_DEFERRAL = {code: (days, label) for code, days, label in DEFERRAL_CATEGORIES}

# The facts eligibility needs, read as plain columns: no ORM objects for a whole roster.
_FACT_COLUMNS = (
    Donor.abo, Donor.rh, Donor.sex, Donor.birth_date, Donor.weight_kg, Donor.last_donation_date,
    Donor.last_donation_component, Donor.status, Donor.status_until,
)


_ROSTER_JOIN = ClubMembership.donor_id == Donor.id


def _on_roster(club_id: int) -> tuple:
    return ClubMembership.club_id == club_id, ClubMembership.role == MemberRole.member.value


def _leads(roles: Roles | None, club_id: int | None) -> bool:
    return roles is not None and club_id is not None and club_id in roles.lead_club_ids


async def _club_name(session: AsyncSession, club_id: int) -> str:
    return (await session.exec(select(Club.name).where(Club.id == club_id))).first() or "—"


async def _member(session: AsyncSession, club_id: int, donor_id: int) -> Donor | None:
    """The donor, if they are on this club's roster."""
    return (await session.exec(
        select(Donor).join(ClubMembership, ClubMembership.donor_id == Donor.id)
        .where(Donor.id == donor_id, ClubMembership.club_id == club_id,
               ClubMembership.role == MemberRole.member.value)
    )).first()


async def _refuse(query: CallbackQuery, session: AsyncSession, what: str, club_id: int,
                  donor_id: int | None = None, text: str | None = None) -> None:
    """A press by someone who does not lead the club, or for a member not on its roster."""
    log.warning("refused %s by %s for club %s donor %s", what, query.from_user.id, club_id, donor_id)
    subject = f"donor:{donor_id}" if donor_id else f"club:{club_id}"
    session.add(AuditLog(actor_telegram_id=query.from_user.id, action="access.refused", subject=subject,
                         detail=f"{what} club:{club_id}"))
    await session.commit()
    await query.answer(text or _("Only a lead of this member's club can do this."), show_alert=True)


async def _edit(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as err:
        if "not modified" not in str(err):
            raise


def _render(text: Text, i18n: I18n) -> str:
    """bot.i18n.render, with Texts nested in the parameters (a row error's reason) translated too."""
    params = {k: _render(v, i18n) if isinstance(v, Text) else v for k, v in text.params.items()}
    return render(Text(text.msgid, params), i18n)


def _cancel_button(builder: InlineKeyboardBuilder) -> None:
    builder.button(text=_("Cancel"), callback_data=AddMemberCb(action="cancel"))


# --- choosing the club ------------------------------------------------------------------


async def _pick_club(message: Message, session: AsyncSession, roles: Roles, command: str,
                     value: str = "") -> int | None:
    """The lead's only club, or None after asking which one with buttons."""
    if len(roles.lead_club_ids) == 1:
        return roles.lead_club_ids[0]
    clubs = (await session.exec(
        select(Club.id, Club.name).where(Club.id.in_(roles.lead_club_ids)).order_by(Club.name))).all()
    builder = InlineKeyboardBuilder()
    for club_id, name in clubs:
        builder.button(text=name[:60], callback_data=LeadClubCb(command=command, club_id=club_id, value=value))
    builder.adjust(1)
    await message.answer(_("Which club?"), reply_markup=builder.as_markup())
    return None


@dataclass
class _Ctx:
    """What the command bodies need, whether they start from a command or a club button."""

    session: AsyncSession
    state: FSMContext
    settings: Settings
    clock: Clock
    i18n: I18n
    bot: Bot
    actor: int

    @property
    def today(self) -> date:
        return local_today(self.clock)


def _ctx(data: dict[str, Any], actor: int) -> _Ctx:
    return _Ctx(data["session"], data["state"], data["settings"], data["clock"], data["i18n"], data["bot"], actor)


@router.message(Command("roster", "find", "add", "export", "invitelink"))
async def lead_command(message: Message, command: CommandObject, roles: Roles, **data: Any) -> None:
    name = command.command.lower()
    ctx = _ctx(data, message.from_user.id)
    value = ""
    if name == "find":
        try:
            abo, rh = parse_blood_type(command.args or "")
        except ParseError as err:
            await message.answer(escape(render(err.text, ctx.i18n)) + "\n"
                                 + _("Usage: /find followed by a blood type, e.g. /find O- or /find AB+"))
            return
        value = f"{abo}{rh}"
    await ctx.state.clear()
    club_id = await _pick_club(message, ctx.session, roles, name, value)
    if club_id is not None:
        await _run(name, message, club_id, value, ctx)


@router.callback_query(LeadClubCb.filter())
async def chose_club(query: CallbackQuery, callback_data: LeadClubCb, roles: Roles, **data: Any) -> None:
    ctx = _ctx(data, query.from_user.id)
    cb = callback_data
    if not _leads(roles, cb.club_id):
        await _refuse(query, ctx.session, f"club:{cb.command}", cb.club_id)
        return
    if cb.command == "import" and await ctx.state.get_state() != ImportRoster.club.state:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    if cb.command not in ("roster", "find", "add", "export", "invitelink", "import") or (
            cb.command == "find" and cb.value not in BLOOD_VALUES):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await _edit(query.message, _("Club: {name}").format(name=escape(await _club_name(ctx.session, cb.club_id))))
    await _run(cb.command, query.message, cb.club_id, cb.value, ctx)


async def _run(command: str, message: Message, club_id: int, value: str, ctx: _Ctx) -> None:
    if command == "roster":
        await message.answer(await roster_text(ctx.session, club_id, ctx.today, ctx.settings, ctx.i18n))
    elif command == "find":
        text, markup = await find_page(ctx.session, club_id, value, 0, ctx.today, ctx.settings)
        await message.answer(text, reply_markup=markup)
    elif command == "add":
        await begin_add(message, ctx.state, ctx.session, club_id)
    elif command == "export":
        await send_export(message, ctx, club_id, "xlsx")
    elif command == "invitelink":
        await send_invite_link(message, ctx, club_id)
    elif command == "import":
        await trial_import(message, ctx, club_id)


# --- /roster ----------------------------------------------------------------------------


@dataclass
class TypeCounts:
    members: int = 0
    ready: int = 0  # likely able to give today
    off: int = 0  # paused or deferred right now
    unlinked: int = 0  # not on Telegram yet


async def roster_counts(session: AsyncSession, club_id: int, today: date,
                        rules) -> dict[tuple[str | None, str | None], TypeCounts]:
    """Counts by blood type for one club: one query for the columns, eligibility assessed here."""
    rows = await session.exec(
        select(*_FACT_COLUMNS, Donor.telegram_id).join(ClubMembership, _ROSTER_JOIN)
        .where(*_on_roster(club_id)))
    counts = {key: TypeCounts() for key in ROSTER_ORDER}
    for row in rows:
        key = (row.abo, row.rh) if row.abo and row.rh else (None, None)
        verdict = assess(DonorFacts.of(row), today, rules)
        c = counts[key]
        c.members += 1
        c.ready += verdict.eligible
        c.off += elig.PAUSED in verdict.reasons or elig.DEFERRED in verdict.reasons
        c.unlinked += row.telegram_id is None
    return counts


async def roster_text(session: AsyncSession, club_id: int, today: date, settings: Settings, i18n: I18n) -> str:
    counts = await roster_counts(session, club_id, today, settings.eligibility)
    locale = i18n.current_locale

    def num(n: int) -> str:
        return fmt_number(n, locale)

    total = TypeCounts()
    for c in counts.values():
        total.members += c.members
        total.ready += c.ready
        total.off += c.off
        total.unlinked += c.unlinked
    header = [_("Type"), _("All"), _("Ready"), _("Off"), _("No TG")]
    table = []
    for (abo, rh), c in counts.items():
        if abo is None and not c.members:
            continue  # the "unknown" line only when someone's type is unknown
        table.append([fmt_type(abo, rh), num(c.members), num(c.ready), num(c.off), num(c.unlinked)])
    table.append([_("Total"), num(total.members), num(total.ready), num(total.off), num(total.unlinked)])
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])])

    body = "\n".join([line(header), *(line(r) for r in table)])
    return "\n".join([
        _("🩸 <b>{club}</b> — {n} members").format(club=escape(await _club_name(session, club_id)),
                                                  n=num(total.members)),
        f"<pre>{escape(body)}</pre>",
        _("Ready: likely able to give today. Off: paused or deferred. No TG: not on Telegram yet."),
        _("/find O- lists the members of one type."),
    ])


# --- /find ------------------------------------------------------------------------------


async def find_page(session: AsyncSession, club_id: int, blood: str, page: int, today: date,
                    settings: Settings) -> tuple[str, InlineKeyboardMarkup | None]:
    """Members of one exact type, likely-eligible first, then by when they may give again."""
    abo, rh = blood[:-1], blood[-1]
    rows = (await session.exec(
        select(Donor.id, Donor.full_name, Donor.phone, *_FACT_COLUMNS)
        .join(ClubMembership, _ROSTER_JOIN)
        .where(*_on_roster(club_id), Donor.abo == abo, Donor.rh == rh))).all()
    club = escape(await _club_name(session, club_id))
    type_text = fmt_type(abo, rh)
    if not rows:
        return _("No members with blood type {type} in <b>{club}</b>.").format(type=type_text, club=club), None
    rated = []
    for row in rows:
        facts = DonorFacts.of(row)
        rated.append((row, facts, assess(facts, today, settings.eligibility)))
    rated.sort(key=lambda r: (not r[2].eligible, r[2].eligible_from or date.max, r[0].full_name.casefold()))
    size = settings.bot.page_size
    pages = math.ceil(len(rated) / size)
    page = min(max(page, 0), pages - 1)
    lines = [_("🩸 <b>{type}</b> in <b>{club}</b>: {n} members").format(type=type_text, club=club, n=len(rated))]
    if pages > 1:
        lines[0] += " · " + _("page {page}/{pages}").format(page=page + 1, pages=pages)
    builder = InlineKeyboardBuilder()
    for number, (row, facts, verdict) in enumerate(rated[page * size:(page + 1) * size], page * size + 1):
        last = (_("last gave {date}").format(date=fmt_date(row.last_donation_date)) if row.last_donation_date
                else _("never gave"))
        lines.append(f"\n{number}. <b>{escape(row.full_name)}</b> · {row.phone}")
        lines.append(f"{explain(verdict, facts)} · {last}")
        builder.button(text=f"{number}. {row.full_name[:40]}",
                       callback_data=MemberCb(action="open", club_id=club_id, donor_id=row.id, back=f"{blood}.{page}"))
    builder.adjust(1)
    nav = []
    if page > 0:
        nav.append(("◀", page - 1))
    if page < pages - 1:
        nav.append(("▶", page + 1))
    if nav:
        nav_builder = InlineKeyboardBuilder()
        for label, target in nav:
            nav_builder.button(text=label, callback_data=FindCb(club_id=club_id, blood=blood, page=target))
        builder.attach(nav_builder)
    return "\n".join(lines), builder.as_markup()


@router.callback_query(FindCb.filter())
async def find_turn_page(query: CallbackQuery, callback_data: FindCb, roles: Roles, session: AsyncSession,
                         clock: Clock, settings: Settings) -> None:
    cb = callback_data
    if not _leads(roles, cb.club_id):
        await _refuse(query, session, "find", cb.club_id)
        return
    if cb.blood not in BLOOD_VALUES:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    text, markup = await find_page(session, cb.club_id, cb.blood, cb.page, local_today(clock), settings)
    await _edit(query.message, text, markup)


# --- the member card --------------------------------------------------------------------


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


def card_text(donor: Donor, today: date, settings: Settings) -> str:
    facts = DonorFacts.of(donor)
    details = [fmt_sex(donor.sex),
               _("born {date}").format(date=fmt_date(donor.birth_date)),
               _("{kg} kg").format(kg=f"{donor.weight_kg:g}" if donor.weight_kg else "—")]
    lines = [
        f"👤 <b>{escape(donor.full_name)}</b>",
        f"📞 {donor.phone}",
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
    builder.button(text=_("✏️ Edit"), callback_data=MemberCb(action="edit", club_id=club_id, donor_id=donor_id,
                                                             back=back))
    builder.button(text=_("🗑 Remove"), callback_data=MemberCb(action="remove", club_id=club_id,
                                                              donor_id=donor_id, back=back))
    builder.button(text=_("◀ Back"), callback_data=MemberCb(action="back", club_id=club_id, donor_id=donor_id,
                                                            back=back))
    builder.adjust(2, 1)
    return builder.as_markup()


EDIT_FIELDS = ("name", "phone", "blood", "sex", "birth", "weight", "last", "status")
TYPED_FIELDS = ("name", "phone", "birth", "weight", "last", "paused", "deferred")


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


@router.callback_query(MemberCb.filter())
async def member_action(query: CallbackQuery, callback_data: MemberCb, roles: Roles, **data: Any) -> None:
    ctx = _ctx(data, query.from_user.id)
    cb = callback_data
    if not _leads(roles, cb.club_id):
        await _refuse(query, ctx.session, cb.action, cb.club_id, cb.donor_id)
        return
    donor = await _member(ctx.session, cb.club_id, cb.donor_id)
    if donor is None:  # removed meanwhile by another lead, or a forged id from another club
        await _refuse(query, ctx.session, cb.action, cb.club_id, cb.donor_id,
                      _("This member is not on your club's roster."))
        return
    handler = _MEMBER_ACTIONS.get(cb.action)
    if handler is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    if await ctx.state.get_state() == MemberEdit.value.state:
        await ctx.state.clear()  # any button on the card leaves a half-typed edit
    await handler(query, cb, donor, ctx)


async def _open(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    await query.answer()
    await _edit(query.message, card_text(donor, ctx.today, ctx.settings), card_markup(cb.club_id, donor.id, cb.back))


async def _back(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    await query.answer()
    blood, _sep, page = cb.back.partition(".")
    if blood in BLOOD_VALUES and page.isdigit():
        text, markup = await find_page(ctx.session, cb.club_id, blood, int(page), ctx.today, ctx.settings)
        await _edit(query.message, text, markup)
    else:
        await _edit(query.message, await roster_text(ctx.session, cb.club_id, ctx.today, ctx.settings, ctx.i18n))


def _member_cb(cb: MemberCb, action: str, value: str = "") -> MemberCb:
    return MemberCb(action=action, club_id=cb.club_id, donor_id=cb.donor_id, value=value, back=cb.back)


async def _choose_field(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    await query.answer()
    builder = InlineKeyboardBuilder()
    for field in EDIT_FIELDS:
        builder.button(text=_field_label(field), callback_data=_member_cb(cb, "field", field))
    builder.button(text=_("◀ Back"), callback_data=_member_cb(cb, "open"))
    builder.adjust(2, 2, 2, 2, 1)
    await _edit(query.message, _("What should change for <b>{name}</b>?").format(name=escape(donor.full_name)),
                builder.as_markup())


async def _field(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    field = cb.value
    builder = InlineKeyboardBuilder()
    if field == "blood":
        for abo, rh in BLOOD_TYPES:
            builder.button(text=fmt_type(abo, rh), callback_data=_member_cb(cb, "blood", f"{abo}{rh}"))
        builder.button(text=_("Unknown"), callback_data=_member_cb(cb, "blood", "unknown"))
        builder.button(text=_("◀ Back"), callback_data=_member_cb(cb, "open"))
        builder.adjust(4, 4, 1, 1)
        text = _("Blood type of <b>{name}</b>:")
    elif field == "sex":
        builder.button(text=_("Male"), callback_data=_member_cb(cb, "sex", "M"))
        builder.button(text=_("Female"), callback_data=_member_cb(cb, "sex", "F"))
        builder.button(text=_("◀ Back"), callback_data=_member_cb(cb, "open"))
        builder.adjust(2, 1)
        text = _("Sex of <b>{name}</b>:")
    elif field == "status":
        for value, label in (("active", _("Active")), ("paused", _("Paused until…")),
                             ("deferred", _("Deferred until…")), ("retired", _("Retired"))):
            builder.button(text=label, callback_data=_member_cb(cb, "status", value))
        builder.button(text=_("◀ Back"), callback_data=_member_cb(cb, "open"))
        builder.adjust(2, 2, 1)
        text = _("Status of <b>{name}</b>:")
    elif field in ("name", "phone", "birth", "weight", "last"):
        await _ask_typed(query, cb, donor, ctx, field)
        return
    else:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await _edit(query.message, text.format(name=escape(donor.full_name)), builder.as_markup())


async def _ask_typed(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx, field: str,
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
    builder.button(text=_("◀ Back"), callback_data=_member_cb(cb, "open"))
    builder.adjust(1)
    await _edit(query.message, f"<b>{escape(donor.full_name)}</b>\n" + _prompt(field), builder.as_markup())


async def _save(session: AsyncSession, donor: Donor, club_id: int, actor: int, now, field: str,
                **changes: Any) -> None:
    """A lead's edit: the change and an audit row naming the field, never its value (DOMAIN.md §7)."""
    for name, value in changes.items():
        setattr(donor, name, value)
    donor.updated_at = now
    session.add(donor)
    session.add(AuditLog(at=now, actor_telegram_id=actor, action="member.edit", subject=f"donor:{donor.id}",
                         detail=f"club:{club_id} field={field}"))
    await session.commit()


async def _set_blood(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    if cb.value not in BLOOD_VALUES | {"unknown"}:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    abo, rh = (None, None) if cb.value == "unknown" else (cb.value[:-1], cb.value[-1])
    await _save(ctx.session, donor, cb.club_id, ctx.actor, ctx.clock(), "blood_type", abo=abo, rh=rh)
    await _saved(query, cb, donor, ctx)


async def _set_sex(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    if cb.value not in ("M", "F"):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await _save(ctx.session, donor, cb.club_id, ctx.actor, ctx.clock(), "sex", sex=cb.value)
    await _saved(query, cb, donor, ctx)


async def _set_never(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    await _save(ctx.session, donor, cb.club_id, ctx.actor, ctx.clock(), "last_donation",
                last_donation_date=None, last_donation_component=None)
    await _saved(query, cb, donor, ctx)


async def _set_status(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    if cb.value in ("active", "retired"):
        await _save(ctx.session, donor, cb.club_id, ctx.actor, ctx.clock(), "status", status=cb.value,
                    status_until=None, deferral_reason=None)
        await _saved(query, cb, donor, ctx)
    elif cb.value == "paused":
        await _ask_typed(query, cb, donor, ctx, "paused")
    elif cb.value == "deferred":
        await query.answer()
        builder = InlineKeyboardBuilder()
        for code, _days, label in DEFERRAL_CATEGORIES:
            builder.button(text=_(label), callback_data=_member_cb(cb, "defer", code))
        builder.button(text=_("◀ Back"), callback_data=_member_cb(cb, "open"))
        builder.adjust(1)
        await _edit(query.message, _("Why is <b>{name}</b> deferred? Only a broad category is kept, "
                                     "never the diagnosis.").format(name=escape(donor.full_name)),
                    builder.as_markup())
    else:
        await query.answer(_("This button is no longer active."), show_alert=True)


async def _defer(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    if cb.value not in _DEFERRAL:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await _ask_typed(query, cb, donor, ctx, "deferred", category=cb.value)


async def _defer_default(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    days = _DEFERRAL.get(cb.value, (None, ""))[0]
    if days is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await _save(ctx.session, donor, cb.club_id, ctx.actor, ctx.clock(), "status", status="deferred",
                status_until=ctx.today + timedelta(days=days), deferral_reason=cb.value)
    await _saved(query, cb, donor, ctx)


async def _saved(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    await query.answer(_("Saved."))
    await _edit(query.message, card_text(donor, ctx.today, ctx.settings), card_markup(cb.club_id, donor.id, cb.back))


def _future_date(text: str, today: date) -> date:
    day = parse_date(text, today=today)
    if day <= today:
        raise ParseError(Text(N_("{date} is not in the future: give the first day they may be called again."),
                              {"date": format_date(day)}))
    return day


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
        return {"status": field, "status_until": _future_date(text, today)}
    raise ValueError(field)


@router.message(MemberEdit.value, F.text)
async def got_member_value(message: Message, state: FSMContext, session: AsyncSession, roles: Roles,
                           clock: Clock, settings: Settings, i18n: I18n) -> None:
    data = await state.get_data()
    club_id, field = data.get("club_id"), data.get("field")
    donor = await _member(session, club_id, data.get("donor_id", 0)) if _leads(roles, club_id) else None
    if donor is None or field not in TYPED_FIELDS:
        await state.clear()
        await message.answer(_("This member is no longer on your roster."))
        return
    today = local_today(clock)
    try:
        changes = parse_field(field, message.text, today, settings.bot.phone_region)
    except ParseError as err:
        await message.answer(escape(render(err.text, i18n)) + "\n" + _prompt(field))
        return
    if field == "deferred":
        changes["deferral_reason"] = data.get("category")
    elif field == "paused":
        changes["deferral_reason"] = None
    if "phone" in changes and changes["phone"] != donor.phone:
        taken = (await session.exec(select(Donor.id).where(Donor.phone == changes["phone"]))).first()
        if taken is not None:
            await message.answer(_("Another donor already has the number {phone}.").format(phone=changes["phone"])
                                 + "\n" + _prompt(field))
            return
    try:
        await _save(session, donor, club_id, message.from_user.id, clock(), field, **changes)
    except IntegrityError:
        await session.rollback()
        await message.answer(_("Another donor already has the number {phone}.").format(phone=changes["phone"]))
        return
    await state.clear()
    await message.answer(card_text(donor, today, settings), reply_markup=card_markup(club_id, donor.id,
                                                                                   data.get("back", "")))


# --- removing a member ------------------------------------------------------------------


async def _ask_remove(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    await query.answer()
    other_club = await _in_another_club(ctx.session, donor.id, cb.club_id)
    if donor.telegram_id is not None:
        after = _("They keep their own RedReserve account; only their place on this roster goes.")
    elif other_club:
        after = _("They stay on the roster of the other club they belong to.")
    else:
        after = _("They are not on Telegram and in no other club, so their record is deleted. "
                  "This cannot be undone.")
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🗑 Yes, remove"), callback_data=_member_cb(cb, "remove_yes"))
    builder.button(text=_("Keep"), callback_data=_member_cb(cb, "open"))
    builder.adjust(2)
    await _edit(query.message, _("Remove <b>{name}</b> from <b>{club}</b>?").format(
        name=escape(donor.full_name), club=escape(await _club_name(ctx.session, cb.club_id))) + "\n" + after,
        builder.as_markup())


async def _in_another_club(session: AsyncSession, donor_id: int, club_id: int) -> bool:
    return (await session.exec(select(ClubMembership.id).where(
        ClubMembership.donor_id == donor_id, ClubMembership.club_id != club_id).limit(1))).first() is not None


async def remove_member(session: AsyncSession, club_id: int, donor_id: int, *, actor: int, now) -> bool:
    """Take a donor off one club's roster. Returns True when the donor's record was deleted too.

    A lead manages the club's list, not the person. A donor linked to Telegram
    registered and consented themselves: they keep their account (and may /forget
    it themselves). A donor on another club's roster stays for that club. But a
    donor imported or added by a lead, never linked, and now on no roster is a
    record nobody can see, manage or reach, holding health data the person never
    consented to: DOMAIN.md §7 (minimise) says delete it. That goes through
    :func:`models.donors.forget`, so donation counts stay, anonymous.
    """
    await session.exec(delete(ClubMembership).where(
        ClubMembership.club_id == club_id, ClubMembership.donor_id == donor_id,
        ClubMembership.role == MemberRole.member.value))
    session.add(AuditLog(at=now, actor_telegram_id=actor, action="member.remove", subject=f"donor:{donor_id}",
                         detail=f"club:{club_id}"))
    linked = (await session.exec(select(Donor.telegram_id).where(Donor.id == donor_id))).first() is not None
    if not linked and not await _in_another_club(session, donor_id, club_id):
        await donors.forget(session, donor_id, now=now, actor=actor)  # commits the removal with it
        return True
    await session.commit()
    return False


async def _remove(query: CallbackQuery, cb: MemberCb, donor: Donor, ctx: _Ctx) -> None:
    name = donor.full_name
    deleted = await remove_member(ctx.session, cb.club_id, donor.id, actor=ctx.actor, now=ctx.clock())
    await query.answer(_("Removed."))
    text = _("<b>{name}</b> was removed from the roster.").format(name=escape(name))
    if deleted:
        text += "\n" + _("Their record was deleted.")
    builder = InlineKeyboardBuilder()
    blood, _sep, page = cb.back.partition(".")
    if blood in BLOOD_VALUES and page.isdigit():
        builder.button(text=_("◀ Back"), callback_data=FindCb(club_id=cb.club_id, blood=blood, page=int(page)))
    await _edit(query.message, text, builder.as_markup() if blood in BLOOD_VALUES else None)


_MEMBER_ACTIONS = {
    "open": _open, "back": _back, "edit": _choose_field, "field": _field, "blood": _set_blood,
    "sex": _set_sex, "never": _set_never, "status": _set_status, "defer": _defer, "deferdef": _defer_default,
    "remove": _ask_remove, "remove_yes": _remove,
}


# --- /add -------------------------------------------------------------------------------
# The answers live in the FSM; nothing is written until "Save", in one transaction.


async def begin_add(message: Message, state: FSMContext, session: AsyncSession, club_id: int) -> None:
    await state.clear()
    await state.update_data(club_id=club_id)
    await message.answer(_("Adding a member to <b>{club}</b>. /cancel stops at any step; nothing is saved "
                           "before you confirm.").format(club=escape(await _club_name(session, club_id))))
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
        await _add_summary(message, state, data)
        return
    _cancel_button(builder)
    sizes = {AddMember.blood_type.state: (4, 4, 1, 1), AddMember.sex.state: (2, 1, 1)}
    builder.adjust(*sizes.get(await state.get_state(), (1,)))
    await message.answer(text, reply_markup=builder.as_markup())


async def _add_summary(message: Message, state: FSMContext, data: dict[str, Any]) -> None:
    await state.set_state(AddMember.confirm)
    blood = data["blood"]
    birth = date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None
    last = date.fromisoformat(data["last_donation"]) if data.get("last_donation") else None
    lines = [
        _("<b>New member — please check</b>"),
        _("Name: {v}").format(v=escape(data["name"])),
        _("Phone: {v}").format(v=data["phone"]),
        _("Blood type: {v}").format(v=fmt_type(*(_split_blood(blood)))),
        _("Sex: {v}").format(v=fmt_sex(data.get("sex"))),
        _("Date of birth: {v}").format(v=fmt_date(birth)),
        _("Weight: {v} kg").format(v=f"{data['weight']:g}" if data.get("weight") else "—"),
        _("Last donation: {v}").format(v=fmt_date(last) if last else _("never")),
    ]
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Save"), callback_data=AddMemberCb(action="save"))
    _cancel_button(builder)
    builder.adjust(2)
    await message.answer("\n".join(lines), reply_markup=builder.as_markup())


def _split_blood(blood: str | None) -> tuple[str | None, str | None]:
    return (None, None) if not blood or blood == "unknown" else (blood[:-1], blood[-1])


async def _typed_step(message: Message, state: FSMContext, i18n: I18n, key: str, parse) -> None:
    try:
        value = parse(message.text)
    except ParseError as err:
        await message.answer(escape(render(err.text, i18n)))
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
        await message.answer(escape(render(err.text, i18n)))
        return
    data = await state.get_data()
    club_id = data["club_id"]
    existing = (await session.exec(select(Donor.id).where(Donor.phone == phone))).first()
    if existing is not None and await _member(session, club_id, existing) is not None:
        await state.clear()
        builder = InlineKeyboardBuilder()
        builder.button(text=_("Open"), callback_data=MemberCb(action="open", club_id=club_id, donor_id=existing))
        await message.answer(_("{phone} is already on your club's roster. Nothing was added.").format(phone=phone),
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
                           "roster? Their details stay as they are.").format(phone=phone),
                         reply_markup=builder.as_markup())


@router.callback_query(AddMember.blood_type, BloodCb.filter())
async def add_blood(query: CallbackQuery, callback_data: BloodCb, state: FSMContext) -> None:
    if callback_data.value not in BLOOD_VALUES | {"unknown"}:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await _edit(query.message, _("Blood type: {v}").format(v=fmt_type(*_split_blood(callback_data.value))))
    await state.update_data(blood=callback_data.value)
    await _next_add_step(query.message, state)


@router.callback_query(AddMember.sex, SexCb.filter())
async def add_sex(query: CallbackQuery, callback_data: SexCb, state: FSMContext) -> None:
    if callback_data.value not in ("M", "F"):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await _edit(query.message, _("Sex: {v}").format(v=fmt_sex(callback_data.value)))
    await state.update_data(sex=callback_data.value)
    await _next_add_step(query.message, state)


@router.message(AddMember.birth_date, F.text)
async def add_birth(message: Message, state: FSMContext, clock: Clock, i18n: I18n) -> None:
    today = local_today(clock)
    await _typed_step(message, state, i18n, "birth_date",
                      lambda t: parse_birth_date(t, today=today).isoformat())


@router.message(AddMember.weight, F.text)
async def add_weight(message: Message, state: FSMContext, i18n: I18n) -> None:
    await _typed_step(message, state, i18n, "weight", parse_weight)


@router.message(AddMember.last_donation, F.text)
async def add_last(message: Message, state: FSMContext, clock: Clock, i18n: I18n) -> None:
    today = local_today(clock)
    await _typed_step(message, state, i18n, "last_donation",
                      lambda t: parse_past_date(t, today=today).isoformat())


_SKIPPED = {AddMember.sex.state: "sex", AddMember.birth_date.state: "birth_date", AddMember.weight.state: "weight"}


@router.callback_query(AddMember.sex, AddMemberCb.filter(F.action == "skip"))
@router.callback_query(AddMember.birth_date, AddMemberCb.filter(F.action == "skip"))
@router.callback_query(AddMember.weight, AddMemberCb.filter(F.action == "skip"))
async def add_skip(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await query.message.edit_reply_markup(reply_markup=None)
    await state.update_data({_SKIPPED[await state.get_state()]: None})
    await _next_add_step(query.message, state)


@router.callback_query(AddMember.last_donation, AddMemberCb.filter(F.action == "never"))
async def add_never(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await _edit(query.message, _("Last donation: {v}").format(v=_("never")))
    await state.update_data(last_donation=None)
    await _next_add_step(query.message, state)


@router.callback_query(AddMemberCb.filter(F.action == "cancel"))
async def add_cancel(query: CallbackQuery, state: FSMContext) -> None:
    current = await state.get_state()
    if current is None or not current.startswith(AddMember.__name__):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await state.clear()
    await query.answer()
    await _edit(query.message, _("Stopped. Nothing was saved."))


@router.callback_query(AddMember.confirm, AddMemberCb.filter(F.action == "save"))
@router.callback_query(AddMember.join, AddMemberCb.filter(F.action == "join"))
async def add_save(query: CallbackQuery, state: FSMContext, session: AsyncSession, roles: Roles, clock: Clock,
                   settings: Settings) -> None:
    data = await state.get_data()
    club_id = data.get("club_id")
    if not _leads(roles, club_id):
        await state.clear()
        await _refuse(query, session, "add", club_id or 0)
        return
    now = clock()
    try:
        donor = await save_member(session, club_id, data, actor=query.from_user.id, now=now)
    except IntegrityError:
        await session.rollback()
        donor = None
    await state.clear()
    if donor is None:
        await query.answer(_("{phone} was just added by someone else. Nothing was saved.").format(
            phone=data.get("phone")), show_alert=True)
        await _edit(query.message, _("Stopped. Nothing was saved."))
        return
    await query.answer(_("Saved."))
    await _edit(query.message, _("✅ Added to the roster.") + "\n\n" + card_text(donor, local_today(clock), settings),
                card_markup(club_id, donor.id, ""))


async def save_member(session: AsyncSession, club_id: int, data: dict[str, Any], *, actor: int,
                      now) -> Donor | None:
    """One transaction: the donor (new, or the one already known by that phone), the roster
    entry, the audit row. None when the phone meanwhile landed on this roster or on another donor."""
    existing = (await session.exec(select(Donor).where(Donor.phone == data["phone"]))).first()
    if existing is not None and (existing.id != data.get("existing_id")
                                 or await _member(session, club_id, existing.id) is not None):
        return None
    donor = existing
    if donor is None:
        club = await session.get(Club, club_id)
        abo, rh = _split_blood(data.get("blood"))
        donor = Donor(
            full_name=data["name"], phone=data["phone"], abo=abo, rh=rh, sex=data.get("sex"),
            birth_date=date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None,
            weight_kg=data.get("weight"),
            last_donation_date=date.fromisoformat(data["last_donation"]) if data.get("last_donation") else None,
            # No pin from a lead: the club's location stands in, marked as approximate (as on import).
            lat=club.lat, lon=club.lon, location_approx=True, geo_cell=geo_cell(club.lat, club.lon),
            # Consent is the donor's to give, in the bot, when they link; a lead cannot give it.
            created_at=now, updated_at=now,
        )
        session.add(donor)
        await session.flush()
    session.add(ClubMembership(club_id=club_id, donor_id=donor.id, role=MemberRole.member.value, created_at=now))
    session.add(AuditLog(at=now, actor_telegram_id=actor, action="member.add", subject=f"donor:{donor.id}",
                         detail=f"club:{club_id}" + (" existing" if existing else "")))
    await session.commit()
    return donor


# --- import by upload -------------------------------------------------------------------


@router.message(F.document)
async def got_document(message: Message, roles: Roles, **data: Any) -> None:
    ctx = _ctx(data, message.from_user.id)
    document = message.document
    name = document.file_name or ""
    if Path(name).suffix.lower() not in SPREADSHEET_SUFFIXES:
        await message.answer(_("To import members, send the roster as an Excel file (.xlsx) or a CSV file "
                               "(.csv). “{name}” is neither.").format(name=escape(name or "?")))
        return
    limit_mb = ctx.settings.bot.max_upload_mb
    if document.file_size is not None and document.file_size > limit_mb * 1024 * 1024:
        await message.answer(_("This file is {size} MB; the limit is {limit} MB. Split the roster into smaller "
                               "files and send them one by one.").format(
            size=f"{document.file_size / 1024 / 1024:.1f}", limit=f"{limit_mb:g}"))
        return
    await ctx.state.clear()
    # The file_id, not the bytes: a roster can be megabytes, and Telegram keeps the file for us.
    await ctx.state.update_data(file_id=document.file_id, file_name=name)
    club_id = await _pick_club(message, ctx.session, roles, "import")
    if club_id is None:
        await ctx.state.set_state(ImportRoster.club)
        return
    await trial_import(message, ctx, club_id)


async def _import(ctx: _Ctx, club_id: int, *, dry_run: bool) -> ImportReport | str:
    """Download the file and import it (or try it); a report, or what is wrong, rendered."""
    data = await ctx.state.get_data()
    try:
        content = await ctx.bot.download(data["file_id"])
    except (TelegramAPIError, KeyError):
        return _("I could not fetch the file from Telegram. Please send it again.")
    try:
        with open_roster(content, filename=data.get("file_name"), today=ctx.today, rules=ctx.settings.eligibility,
                         region=ctx.settings.bot.phone_region) as roster:
            return await import_roster(ctx.session, club_id, roster, dry_run=dry_run, today=ctx.today,
                                       actor=ctx.actor, now=ctx.clock())
    except ParseError as err:  # RosterFileError: not a usable roster, or unreadable part-way
        text = escape(_render(err.text, ctx.i18n))
        if not dry_run:
            text += "\n" + _("Rows before that point were saved; /roster shows the result.")
        return text
    except Exception:
        if not dry_run:
            raise
        # The file is the lead's, from any program: whatever a reader library throws at an odd
        # one, the lead gets an answer (the trial wrote nothing), and the log keeps the details.
        log.exception("roster file %r could not be read", data.get("file_name"))
        return _("This file could not be read as a roster. Save it again as .xlsx or as CSV UTF-8 and send it, "
                 "or send the file /export gives as a model.")


def report_text(title: str, report: ImportReport, i18n: I18n) -> str:
    lines = [title]
    for line in report.summary(limit=REPORT_DETAILS):
        rendered = _render(line, i18n)
        if len(rendered) > REPORT_LINE_CHARS:
            rendered = rendered[:REPORT_LINE_CHARS - 1] + "…"
        lines.append(escape(rendered))
    text = "\n".join(lines)
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


async def trial_import(message: Message, ctx: _Ctx, club_id: int) -> None:
    status = await message.answer(_("⏳ Checking the file…"))
    club = escape(await _club_name(ctx.session, club_id))
    result = await _import(ctx, club_id, dry_run=True)
    if isinstance(result, str):
        await ctx.state.clear()
        await _edit(status, result)
        return
    title = _("📄 <b>{file}</b> → <b>{club}</b>").format(file=escape((await ctx.state.get_data()).get("file_name", "")),
                                                        club=club)
    text = report_text(title, result, ctx.i18n)
    if not (result.created or result.updated):
        await ctx.state.clear()
        await _edit(status, text + "\n\n" + _("Nothing to import: the roster already holds everything "
                                                 "this file can add."))
        return
    await ctx.state.set_state(ImportRoster.confirm)
    await ctx.state.update_data(club_id=club_id)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Import"), callback_data=ImportCb(action="go"))
    builder.button(text=_("Cancel"), callback_data=ImportCb(action="cancel"))
    builder.adjust(2)
    await _edit(status, text, builder.as_markup())


@router.callback_query(ImportRoster.confirm, ImportCb.filter(F.action == "go"))
async def import_confirmed(query: CallbackQuery, roles: Roles, **data: Any) -> None:
    ctx = _ctx(data, query.from_user.id)
    club_id = (await ctx.state.get_data()).get("club_id")
    if not _leads(roles, club_id):
        await ctx.state.clear()
        await _refuse(query, ctx.session, "import", club_id or 0)
        return
    await query.answer()
    await _edit(query.message, _("⏳ Importing…"))
    result = await _import(ctx, club_id, dry_run=False)
    await ctx.state.clear()
    if isinstance(result, str):
        await _edit(query.message, result)
        return
    await _edit(query.message, report_text(_("✅ <b>Imported.</b>"), result, ctx.i18n) + "\n\n"
                + _("/roster shows the club's members by blood type."))


@router.callback_query(ImportRoster.confirm, ImportCb.filter(F.action == "cancel"))
async def import_cancelled(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await _edit(query.message, _("Import cancelled. Nothing was saved."))


# --- /export and /invitelink ------------------------------------------------------------


def _file_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:40] or "club"


async def send_export(message: Message, ctx: _Ctx, club_id: int, fmt: str) -> None:
    name = await _club_name(ctx.session, club_id)
    rows = await export_roster(ctx.session, club_id, actor=ctx.actor, now=ctx.clock())  # audits roster.export
    buffer = io.BytesIO()
    write_roster(buffer, fmt, rows, lang="vi" if ctx.i18n.current_locale == "vi" else "en")
    filename = f"{_file_slug(name)}-{ctx.today:%Y-%m-%d}.{fmt}"
    builder = InlineKeyboardBuilder()
    if fmt == "xlsx":
        builder.button(text=_("CSV instead"), callback_data=ExportCb(club_id=club_id, fmt="csv"))
    await message.answer_document(
        BufferedInputFile(buffer.getvalue(), filename=filename),
        caption=_("Roster of {club}: {n} members. It holds personal and health data: keep it safe and do not "
                  "post it in groups. Send it back edited to update the roster.").format(club=escape(name),
                                                                                         n=len(rows)),
        reply_markup=builder.as_markup() if fmt == "xlsx" else None,
    )


@router.callback_query(ExportCb.filter())
async def export_other_format(query: CallbackQuery, callback_data: ExportCb, roles: Roles, **data: Any) -> None:
    ctx = _ctx(data, query.from_user.id)
    if not _leads(roles, callback_data.club_id):
        await _refuse(query, ctx.session, "export", callback_data.club_id)
        return
    if callback_data.fmt not in ("csv", "xlsx"):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await query.answer()
    await send_export(query.message, ctx, callback_data.club_id, callback_data.fmt)


async def send_invite_link(message: Message, ctx: _Ctx, club_id: int) -> None:
    try:
        invite = await create_invite(ctx.session, "donor", club_id=club_id, uses=INVITE_USES,
                                     expires_hours=INVITE_DAYS * 24, now=ctx.clock(), actor=ctx.actor)
    except DirectoryError as err:
        await message.answer(escape(render(err.text, ctx.i18n)))
        return
    me = await ctx.bot.me()
    link = deep_link(me.username or "", invite.code)
    await message.answer(
        _("🔗 Invite link for <b>{club}</b>:\n{link}\n\nShare it in your club's group. Whoever opens it registers "
          "as a donor of your club. It works for {uses} people until {date}.").format(
            club=escape(await _club_name(ctx.session, club_id)), link=link, uses=INVITE_USES,
            date=fmt_date(invite.expires_at.astimezone(VIETNAM).date()))
    )
