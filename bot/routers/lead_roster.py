"""Club leads: /roster counts the club's members by blood type; /find lists one type, a page at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import FindCb, MemberCb
from bot.keyboards import BLOOD_TYPES
from bot.routers.lead_common import (
    BLOOD_VALUES,
    LeadCtx,
    club_name,
    edit,
    expired,
    lead_router,
    leads,
    refuse,
    split_blood,
)
from bot.texts import escape, explain, fmt_date, fmt_number, fmt_type
from dispatcher.candidates import red_cell_days
from ground import eligibility as elig
from ground.eligibility import DonorFacts, assess
from models import members
from models.directory import Roles
from ground.clock import Clock, local_today
from ground.config import Settings
from ground.parsing import format_phone, whole_number

router = lead_router("lead_roster")

ROSTER_ORDER: tuple[tuple[str | None, str | None], ...] = (*BLOOD_TYPES, (None, None))


async def show_roster(message: Message, ctx: LeadCtx, club_id: int) -> None:
    await message.answer(await roster_text(ctx.session, club_id, ctx.today, ctx.settings, ctx.i18n))


async def show_type(message: Message, ctx: LeadCtx, club_id: int, blood: str) -> None:
    text, markup = await find_page(ctx.session, club_id, blood, 0, ctx.today, ctx.settings)
    await message.answer(text, reply_markup=markup)


def find_position(back: str) -> tuple[str, int] | None:
    """The /find page a member's card was opened from ("O-.2"), or None for the roster."""
    blood, _sep, page = back.partition(".")
    number = whole_number(page)
    return (blood, number) if blood in BLOOD_VALUES and number is not None else None


async def list_text(ctx: LeadCtx, club_id: int, back: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The list a member's card goes back to: its /find page, or the roster."""
    position = find_position(back)
    if position is None:
        return await roster_text(ctx.session, club_id, ctx.today, ctx.settings, ctx.i18n), None
    return await find_page(ctx.session, club_id, *position, ctx.today, ctx.settings)


# --- /roster ----------------------------------------------------------------------------


@dataclass
class TypeCounts:
    members: int = 0
    ready: int = 0  # likely able to give today
    off: int = 0  # paused or deferred right now
    unlinked: int = 0  # not on Telegram yet

    def add(self, other: TypeCounts) -> None:
        self.members += other.members
        self.ready += other.ready
        self.off += other.off
        self.unlinked += other.unlinked


async def roster_counts(session: AsyncSession, club_id: int, today: date,
                        rules) -> dict[tuple[str | None, str | None], TypeCounts]:
    """Counts by blood type for one club: one query for the columns, eligibility assessed here."""
    counts = {key: TypeCounts() for key in ROSTER_ORDER}
    rows = await members.roster_facts(session, club_id)
    given = await red_cell_days(session, [row.id for row in rows], today)
    for row in rows:
        key = (row.abo, row.rh) if row.abo and row.rh else (None, None)
        verdict = assess(DonorFacts.of(row, given.get(row.id, ())), today, rules)
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
        total.add(c)
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
        _("🩸 <b>{club}</b> — {n} member", "🩸 <b>{club}</b> — {n} members", total.members).format(club=escape(await club_name(session, club_id)),
                                                  n=num(total.members)),
        f"<pre>{escape(body)}</pre>",
        _("Ready: likely able to give today. Off: paused or deferred. No TG: not on Telegram yet."),
        _("/find O- lists the members of one type."),
    ])


# --- /find ------------------------------------------------------------------------------


async def find_page(session: AsyncSession, club_id: int, blood: str, page: int, today: date,
                    settings: Settings) -> tuple[str, InlineKeyboardMarkup | None]:
    """Members of one exact type, likely-eligible first, then by when they may give again."""
    abo, rh = split_blood(blood)
    rows = await members.members_of_type(session, club_id, abo, rh)
    club = escape(await club_name(session, club_id))
    type_text = fmt_type(abo, rh)
    if not rows:
        return _("No members with blood type {type} in <b>{club}</b>.").format(type=type_text, club=club), None
    rated = []
    given = await red_cell_days(session, [row.id for row in rows], today)
    for row in rows:
        facts = DonorFacts.of(row, given.get(row.id, ()))
        rated.append((row, facts, assess(facts, today, settings.eligibility)))
    rated.sort(key=lambda r: (not r[2].eligible, r[2].eligible_from or date.max, r[0].full_name.casefold()))
    size = settings.bot.page_size
    pages = math.ceil(len(rated) / size)
    page = min(max(page, 0), pages - 1)
    lines = [_("🩸 <b>{type}</b> in <b>{club}</b>: {n} member", "🩸 <b>{type}</b> in <b>{club}</b>: {n} members",
                len(rated)).format(type=type_text, club=club, n=len(rated))]
    if pages > 1:
        lines[0] += " · " + _("page {page}/{pages}").format(page=page + 1, pages=pages)
    builder = InlineKeyboardBuilder()
    for number, (row, facts, verdict) in enumerate(rated[page * size:(page + 1) * size], page * size + 1):
        last = (_("last gave {date}").format(date=fmt_date(row.last_donation_date)) if row.last_donation_date
                else _("never gave"))
        lines.append(f"\n{number}. <b>{escape(row.full_name)}</b> · {format_phone(row.phone)}")
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
    if not leads(roles, cb.club_id):
        await refuse(query, session, "find", cb.club_id)
        return
    if cb.blood not in BLOOD_VALUES:
        await expired(query)
        return
    await query.answer()
    text, markup = await find_page(session, cb.club_id, cb.blood, cb.page, local_today(clock, settings.bot.tz), settings)
    await edit(query.message, text, markup)
