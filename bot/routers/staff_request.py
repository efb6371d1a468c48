"""Hospital staff: the guided ``/request``, one question at a time, then a confirmation.

Blood type → component → units → urgency (or a deadline first) → for an Rh− patient,
whether Rh+ donors may be asked → an optional note → confirm. One form message is
edited step by step (UX.md: edit in place); a typed answer moves the form below it.

Urgency and deadline: a deadline does not choose the urgency. After the time is typed,
the urgency buttons come back with the deadline shown, and the urgency is always an
explicit tap, because it decides how fast waves go and whether the night holds the
request. Without a deadline the urgency's default applies ([dispatch] deadline_hours),
and the confirmation shows that time.

Groups: under privacy mode the bot hears only commands and replies to its own messages
(DOMAIN.md §8), so every choice is a button, and a typed step (a deadline, a note, a
number of units other than the buttons) asks with a ForceReply addressed to that
person; only a reply to that very prompt counts. The FSM is per person per chat
(aiogram's default), so two nurses in one group fill in two forms.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from aiogram import F
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, ForceReply, InlineKeyboardMarkup, Message, ReplyParameters
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.callbacks import RequestCb
from bot.commands import command_filter
from bot.i18n import render
from bot.inplace import edit_text, remove_buttons
from bot.keyboards import BLOOD_TYPES, BLOOD_VALUES, split_blood
from bot.render import component_name, urgency_name
from bot.routers.staff import IsStaff, answer_in_chat, deadline_warning, post_request
from bot.routing import RouterTemplate
from bot.states import RequestFlow
from bot.texts import escape
from dispatcher.compat import COMPONENTS
from dispatcher.engine import Dispatcher as DispatchEngine
from models.directory import Roles
from models.tables import Hospital
from ground.clock import Clock
from ground.config import Settings
from ground.parsing import ParseError, format_blood_type, whole_number
from ground.request_form import MAX_NOTE_LENGTH, clean_note, format_local, parse_deadline, parse_units

router = RouterTemplate("staff_request")

UNIT_BUTTONS = (1, 2, 3, 4, 6)
COMPONENT_ORDER = ("red_cells", "whole_blood", "platelets", "plasma")  # the usual emergency component first
URGENCIES = ("critical", "urgent", "planned")
# Which buttons each step accepts: callback data can be forged or come from an older screen.
STEP_ACTIONS = {
    RequestFlow.blood_type.state: {"bt"},
    RequestFlow.component.state: {"comp"},
    RequestFlow.units.state: {"units", "units_other"},
    RequestFlow.urgency.state: {"urg", "deadline"},
    RequestFlow.deadline.state: {"back"},
    RequestFlow.rh_positive.state: {"rh"},
    RequestFlow.note.state: {"skip", "note_write"},
    RequestFlow.confirm.state: {"send"},
}


class Ctx:
    """What a screen needs besides the form: where it is shown and the settings."""

    def __init__(self, *, group: bool, settings: Settings, clock: Clock, hospitals: list[Hospital]) -> None:
        self.group = group
        self.settings = settings
        self.clock = clock
        self.hospitals = hospitals
        self.tz = settings.bot.tz

    @property
    def max_units(self) -> int:
        return self.settings.dispatch.max_units


def _cap(text: str) -> str:
    """"🚨 cấp cứu" → "🚨 Cấp cứu": a button label starts with a capital."""
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1:]
    return text


def _deadline(rq: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(rq["deadline"]) if rq.get("deadline") else None


# --- screens -------------------------------------------------------------------------------


def summary(rq: dict[str, Any], ctx: Ctx, *, final: bool = False) -> list[str]:
    lines = []
    if final and len(ctx.hospitals) == 1:
        lines.append(_("Hospital: {name}").format(name=escape(ctx.hospitals[0].name)))
    if "abo" in rq:
        lines.append(_("Blood type: <b>{type}</b>").format(type=format_blood_type(rq["abo"], rq["rh"])))
    if "component" in rq:
        lines.append(_("Component: {component}").format(component=component_name(rq["component"], _)))
    if "units" in rq:
        lines.append(_("Units: {n}").format(n=rq["units"]))
    if "urgency" in rq:
        lines.append(_("Urgency: {urgency}").format(urgency=urgency_name(rq["urgency"], _)))
    deadline = _deadline(rq)
    if deadline is not None:
        lines.append(_("Needed by: {time}").format(time=format_local(deadline, ctx.tz)))
    elif final:
        hours = ctx.settings.dispatch.deadline_hours.of(rq["urgency"])
        default = ctx.clock() + timedelta(hours=hours)
        lines.append(_("Needed by: {time} (the default for this urgency)").format(time=format_local(default, ctx.tz)))
    if "rh_ok" in rq:
        lines.append(_("Rh+ donors: asked only if no Rh− donor comes (doctor's approval)") if rq["rh_ok"]
                     else _("Rh+ donors: not asked"))
    if rq.get("note"):
        lines.append(_("Note: {note}").format(note=escape(rq["note"])))
    return lines


def _cancel_row(kb: InlineKeyboardBuilder) -> None:
    kb.button(text=_("Cancel"), callback_data=RequestCb(action="cancel"))


def screen(step: str, rq: dict[str, Any], ctx: Ctx) -> tuple[str, InlineKeyboardMarkup]:
    """The form at ``step``: what is chosen so far, the question, its buttons."""
    kb = InlineKeyboardBuilder()
    if step == RequestFlow.confirm.state:
        question = _confirm_question(kb, rq, ctx)
        kb.button(text=_("✏️ Start over"), callback_data=RequestCb(action="restart"))
        _cancel_row(kb)
        kb.adjust(*[1] * len(ctx.hospitals), 2)
        return _form_text(rq, ctx, question, final=True), kb.as_markup()
    ask = _QUESTIONS.get(step)
    if ask is None:  # pragma: no cover - every state is listed in _QUESTIONS
        raise ValueError(step)
    question, sizes = ask(kb, rq, ctx)
    _cancel_row(kb)
    kb.adjust(*sizes, 1)
    return _form_text(rq, ctx, question), kb.as_markup()


# Each step's question: its text, and its buttons added to ``kb`` with the sizes of their rows.
Question = Callable[[InlineKeyboardBuilder, dict[str, Any], Ctx], tuple[str, list[int]]]


def _ask_blood_type(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> tuple[str, list[int]]:
    for abo, rh in BLOOD_TYPES:
        kb.button(text=format_blood_type(abo, rh), callback_data=RequestCb(action="bt", value=f"{abo}{rh}"))
    return _("Which blood type does the patient need?"), [4, 4]


def _ask_component(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> tuple[str, list[int]]:
    for component in COMPONENT_ORDER:
        kb.button(text=_cap(component_name(component, _)), callback_data=RequestCb(action="comp", value=component))
    return _("Which component?"), [2, 2]


def _ask_units(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> tuple[str, list[int]]:
    if ctx.group:
        question = _("How many units? Tap a number, or “Other number” to type one.")
    else:
        question = _("How many units? Tap a number or type one (1 to {max}).").format(max=ctx.max_units)
    for n in UNIT_BUTTONS:
        kb.button(text=str(n), callback_data=RequestCb(action="units", value=str(n)))
    sizes = [len(UNIT_BUTTONS)]
    if ctx.group:
        kb.button(text=_("✏️ Other number"), callback_data=RequestCb(action="units_other"))
        sizes.append(1)
    return question, sizes


def _ask_urgency(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> tuple[str, list[int]]:
    if rq.get("deadline"):
        question = _("How urgent is it? The deadline above is kept.")
    else:
        question = _("How urgent is it? Or set the time by which the blood is needed.")
    for urgency in URGENCIES:
        kb.button(text=_cap(urgency_name(urgency, _)), callback_data=RequestCb(action="urg", value=urgency))
    kb.button(text=_("⏰ Change the deadline") if rq.get("deadline") else _("⏰ Set a deadline"),
              callback_data=RequestCb(action="deadline"))
    return question, [3, 1]


def _ask_deadline(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> tuple[str, list[int]]:
    if ctx.group:
        question = _("By when is the blood needed? Reply to my message below with the local time.")
    else:
        question = _("By when is the blood needed? Type the local time as HH:MM, or HH:MM DD/MM for another "
                     "day — for example 14:30 or 08:00 23/11.")
    kb.button(text=_("⬅️ Back"), callback_data=RequestCb(action="back"))
    return question, [1]


def _ask_rh_positive(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> tuple[str, list[int]]:
    kb.button(text=_("No — Rh− donors only"), callback_data=RequestCb(action="rh", value="n"))
    kb.button(text=_("Yes — the doctor approved"), callback_data=RequestCb(action="rh", value="y"))
    return _("The patient is Rh−. If no Rh− donor comes, may Rh+ donors be asked? "
             "Only with your doctor's approval."), [1, 1]


def _ask_note(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> tuple[str, list[int]]:
    question = _("Add a short note for donors: the ward, the patient's situation in a few words (at most "
                 "{max} characters). Donors will read it: do not write the patient's name.").format(
        max=MAX_NOTE_LENGTH)
    question += "\n" + (_("Tap “Write a note”, or Skip.") if ctx.group else _("Type it, or tap Skip."))
    if ctx.group:
        kb.button(text=_("✏️ Write a note"), callback_data=RequestCb(action="note_write"))
    kb.button(text=_("Skip"), callback_data=RequestCb(action="skip"))
    return question, [2] if ctx.group else [1]


def _confirm_question(kb: InlineKeyboardBuilder, rq: dict[str, Any], ctx: Ctx) -> str:
    """The last step: one "send" button per hospital the staff member serves, as with /urgent."""
    question = _("Please check. Donors nearby will be messaged as soon as you send.")
    if rq.get("realism"):  # the deadline looks too short for the nearest donors (issue 9)
        question = rq["realism"] + "\n\n" + question
    if len(ctx.hospitals) == 1:
        kb.button(text=_("📣 Send to donors"),
                  callback_data=RequestCb(action="send", hospital_id=ctx.hospitals[0].id))
    else:  # staff of several hospitals choose here, as with /urgent
        for hospital in ctx.hospitals:
            kb.button(text="📣 " + hospital.name, callback_data=RequestCb(action="send", hospital_id=hospital.id))
    return question


_QUESTIONS: dict[str, Question] = {
    RequestFlow.blood_type.state: _ask_blood_type,
    RequestFlow.component.state: _ask_component,
    RequestFlow.units.state: _ask_units,
    RequestFlow.urgency.state: _ask_urgency,
    RequestFlow.deadline.state: _ask_deadline,
    RequestFlow.rh_positive.state: _ask_rh_positive,
    RequestFlow.note.state: _ask_note,
}


def _form_text(rq: dict[str, Any], ctx: Ctx, question: str, *, final: bool = False) -> str:
    lines = summary(rq, ctx, final=final)
    head = _("🩸 <b>New blood request</b>")
    return head + ("\n" + "\n".join(lines) if lines else "") + "\n\n" + question


async def _ctx(message: Message, roles: Roles, session: AsyncSession, settings: Settings, clock: Clock) -> Ctx:
    hospitals = [h for h in [await session.get(Hospital, i) for i in roles.staff_hospital_ids] if h is not None]
    return Ctx(group=message.chat.type != "private", settings=settings, clock=clock, hospitals=hospitals)


# --- moving between steps ------------------------------------------------------------------


async def _edit_to(query: CallbackQuery, state: FSMContext, rq: dict[str, Any], step: str, ctx: Ctx) -> None:
    text, markup = screen(step, rq, ctx)
    await state.set_state(step)
    await state.update_data(rq=rq)
    await query.answer()
    await edit_text(query.message, text, reply_markup=markup)  # a repeated press: the same screen again


async def _send_to(message: Message, state: FSMContext, rq: dict[str, Any], step: str, ctx: Ctx,
                   old_form: int | None) -> None:
    """After a typed answer: the form continues below it, and the one above loses its buttons."""
    text, markup = screen(step, rq, ctx)
    await _drop_prompt(message, rq)
    if old_form is not None:
        await remove_buttons(message.bot, message.chat.id, old_form)
    sent = await answer_in_chat(message, text, reply_markup=markup)
    await state.set_state(step)
    await state.update_data(rq=rq, form_msg=sent.message_id)


async def _drop_prompt(message: Message, rq: dict[str, Any]) -> None:
    prompt = rq.pop("prompt", None)
    if prompt is not None:
        try:
            await message.bot.delete_message(chat_id=message.chat.id, message_id=prompt)
        except TelegramBadRequest:
            pass


async def _ask_in_group(query: CallbackQuery, state: FSMContext, rq: dict[str, Any], question: str) -> None:
    """A typed step in a group: a ForceReply for this person only (selective, and a reply to their command)."""
    user = query.from_user
    mention = f'<a href="tg://user?id={user.id}">{escape(user.first_name or "")}</a>'
    await _drop_prompt(query.message, rq)
    prompt = await query.message.answer(
        f"{mention}, {question}",
        reply_markup=ForceReply(force_reply=True, selective=True),
        reply_parameters=ReplyParameters(message_id=rq["cmd"], allow_sending_without_reply=True),
    )
    rq["prompt"] = prompt.message_id
    await state.update_data(rq=rq)


def _units_question(ctx: Ctx) -> str:
    return _("reply to this message with the number of units (1 to {max}).").format(max=ctx.max_units)


def _deadline_question() -> str:
    return _("reply to this message with the time: HH:MM, or HH:MM DD/MM for another day.")


def _note_question() -> str:
    return _("reply to this message with the note (at most {max} characters, no patient name).").format(
        max=MAX_NOTE_LENGTH)


def _after_urgency(rq: dict[str, Any]) -> str:
    return RequestFlow.rh_positive.state if rq["rh"] == "-" else RequestFlow.note.state


# --- handlers --------------------------------------------------------------------------------


@router.message(command_filter("request"), IsStaff())
async def start(message: Message, state: FSMContext, roles: Roles, session: AsyncSession, settings: Settings,
                clock: Clock) -> None:
    await state.clear()
    ctx = await _ctx(message, roles, session, settings, clock)
    rq: dict[str, Any] = {"cmd": message.message_id}
    text, markup = screen(RequestFlow.blood_type.state, rq, ctx)
    sent = await answer_in_chat(message, text, reply_markup=markup)
    await state.set_state(RequestFlow.blood_type)
    await state.update_data(rq=rq, form_msg=sent.message_id)


@router.callback_query(RequestCb.filter())
async def button(
    query: CallbackQuery, callback_data: RequestCb, state: FSMContext, roles: Roles, session: AsyncSession,
    settings: Settings, clock: Clock, engine: DispatchEngine, i18n: I18n,
) -> None:
    data = await state.get_data()
    rq: dict[str, Any] | None = data.get("rq")
    step = await state.get_state()
    action = callback_data.action
    if rq is None or step not in STEP_ACTIONS or data.get("form_msg") != query.message.message_id:
        # A finished or cancelled form, an older form's button, or (in a group) someone else's form.
        if data.get("sent_form") == query.message.message_id:
            await query.answer(_("This request was already sent or cancelled."), show_alert=True)
        else:
            await query.answer(_("This form is closed, or it is someone else's. /request starts a new one."),
                               show_alert=True)
        return
    ctx = await _ctx(query.message, roles, session, settings, clock)
    if action == "cancel":
        await state.clear()
        await _drop_prompt(query.message, rq)
        await query.answer()
        await edit_text(query.message, _("Not sent. Nothing was posted."))
        return
    if action == "restart":
        await _drop_prompt(query.message, rq)
        await _edit_to(query, state, {"cmd": rq["cmd"]}, RequestFlow.blood_type.state, ctx)
        return
    if action not in STEP_ACTIONS[step]:
        await query.answer(_("This button is no longer active."), show_alert=True)
        return
    await _step_button(query, callback_data, state, rq, roles, ctx, engine, i18n)


async def _step_button(query: CallbackQuery, callback_data: RequestCb, state: FSMContext, rq: dict[str, Any],
                       roles: Roles, ctx: Ctx, engine: DispatchEngine, i18n: I18n) -> None:
    """A press that answers the form's current step: the answer is kept and the form moves on."""
    action, value = callback_data.action, callback_data.value
    if action == "bt" and value in BLOOD_VALUES:
        rq["abo"], rq["rh"] = split_blood(value)
        await _edit_to(query, state, rq, RequestFlow.component.state, ctx)
    elif action == "comp" and value in COMPONENTS:
        rq["component"] = value
        await _edit_to(query, state, rq, RequestFlow.units.state, ctx)
    elif action == "units" and (units := whole_number(value, low=1, high=ctx.max_units)) is not None:
        rq["units"] = units
        await _drop_prompt(query.message, rq)
        await _edit_to(query, state, rq, RequestFlow.urgency.state, ctx)
    elif action == "units_other" and ctx.group:
        await query.answer()
        await _ask_in_group(query, state, rq, _units_question(ctx))
    elif action == "urg" and value in URGENCIES:
        rq["urgency"] = value
        await _edit_to(query, state, rq, _after_urgency(rq), ctx)
    elif action == "deadline":
        await _edit_to(query, state, rq, RequestFlow.deadline.state, ctx)
        if ctx.group:
            await _ask_in_group(query, state, rq, _deadline_question())
    elif action == "back":
        await _drop_prompt(query.message, rq)
        await _edit_to(query, state, rq, RequestFlow.urgency.state, ctx)
    elif action == "rh" and value in ("y", "n"):
        rq["rh_ok"] = value == "y"
        await _edit_to(query, state, rq, RequestFlow.note.state, ctx)
    elif action == "note_write" and ctx.group:
        await query.answer()
        await _ask_in_group(query, state, rq, _note_question())
    elif action == "skip":
        rq.pop("note", None)
        await _drop_prompt(query.message, rq)
        await _check_deadline(rq, ctx, engine)
        await _edit_to(query, state, rq, RequestFlow.confirm.state, ctx)
    elif action == "send":
        await _send(query, callback_data, state, rq, roles, ctx, engine, i18n)
    else:  # a value no button of ours carries
        await query.answer(_("This button is no longer active."), show_alert=True)


