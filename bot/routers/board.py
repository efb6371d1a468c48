"""The hospital desk in chat: the live board's buttons, ``/board N`` and ``/report N`` (issue 4).

The board's content is drawn by the sender (edits coalesced within Telegram's limits)
and, right after a press, by these handlers so the presser sees the result at once.
Confirmations and choices replace the board's buttons in place instead of adding
messages (UX.md). Every press is checked against the request's hospital: in a group
anyone can press, and callback data can be forged (DOMAIN.md §8). Nothing here shows
a phone number in a group: the call list goes to the presser's private chat.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, ForceReply, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import desc
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.board_view import (
    CANCEL_REASONS,
    COMPONENTS,
    RECEIVING,
    board_keyboard,
    board_text,
    cancel_keyboard,
    confirm_keyboard,
    deferral_keyboard,
    donor_actions_keyboard,
    donors_keyboard,
    report_text,
    units_keyboard,
)
from bot.callbacks import BoardCb
from bot.charts import request_chart
from bot.commands import command_filter
from bot.i18n import render
from bot.inplace import edit_markup, edit_text
from bot.render import call_list_lines
from bot.routing import RouterTemplate
from bot.states import DeskDeferral
from bot.texts import component_name, escape
from dispatcher.board import is_group
from dispatcher.desk import DeskOutcome, DeskResult
from dispatcher.engine import Dispatcher as DispatchEngine
from models import stats
from models.dispatch_tables import BloodRequest
from models.directory import Roles
from models.tables import Hospital
from ground.clock import Clock, local_today
from ground.config import Settings
from ground.parsing import ParseError, format_blood_type, format_phone, parse_future_date, whole_number

log = logging.getLogger(__name__)
router = RouterTemplate("board")


# ------------------------------------------------------------------ commands
async def _request_of_staff(message: Message, command: CommandObject, session: AsyncSession, roles: Roles | None,
                            *, receiving: bool) -> BloodRequest | None:
    """The request named by the argument, or the staff's latest one; answers and returns None when not allowed."""
    hospitals = roles.staff_hospital_ids if roles else []
    if not hospitals:
        await message.answer(_("This command is for hospital staff. Staff join through an invite link from the "
                               "Red Cross."))
        return None
    arg = (command.args or "").strip().lstrip("#")
    if arg:
        request_id = whole_number(arg)
        if request_id is None:
            await message.answer(_("Give the request number, e.g. /board 12."))
            return None
        req = await session.get(BloodRequest, request_id)
        if req is None or req.hospital_id not in hospitals:
            await message.answer(_("There is no request #{id} for your hospital.").format(id=arg))
            return None
        return req
    q = select(BloodRequest).where(BloodRequest.hospital_id.in_(hospitals))
    if receiving:
        q = q.where(BloodRequest.state.in_(RECEIVING))
    req = (await session.exec(q.order_by(desc(BloodRequest.id)).limit(1))).first()
    if req is None:
        await message.answer(_("Your hospital has no open request. /urgent posts one."))
    return req


@router.message(command_filter("board"))
async def board_command(message: Message, command: CommandObject, session: AsyncSession, roles: Roles | None,
                        engine: DispatchEngine, i18n: I18n) -> None:
    req = await _request_of_staff(message, command, session, roles, receiving=not command.args)
    if req is None:
        return
    await post_board(message, req.id, engine, i18n)


async def post_board(message: Message, request_id: int, engine: DispatchEngine, i18n: I18n) -> None:
    """Send the request's board into this chat; from now on it is edited in place."""
    params = await engine.board_params(request_id, message.chat.id)
    sent = await message.answer(board_text(params, _), reply_markup=board_keyboard(params, _))
    await engine.attach_board(request_id, message.chat.id, sent.message_id, i18n.current_locale)
    # Whatever changed between the snapshot and the attach is shown by one queued edit.
    await engine.refresh(request_id)


@router.message(command_filter("report"))
async def report_command(message: Message, command: CommandObject, session: AsyncSession, roles: Roles | None,
                         engine: DispatchEngine) -> None:
    req = await _request_of_staff(message, command, session, roles, receiving=False)
    if req is None:
        return
    await _send_report(message, req, message.from_user.id, engine, session)


async def _send_report(message: Message, req: BloodRequest, by: int, engine: DispatchEngine,
                       session: AsyncSession) -> None:
    """The after-action summary, then its timeline as a picture for the hospital's records (issue 16)."""
    result = await engine.desk.report(req.id, by=by)
    if not result.ok:
        await message.answer(_desk_refusal(result))
        return
    await message.answer(report_text(result.detail, _))
    times = await stats.request_times(session, req.id)
    if times is not None:
        title = _("Request #{id}: {type} {component} × {units}").format(
            id=req.id, type=format_blood_type(req.abo, req.rh), component=component_name(req.component, _),
            units=req.units)
        await message.answer_photo(BufferedInputFile(request_chart(times, title, engine.tz, _),
                                                     filename=f"request-{req.id}.png"))


