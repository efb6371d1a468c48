"""A donor's one-tap answer to a call. The dispatcher checks that the button is theirs."""

from __future__ import annotations

from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from bot.callbacks import AnswerCb
from bot.routing import RouterTemplate
from dispatcher.engine import Dispatcher as DispatchEngine

router = RouterTemplate("answers")


@router.callback_query(AnswerCb.filter())
async def answer(query: CallbackQuery, callback_data: AnswerCb, engine: DispatchEngine) -> None:
    if callback_data.a not in ("y", "n"):
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    result = await engine.record_answer(
        callback_data.r, "available" if callback_data.a == "y" else "declined", callback_data.t,
        telegram_id=query.from_user.id,
    )
    if result.outcome == "accepted":
        await query.answer(_("Thank you! The hospital is expecting you."))
    elif result.outcome == "declined":
        await query.answer(_("Thank you for answering."))
    elif result.outcome == "duplicate":
        await query.answer(_("Your answer is already recorded. Thank you!"))
    elif result.outcome == "closed":
        await query.answer(_("Thank you! This request is already covered or closed — no need to come."),
                           show_alert=True)
    elif result.outcome == "committed_elsewhere":
        await query.answer(_("Thank you! You are already expected for another request, so we will not "
                             "count you twice."), show_alert=True)
    else:
        await query.answer(_("This button is not for you."), show_alert=True)