async def _check_deadline(rq: dict[str, Any], ctx: Ctx, engine: DispatchEngine) -> None:
    """Before the confirmation: say so, with the figures, when the deadline looks too short (issue 9)."""
    warnings = []
    for hospital in ctx.hospitals:
        check = await engine.check_deadline(hospital_id=hospital.id, abo=rq["abo"], rh=rq["rh"],
                                            component=rq["component"], units=rq["units"], urgency=rq["urgency"],
                                            deadline=_deadline(rq))
        if check is not None and not check.ok:
            prefix = "" if len(ctx.hospitals) == 1 else escape(hospital.name) + ": "
            warnings.append(prefix + deadline_warning(check, rq["component"], _))
    rq["realism"] = "\n".join(warnings)


async def _send(query: CallbackQuery, callback_data: RequestCb, state: FSMContext, rq: dict[str, Any],
                roles: Roles, ctx: Ctx, engine: DispatchEngine, i18n: I18n) -> None:
    # Callback data can be forged: the presser must be staff of that very hospital.
    if callback_data.hospital_id not in roles.staff_hospital_ids:
        await query.answer(_("Only staff of that hospital can post its requests."), show_alert=True)
        return
    deadline = _deadline(rq)
    if deadline is not None and deadline <= ctx.clock():
        # The form waited past its own deadline: ask again rather than lose it.
        rq.pop("deadline")
        text, markup = screen(RequestFlow.urgency.state, rq, ctx)
        await state.set_state(RequestFlow.urgency)
        await state.update_data(rq=rq)
        await query.answer(_("The deadline has passed while the form was open. Please choose again."),
                           show_alert=True)
        await edit_text(query.message, text, reply_markup=markup)
        return
    await state.clear()  # before posting: a second tap finds nothing to send…
    await state.update_data(sent_form=query.message.message_id)  # …and is told so
    await post_request(
        query, engine, i18n, hospital_id=callback_data.hospital_id, abo=rq["abo"], rh=rq["rh"],
        component=rq["component"], units=rq["units"], urgency=rq["urgency"], deadline=deadline,
        note=rq.get("note", ""), rh_positive_ok=bool(rq.get("rh_ok")),
    )