# ------------------------------------------------------------------ buttons
@router.callback_query(BoardCb.filter())
async def board_button(query: CallbackQuery, callback_data: BoardCb, session: AsyncSession, roles: Roles | None,
                       engine: DispatchEngine, settings: Settings, bot: Bot, state: FSMContext) -> None:
    cb = callback_data
    req = await session.get(BloodRequest, cb.r)
    if req is None:
        await query.answer(_("This request no longer exists."), show_alert=True)
        return
    if cb.a == "calls":  # staff of that hospital, or club leads (for their own club's members)
        await _call_list(query, req, engine, bot)
        return
    if req.hospital_id not in (roles.staff_hospital_ids if roles else []):
        hospital = await session.get(Hospital, req.hospital_id)
        await query.answer(_("Only staff of {hospital} can use this board.").format(hospital=hospital.name),
                           show_alert=True)
        return
    await _staff_press(query, cb, req, engine, settings, state, session)


async def _staff_press(query: CallbackQuery, cb: BoardCb, req: BloodRequest, engine: DispatchEngine,
                       settings: Settings, state: FSMContext, session: AsyncSession) -> None:
    """A press by staff of the request's hospital: the desk acts, and the board shows the result in place."""
    a, by = cb.a, query.from_user.id
    if a in ("refresh", "back"):
        if a == "refresh":
            await engine.refresh(req.id)
        await _redraw(query, engine, req.id)
        await query.answer(_("Up to date.") if a == "refresh" else None)
    elif a == "report":
        await query.answer()
        await _send_report(query.message, req, by, engine, session)
    elif req.state not in RECEIVING and a not in ("donors", "pick", "undo"):  # a closing record may be undone
        await query.answer(_("This request is closed. /report {id} shows its summary.").format(id=req.id),
                           show_alert=True)
        if a == "nmark":
            await _buttons(query, None)
        else:
            await _redraw(query, engine, req.id)
    elif a == "units":
        await _buttons(query, units_keyboard(req.id, req.units, settings.dispatch.max_units, _))
    elif a == "addu":
        add = whole_number(cb.x) or 0
        result = await engine.desk.add_units(req.id, by=by, expected_units=cb.v, add=add)
        await _after(query, engine, result, _("Now {n} unit needed; asking more donors.", "Now {n} units needed; asking more donors.",
                                         result.detail.get("units", 2)).format(n=result.detail.get("units")) if result.ok else None)
    elif a in ("covered", "close"):
        await _buttons(query, confirm_keyboard(req.id, a, _))
    elif a == "covered_yes":
        result = await engine.desk.mark_covered(req.id, by=by)
        await _after(query, engine, result, _("No more donors will be asked. Those coming still come."))
    elif a == "close_yes":
        result = await engine.desk.close(req.id, by=by)
        await _after(query, engine, result, _("Closed. Donors still expected have been thanked and released."))
    elif a == "cancel":
        await _buttons(query, cancel_keyboard(req.id, _))
    elif a == "cancel_yes":
        reason = cb.x if cb.x in CANCEL_REASONS else "other"
        result = await engine.desk.cancel(req.id, by=by, reason=reason)
        await _after(query, engine, result, _("Cancelled. Everyone asked or coming has been told."))
    elif a in ("donors", "pick", "defer"):
        await _donor_choice(query, cb, req, engine)
    elif a == "defer_other":
        await _ask_deferral_date(query, req, cb.v, state)
    elif a == "undo":
        result = await engine.desk.undo(req.id, cb.v, by=by)
        await _after(query, engine, result, _("Undone: the record of {name} is as it was.").format(
            name=result.detail.get("name", "")))
    elif a in ("mark", "nmark"):  # nmark: from a nudge message, which keeps its text
        await _mark(query, cb, req, engine)
    else:
        await query.answer(_("This button is no longer active."), show_alert=True)


