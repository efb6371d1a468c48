"""Leads and staff: /monthly on|off — last month's report on the first of each month (issue 16).

The reports themselves are written by dispatcher.monthly_reports and drawn when sent
(bot.monthly_report); here a person only says whether she wants them.
"""

from __future__ import annotations

from aiogram import F
from aiogram.filters import CommandObject, Filter
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import gettext as _
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.commands import command_filter
from bot.routing import RouterTemplate
from bot.texts import escape
from dispatcher.reminders import Reminders
from ground.clock import Clock
from ground.config import Settings
from models.audit import audit
from models.directory import Roles
from models.tables import Club, Hospital, TelegramUser

router = RouterTemplate("monthly")
router.message.filter(F.chat.type == "private")

ON = ("on", "bật", "bat")
OFF = ("off", "tắt", "tat")


class LeadsOrStaff(Filter):
    async def __call__(self, event: TelegramObject, roles: Roles | None = None) -> bool:
        return bool(roles and (roles.lead_club_ids or roles.staff_hospital_ids))


@router.message(command_filter("monthly"), LeadsOrStaff())
async def monthly(message: Message, command: CommandObject, session: AsyncSession, roles: Roles,
                  settings: Settings, clock: Clock, reminders: Reminders) -> None:
    arg = (command.args or "").strip().lower()
    user = await session.get(TelegramUser, message.from_user.id)
    assert user is not None  # written by UserMiddleware for every private chat
    at = settings.reminders.monthly_time
    if arg in ON:
        if user.monthly_report_since is None:
            user.monthly_report_since = clock()
            audit(session, user.telegram_id, "monthly_report.on", f"user:{user.telegram_id}")
            await session.commit()
            reminders.poke()  # the first report's time is armed now, not at the next unrelated wake-up
        await message.answer(_("📅 On the first of each month at {time} you will receive last month's report "
                               "(chart, figures and workbook) for: {places}.").format(
            time=at, places=await _places(session, roles)) + "\n" + _("/monthly off stops them."))
    elif arg in OFF:
        if user.monthly_report_since is not None:
            user.monthly_report_since = None
            audit(session, user.telegram_id, "monthly_report.off", f"user:{user.telegram_id}")
            await session.commit()
        await message.answer(_("The monthly reports are stopped. /monthly on starts them again."))
    elif not arg:
        status = (_("You receive last month's report on the first of each month at {time}.")
                  if user.monthly_report_since is not None
                  else _("You do not receive the monthly report.")).format(time=at)
        await message.answer(status + "\n" + _("/monthly on or /monthly off to change it; /stats 11/2026 shows "
                                               "any month now."))
    else:
        await message.answer(_("Usage: /monthly on to receive last month's report on the first of each month, "
                               "/monthly off to stop it."))


async def _places(session: AsyncSession, roles: Roles) -> str:
    clubs = (await session.exec(select(Club.name).where(col(Club.id).in_(roles.lead_club_ids)))).all()
    hospitals = (await session.exec(select(Hospital.name).where(col(Hospital.id).in_(roles.staff_hospital_ids)))).all()
    return ", ".join(escape(n) for n in [*clubs, *hospitals])