@router.message(StateFilter(RequestFlow.units, RequestFlow.deadline, RequestFlow.note), F.text,
                ~F.text.startswith("/"))
async def typed(message: Message, state: FSMContext, roles: Roles, session: AsyncSession, settings: Settings,
                clock: Clock, i18n: I18n, engine: DispatchEngine) -> None:
    data = await state.get_data()
    rq: dict[str, Any] = data.get("rq") or {}
    ctx = await _ctx(message, roles, session, settings, clock)
    if ctx.group:
        reply_to = message.reply_to_message
        if reply_to is None or reply_to.message_id not in (rq.get("prompt"), data.get("form_msg")):
            return  # the group's own conversation (a bot with privacy off hears it all)
    step = await state.get_state()
    try:
        if step == RequestFlow.units.state:
            rq["units"] = parse_units(message.text, max_units=ctx.max_units)
            nxt = RequestFlow.urgency.state
        elif step == RequestFlow.deadline.state:
            rq["deadline"] = parse_deadline(message.text, now=clock(), tz=ctx.tz).isoformat()
            nxt = RequestFlow.urgency.state
        else:
            rq["note"] = clean_note(message.text)
            nxt = RequestFlow.confirm.state
    except ParseError as err:
        await _retry(message, state, rq, step, ctx, render(err.text, i18n))
        return
    if nxt == RequestFlow.confirm.state:
        await _check_deadline(rq, ctx, engine)
    await _send_to(message, state, rq, nxt, ctx, data.get("form_msg"))


async def _retry(message: Message, state: FSMContext, rq: dict[str, Any], step: str, ctx: Ctx, error: str) -> None:
    if not ctx.group:
        await message.answer(error + "\n" + _("Try again, or /cancel."))
        return
    # In a group the next try must again be a reply to the bot: a new prompt, replying to this answer.
    question = {RequestFlow.units.state: _units_question(ctx), RequestFlow.deadline.state: _deadline_question(),
                RequestFlow.note.state: _note_question()}[step]
    await _drop_prompt(message, rq)
    prompt = await message.reply(error + "\n" + _cap(question), allow_sending_without_reply=True,
                                 reply_markup=ForceReply(force_reply=True, selective=True))
    rq["prompt"] = prompt.message_id
    await state.update_data(rq=rq)