async def _donor_choice(query: CallbackQuery, cb: BoardCb, req: BloodRequest, engine: DispatchEngine) -> None:
    """The donors who said available ("donors"), one donor's marks ("pick"), or her deferral reasons ("defer")."""
    donors = (await engine.board_params(req.id, query.message.chat.id))["donors"]
    if cb.a == "donors":
        if donors:
            await _buttons(query, donors_keyboard(req.id, donors, _))
        else:
            await query.answer(_("Nobody has said available yet."), show_alert=True)
        return
    donor = next((d for d in donors if d["contact_id"] == cb.v), None)
    if donor is None:
        await query.answer(_("This donor is not on this request."), show_alert=True)
        return
    if cb.a == "defer":
        await _buttons(query, deferral_keyboard(req.id, donor["contact_id"], _))
    else:
        component = cb.x if cb.x in COMPONENTS else None
        await _buttons(query, donor_actions_keyboard(req.id, donor, req.component, _, component=component))


async def _mark(query: CallbackQuery, cb: BoardCb, req: BloodRequest, engine: DispatchEngine) -> None:
    """Arrived, not come, deferred or donated: from the board ("mark"), or from a nudge ("nmark"), whose text stays."""
    outcome, volume, component, category = parse_mark(cb.x)
    result = await engine.desk.mark(req.id, cb.v, outcome, by=query.from_user.id, volume_ml=volume,
                                    component=component, category=category)
    name = result.detail.get("name", "")
    done = {"arrived": _("{name} marked as arrived."),
            "no_show": _("{name} marked as not come; others will be asked if needed."),
            "deferred": _("{name} could not donate: deferred until {date}. Others will be asked if "
                          "needed.").format(name="{name}", date=result.detail.get("until", "")),
            "donated": _("Donation by {name} recorded. Thank you!")}.get(outcome, "")
    if cb.a == "nmark":
        await query.answer(done.format(name=name) if result.ok else _desk_refusal(result),
                           show_alert=not result.ok)
        if result.ok or result.outcome in (DeskOutcome.duplicate, DeskOutcome.closed):
            await _buttons(query, None)
    else:
        await _after(query, engine, result, done.format(name=name))


def parse_mark(x: str) -> tuple[str, int | None, str | None, str | None]:
    """A mark button's data → (outcome, volume, component, deferral category).

    "donated350" (the request's component), "donated350.whole_blood", "donated0.platelets" (apheresis: no
    volume), "deferred.4w", or a plain outcome.
    """
    head, _sep, tail = x.partition(".")
    if head.startswith("donated") and (ml := whole_number(head[7:])) is not None:
        return "donated", ml or None, tail or None, None
    if head == "deferred":
        return "deferred", None, None, tail or None
    return head, None, None, None


async def _ask_deferral_date(query: CallbackQuery, req: BloodRequest, contact_id: int, state: FSMContext) -> None:
    """"Other — until a date": the date is typed, as a reply to this prompt (a group hears only replies)."""
    await query.answer()
    user = query.from_user
    mention = f'<a href="tg://user?id={user.id}">{escape(user.first_name or "")}</a>'
    prompt = await query.message.answer(
        mention + ", " + _("reply with the first day this donor may give again (DD/MM/YYYY, within two years), "
                           "or /cancel. Only the date is kept, never the reason."),
        reply_markup=ForceReply(force_reply=True, selective=True))
    await state.set_state(DeskDeferral.until)
    await state.update_data(desk_r=req.id, desk_c=contact_id, desk_prompt=prompt.message_id)


@router.message(DeskDeferral.until, F.text, ~F.text.startswith("/"))
async def deferral_date(message: Message, state: FSMContext, engine: DispatchEngine, clock: Clock,
                        i18n: I18n) -> None:
    data = await state.get_data()
    if message.chat.type != "private":
        reply_to = message.reply_to_message
        if reply_to is None or reply_to.message_id != data.get("desk_prompt"):
            return  # the group's own conversation
    try:
        until = parse_future_date(message.text, today=local_today(clock, engine.tz))
    except ParseError as err:
        await message.answer(render(err.text, i18n) + "\n" + _("Try again, or /cancel."))
        return
    result = await engine.desk.mark(data["desk_r"], data["desk_c"], "deferred", by=message.from_user.id,
                               category="other", until=until)
    if not result.ok and result.outcome is DeskOutcome.bad_deferral:
        await message.answer(_desk_refusal(result) + "\n" + _("Try again, or /cancel."))
        return
    await state.clear()
    if result.ok:
        await message.answer(_("{name} could not donate: deferred until {date}. Others will be asked if "
                               "needed.").format(name=escape(result.detail["name"]), date=result.detail["until"]))
    else:
        await message.answer(_desk_refusal(result))


async def _after(query: CallbackQuery, engine: DispatchEngine, result: DeskResult, done: str | None) -> None:
    await query.answer(done if result.ok else _desk_refusal(result), show_alert=not result.ok)
    await _redraw(query, engine, result.request_id)


