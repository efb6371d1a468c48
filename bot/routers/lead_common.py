"""What the club leads' routers share: who is a lead, which club, refusing a press, editing in place.

The leads' journeys: lead.py (the commands, and the club when a lead has several),
lead_roster.py (/roster, /find), lead_members.py (a member's card: edit, remove),
lead_add.py (/add) and lead_files.py (imports by upload, /export, /invitelink).

Callback data can be forged (DOMAIN.md §8): every press is re-checked — does the
presser lead the club the button names, and is the member on that club's roster? —
before anything is read or changed. A refused press gets a show_alert and an
``access.refused`` audit row, and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiogram import Bot, F
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, MaybeInaccessibleMessage, Message, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import LeadClubCb
from bot.inplace import edit_text
from bot.keyboards import BLOOD_VALUES, split_blood  # noqa: F401  (re-exported to the lead routers)
from bot.routing import RouterTemplate
from dispatcher.reminders import Reminders
from models import members
from models.audit import audit
from models.directory import Roles
from ground.clock import Clock, local_today
from ground.config import Settings

log = logging.getLogger(__name__)

class IsLead(Filter):
    """Lets only club leads in, so everyone else's /roster falls through to fallback.py's refusal."""

    async def __call__(self, event: TelegramObject, roles: Roles | None = None) -> bool:
        return bool(roles and roles.lead_club_ids)


def lead_router(name: str) -> RouterTemplate:
    router = RouterTemplate(name)
    router.message.filter(F.chat.type == "private", IsLead())
    # Callbacks are not filtered by role: a non-lead's (forged) press must be refused with an
    # alert, which each handler does after checking the club.
    router.callback_query.filter(F.message.chat.type == "private")
    return router


@dataclass
class LeadCtx:
    """What the journeys need, whether they start from a command or a button."""

    session: AsyncSession
    state: FSMContext
    settings: Settings
    clock: Clock
    i18n: I18n
    bot: Bot
    actor: int
    reminders: Reminders | None = None  # poked after a member's dates or status change

    @property
    def today(self) -> date:
        return local_today(self.clock, self.settings.bot.tz)


def lead_ctx(data: dict[str, Any], actor: int) -> LeadCtx:
    return LeadCtx(data["session"], data["state"], data["settings"], data["clock"], data["i18n"], data["bot"],
                   actor, data.get("reminders"))


def leads(roles: Roles | None, club_id: int | None) -> bool:
    return roles is not None and club_id is not None and club_id in roles.lead_club_ids


async def club_name(session: AsyncSession, club_id: int) -> str:
    return await members.club_name(session, club_id) or "—"


async def pick_club(message: Message, session: AsyncSession, roles: Roles, command: str,
                    value: str = "") -> int | None:
    """The lead's only club, or None after asking which one with buttons."""
    if len(roles.lead_club_ids) == 1:
        return roles.lead_club_ids[0]
    builder = InlineKeyboardBuilder()
    for club_id, name in await members.named_clubs(session, roles.lead_club_ids):
        builder.button(text=name[:60], callback_data=LeadClubCb(command=command, club_id=club_id, value=value))
    builder.adjust(1)
    await message.answer(_("Which club?"), reply_markup=builder.as_markup())
    return None


async def refuse(query: CallbackQuery, session: AsyncSession, what: str, club_id: int,
                 donor_id: int | None = None, text: str | None = None) -> None:
    """A press by someone who does not lead the club, or for a member not on its roster."""
    log.warning("refused %s by %s for club %s donor %s", what, query.from_user.id, club_id, donor_id)
    subject = f"donor:{donor_id}" if donor_id else f"club:{club_id}"
    audit(session, query.from_user.id, "access.refused", subject, f"{what} club:{club_id}")
    await session.commit()
    await query.answer(text or _("Only a lead of this member's club can do this."), show_alert=True)


async def expired(query: CallbackQuery) -> None:
    """A button from an earlier step, or one whose data no screen makes."""
    await query.answer(_("This button is no longer active."), show_alert=True)


async def edit(message: MaybeInaccessibleMessage | None, text: str,
               markup: InlineKeyboardMarkup | None = None) -> None:
    """The leads' screens are edited in place through bot/inplace.py, like every pressed message."""
    await edit_text(message, text, reply_markup=markup)
