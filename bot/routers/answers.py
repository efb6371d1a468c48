"""A donor's one-tap answer to a call. The dispatcher checks that the button is theirs."""

from __future__ import annotations

from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from bot.callbacks import AnswerCb
from bot.inplace import edit_markup
from bot.render import progress_keyboard
from bot.routing import RouterTemplate
from dispatcher.engine import AnswerOutcome, Dispatcher as DispatchEngine

router = RouterTemplate("answers")
ANSWERS = {"y": "available", "n": "declined", "w": "en_route", "h": "arrived", "x": "withdraw"}
PROGRESS = ("en_route", "arrived")


@router.callback_query(AnswerCb.filter())
async def answer(query: CallbackQuery, callback_data: AnswerCb, engine: DispatchEngine) -> None:
    answer = ANSWERS.get(callback_data.a)
    if answer is None:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    result = await engine.record_answer(callback_data.r, answer, callback_data.t, telegram_id=query.from_user.id)
    if result.outcome in (AnswerOutcome.en_route, AnswerOutcome.arrived) or (result.outcome is AnswerOutcome.duplicate and answer in PROGRESS):
        # The buttons move on with her: "on my way" gives way to "I've arrived", then to nothing.
        await edit_markup(query.message, progress_keyboard(callback_data.r, callback_data.t, answer, _))
        await query.answer(_("Thank you! The hospital can see you are on your way.") if answer == "en_route"
                           else _("Thank you! The hospital knows you have arrived."))
        return
    if result.outcome is AnswerOutcome.accepted:
        await query.answer(_("Thank you! The hospital is expecting you."))
    elif result.outcome is AnswerOutcome.declined:
        await query.answer(_("Thank you for answering."))
    elif result.outcome is AnswerOutcome.withdrew:
        await query.answer(_("Thank you for letting us know. We are asking someone else."))
    elif result.outcome is AnswerOutcome.duplicate and answer == "withdraw":
        await query.answer(_("You have already told us you can't come. Thank you!"), show_alert=True)
    elif result.outcome is AnswerOutcome.already_arrived:
        await query.answer(_("You are marked as arrived: please tell the hospital staff at reception."),
                           show_alert=True)
    elif result.outcome is AnswerOutcome.already_donated:
        await query.answer(_("Your donation is already recorded — thank you! Nothing to cancel."), show_alert=True)
    elif result.outcome is AnswerOutcome.duplicate:
        await query.answer(_("Your answer is already recorded. Thank you!"))
    elif result.outcome is AnswerOutcome.closed:
        await query.answer(_("Thank you! This request is already covered or closed — no need to come."),
                           show_alert=True)
    elif result.outcome is AnswerOutcome.committed_elsewhere:
        await query.answer(_("Thank you! You are already expected for another request, so we will not "
                             "count you twice."), show_alert=True)
    else:
        await query.answer(_("This button is not for you."), show_alert=True)