def _desk_refusal(result: DeskResult) -> str:
    d = result.detail
    return {
        DeskOutcome.duplicate: _("Already done — the board shows the current state."),
        DeskOutcome.closed: _("This request is closed; nothing was changed."),
        DeskOutcome.not_staff: _("Only staff of the request's hospital can do this."),
        DeskOutcome.not_found: _("This request or donor was not found."),
        DeskOutcome.not_accepted: _("This donor has not said they are coming, so nothing was recorded."),
        DeskOutcome.bad_volume: _("Not recorded: {ml} ml is the most this donor may give for their weight.").format(
            ml=d.get("max", "?")),
        DeskOutcome.bad_units: _("A request can need at most {max} units.").format(max=d.get("max", "?")),
        DeskOutcome.bad_deferral: {
            "past": _("Not recorded: the end of a deferral must be a day after today."),
            "too_long": _("Not recorded: a deferral in these categories lasts at most 12 months; for a longer "
                          "one choose “Other — until a date” (within two years)."),
        }.get(d.get("why", ""), _("Not recorded: choose one of the categories.")),
        DeskOutcome.nothing_to_undo: _("There is nothing to undo for this donor."),
        DeskOutcome.too_late: _("Not undone: a record can be undone only within {max} minutes of making it. Please "
                      "correct it with your blood bank's records.").format(max=d.get("minutes", 10)),
        DeskOutcome.committed_elsewhere: _("Not undone: this donor has since said she is coming for another request."),
    }.get(result.outcome, _("Nothing was changed."))


async def _buttons(query: CallbackQuery, markup: InlineKeyboardMarkup | None) -> None:
    if markup is not None:
        await query.answer()
    try:
        await edit_markup(query.message, markup)
    except TelegramBadRequest as exc:  # an old or deleted board: the next change posts it anew
        log.info("board buttons not edited: %s", exc)


async def _redraw(query: CallbackQuery, engine: DispatchEngine, request_id: int) -> None:
    """Draw the board now, for the presser; the queued edits keep it current afterwards."""
    try:
        params = await engine.board_params(request_id, query.message.chat.id)
        if params is not None:
            await edit_text(query.message, board_text(params, _), reply_markup=board_keyboard(params, _))
    except TelegramBadRequest as exc:
        if "not modified" not in str(exc):
            log.info("board not redrawn: %s", exc)


async def _call_list(query: CallbackQuery, req: BloodRequest, engine: DispatchEngine, bot: Bot) -> None:
    """Who to phone, to the presser privately, never into a group: a lead gets her own club's members
    the bot cannot message; staff get the club leads to ring and the donors who accepted (DOMAIN.md §7)."""
    result = await engine.desk.call_list_for(req.id, by=query.from_user.id)
    if not result.ok:
        await query.answer(_("The call list is for staff of this hospital and club leads."), show_alert=True)
        return
    entries, leads, accepted = (result.detail.get(k) or [] for k in ("entries", "leads", "accepted"))
    if not (entries or leads or accepted):
        await query.answer(_("Nobody to phone: every compatible member can be messaged by the bot."),
                           show_alert=True)
        return
    parts = []
    if entries:
        parts.append(_("📋 Call list for request #{id}: compatible members the bot cannot message. "
                       "Please phone them:").format(id=req.id) + call_list_lines((e["name"], e["phone"], e["type"]) for e in entries))
    if leads:
        parts.append(_("📋 Request #{id}: some compatible members can only be reached by phone, through their "
                       "club. Please ring the club leads:").format(id=req.id) + lead_lines(leads))
    if accepted:
        parts.append(_("Donors who said available for request #{id}:").format(id=req.id)
                     + call_list_lines((e["name"], e["phone"], e["type"]) for e in accepted))
    try:
        await bot.send_message(query.from_user.id, "\n\n".join(parts))
    except TelegramForbiddenError:
        await query.answer(_("Open a private chat with me first (tap my name, then Start), then press again."),
                           show_alert=True)
        return
    await query.answer(_("Sent to you in a private chat.") if is_group(query.message.chat.id) else None)


def lead_lines(leads: list[dict]) -> str:
    lines = []
    for lead in leads:
        contact = format_phone(lead.get("phone")) or (f"@{lead['username']}" if lead.get("username") else "")
        lines.append("\n• " + _("{club}: {lead} {contact} — {count} member to phone", "{club}: {lead} {contact} — {count} members to phone",
          lead["members"]).format(
            club=escape(lead["club"]), lead=escape(lead.get("name") or "?"), contact=escape(contact),
            count=lead["members"]).replace("  ", " "))
    return "".join(lines)