"""The dispatcher's messages in words and buttons, in the recipient's language.

The dispatcher writes (kind, params, locale) to the outbox; this is where they become
Telegram text. It runs in the sender, outside any update, so it translates with an
explicit locale instead of the per-update context.

One function per message kind (dispatcher.messages), registered with ``@renders``;
tests/test_message_kinds.py fails when a kind has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.board_view import board_keyboard, board_text, moved_text
from bot.callbacks import AnswerCb, BoardCb
from bot.texts import component_name, escape, fmt_number, urgency_name
from dispatcher import messages as M
from dispatcher.sender import Outgoing
from ground.parsing import format_blood_type, format_phone

Rendered = tuple[str, InlineKeyboardMarkup | None]
Gettext = Callable[[str], str]
# (the message's parameters, gettext bound to the recipient's locale, that locale) -> text and buttons
Renderer = Callable[[Any, Gettext, str], Rendered]
R = TypeVar("R", bound=Renderer)

RENDERERS: dict[type[M.Message], Renderer] = {}


def renders(kind: type[M.Message]) -> Callable[[R], R]:
    """Register the Telegram rendering of one message kind."""
    def register(fn: R) -> R:
        if kind in RENDERERS:
            raise TypeError(f"{kind.__name__} has two Telegram renderings")
        RENDERERS[kind] = fn
        return fn
    return register


def render_outgoing(message: Outgoing, i18n: I18n, default_locale: str) -> Rendered:
    locale = message.locale if message.locale in i18n.available_locales else default_locale
    return RENDERERS[type(message.params)](message.params, partial(i18n.gettext, locale=locale), locale)


def _type(p: Any) -> str:
    return format_blood_type(p.abo, p.rh)


def answer_keyboard(request_id: int, token: str, _) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("✅ Available — I'm coming"), callback_data=AnswerCb(r=request_id, t=token, a="y"))
    kb.button(text=_("Not this time"), callback_data=AnswerCb(r=request_id, t=token, a="n"))
    kb.adjust(1)
    return kb.as_markup()


def progress_keyboard(request_id: int, token: str, state: str, _) -> InlineKeyboardMarkup | None:
    """After "available": tell the hospital "on my way", then "I'm here" (issue 4)."""
    if not token or state not in ("available", "en_route"):
        return None
    kb = InlineKeyboardBuilder()
    if state == "available":
        kb.button(text=_("🚗 On my way"), callback_data=AnswerCb(r=request_id, t=token, a="w"))
    kb.button(text=_("🏥 I've arrived"), callback_data=AnswerCb(r=request_id, t=token, a="h"))
    # Issue 9: she can say so, and is replaced at once; it is not held against her like a no-show.
    kb.button(text=_("↩️ I can't come after all"), callback_data=AnswerCb(r=request_id, t=token, a="x"))
    kb.adjust(1)
    return kb.as_markup()


def call_list_lines(rows: Iterable[tuple[str, str, str]]) -> str:
    """(name, phone, blood type) per member a lead or the hospital should phone."""
    return "".join(f"\n• {escape(name)} — {format_phone(phone)} ({blood_type})" for name, phone, blood_type in rows)


# --------------------------------------------------------------------------- to a donor

@renders(M.Call)
def _call(p: M.Call, _: Gettext, locale: str) -> Rendered:
    lines = [
        _("🩸 <b>Urgent blood request</b>"),
        _("{hospital} needs <b>{type}</b> {component} ({urgency}).").format(
            hospital=escape(p.hospital), type=_type(p), component=component_name(p.component, _),
            urgency=urgency_name(p.urgency, _)),
    ]
    if p.distance_km is not None:
        lines.append(_("📍 {km} km from you, about {minutes} min.").format(km=fmt_number(p.distance_km, locale),
                                                                         minutes=p.travel_min))
    lines.append(_("⏰ Needed by {deadline}.").format(deadline=p.deadline_local))
    if p.again:
        # Issue 9: she was told it was no longer needed; the truth changed, so the call says so.
        lines.append(_("🔁 Needed again: we told you it was no longer needed, but it is short once more."))
    if p.note:
        lines.append("📝 " + escape(p.note))
    if p.late and p.arrive_local:
        # Asked only because nobody who can arrive in time is left (issue 9): say so honestly.
        lines.append(_("The hospital needs it by {deadline}; from {km} km away you would arrive around "
                       "{time} — can you still come?").format(
            deadline=p.deadline_local, km=fmt_number(p.distance_km, locale), time=p.arrive_local))
    else:
        lines.append(_("Can you come?"))
    return "\n".join(lines), answer_keyboard(p.request_id, p.token, _)


@renders(M.Confirmed)
def _confirmed(p: M.Confirmed, _: Gettext, locale: str) -> Rendered:
    lines = [_("✅ Thank you! {hospital} expects you by {deadline}.").format(
        hospital=escape(p.hospital), deadline=p.deadline_local)]
    if p.address:
        lines.append("📍 " + escape(p.address))
    if p.late and p.arrive_local:
        lines.append(_("⏳ You would arrive around {time}, after the time it is needed by. The hospital "
                       "can see this and will tell you if you are no longer needed.").format(time=p.arrive_local))
    lines.append(_("Bring your ID card, eat a light meal and drink water before you come. "
                   "Show this message at reception."))
    if p.hospital_phone:
        lines.append(_("☎️ Hospital: {phone}").format(phone=format_phone(p.hospital_phone)))
    return "\n".join(lines), progress_keyboard(p.request_id, p.token, "available", _)


@renders(M.Venue)
def _venue(p: M.Venue, _: Gettext, locale: str) -> Rendered:
    return p.address or p.hospital, None  # a map pin: the transport sends it; the text is the fallback address


@renders(M.Declined)
def _declined(p: M.Declined, _: Gettext, locale: str) -> Rendered:
    return _("Thank you for answering. We will ask someone else this time."), None


@renders(M.Withdrew)
def _withdrew(p: M.Withdrew, _: Gettext, locale: str) -> Rendered:
    return _("Thank you for letting us know. We are asking someone else — no need to come."), None


@renders(M.StandDown)
def _stand_down(p: M.StandDown, _: Gettext, locale: str) -> Rendered:
    if p.reason == "covered":
        return _("✅ No longer needed — enough donors are on their way. Thank you for being ready!"), None
    if p.reason == "stopped":
        return _("The hospital has stopped asking for this request. No need to come — thank you for "
                 "being ready!"), None
    if p.reason == "replaced":
        return _("🙏 A donor nearer to the hospital can be there sooner, so you are no longer needed for this "
                 "request. Thank you very much for being ready!"), None
    if p.reason == "cancelled":
        return _("The hospital cancelled this request. No need to come — thank you for being ready!"), None
    return _("This request has closed. No need to come — thank you for being ready!"), None


@renders(M.Donated)
def _donated(p: M.Donated, _: Gettext, locale: str) -> Rendered:
    if p.volume_ml:
        first = _("🩸 Thank you! {hospital} recorded your donation of {ml} ml. It was your donation number "
                  "{count}.").format(hospital=escape(p.hospital), ml=p.volume_ml, count=p.count)
    else:  # apheresis: the machine sets the volume
        first = _("🩸 Thank you! {hospital} recorded your donation of {component}. It was your donation "
                  "number {count}.").format(hospital=escape(p.hospital),
                                            component=component_name(p.component or "", _), count=p.count)
    lines = [first]
    if p.milestone:
        lines.append(_("🏅 {count} donation — a milestone! Your club and the Red Cross honour donors like you.",
                       "🏅 {count} donations — a milestone! Your club and the Red Cross honour donors like you.",
                       p.count).format(count=p.count))
    if p.next_date:
        lines.append(_("You may donate again from {date}; we will not call you before then.").format(
            date=p.next_date))
    return "\n".join(lines), None


@renders(M.Deferred)
def _deferred(p: M.Deferred, _: Gettext, locale: str) -> Rendered:
    return _("🙏 Thank you for coming to {hospital}. The screening found you cannot give blood today; "
             "this is common and keeps you and patients safe. You may give again from {date} — we will not "
             "call you before then.").format(hospital=escape(p.hospital), date=p.until), None


@renders(M.EligibleAgain)
def _eligible_again(p: M.EligibleAgain, _: Gettext, locale: str) -> Rendered:
    lines = [_("🩸 <b>From today you may donate blood again.</b>")]
    if p.count >= 2:
        lines.append(_("Thank you for the donation you have made — it helped a patient.",
                       "Thank you for the {n} donations you have made — each one helped a patient.",
                       p.count).format(n=fmt_number(p.count, locale)))
    else:
        lines.append(_("Thank you for giving blood — it helps patients when they need it most."))
    lines.append(_("When a hospital near you needs your blood type, we will message you here. "
                   "You can also give at any blood donation site."))
    lines.append(_("You can turn these reminders off in /me."))
    return "\n".join(lines), None


# --------------------------------------------------------------------------- to hospital staff

@renders(M.Board)
def _board(p: M.Board, _: Gettext, locale: str) -> Rendered:
    if p.view is None:
        raise ValueError(f"board #{p.request_id}: rendered before the sender read it")
    return board_text(dict(p.view), _, locale), board_keyboard(dict(p.view), _)


@renders(M.BoardMoved)
def _board_moved(p: M.BoardMoved, _: Gettext, locale: str) -> Rendered:
    return moved_text(p.request_id, p.time, _), None  # no markup: the buttons go


@renders(M.Posted)
def _posted(p: M.Posted, _: Gettext, locale: str) -> Rendered:
    lines = [_("📣 Request #{id}: {type} {component} × {units}.").format(
        id=p.request_id, type=_type(p), component=component_name(p.component, _), units=p.units)]
    if p.asked == 0:
        lines.append(_("No eligible donor could be messaged yet; club leads have been told."))
    elif p.rare:
        lines.append(_("Rare type: sent at once to the {n} eligible donor in every club; club leads are phoning the "
                       "others.", "Rare type: sent at once to all {n} eligible donors in every club; club leads are "
                       "phoning the others.", p.asked).format(n=p.asked))
    else:
        lines.append(_("Sent to the {n} best-placed donor.", "Sent to the {n} best-placed donors.", p.asked).format(n=p.asked))
    if p.next_wave_min is not None and not p.rare:
        lines.append(_("Next wave in {n} min if needed.").format(n=p.next_wave_min))
    if p.warn_travel:
        lines.append(_("⚠️ The deadline is close: few donors can arrive in time. Consider the blood bank too."))
    lines.append(_("Follow it live: /board {id}").format(id=p.request_id))
    return "\n".join(lines), None


@renders(M.NudgeArrival)
def _nudge_arrival(p: M.NudgeArrival, _: Gettext, locale: str) -> Rendered:
    text = _("⏰ Request #{id}: {name} said they were coming {minutes} min ago and is not marked arrived yet. "
             "Please check with reception.").format(id=p.request_id, name=escape(p.name), minutes=p.minutes)
    if p.phone:
        text += "\n" + _("☎️ {phone}").format(phone=format_phone(p.phone))
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🏥 Arrived"), callback_data=BoardCb(a="nmark", r=p.request_id, v=p.contact_id, x="arrived"))
    kb.button(text=_("✖ Did not come"), callback_data=BoardCb(a="nmark", r=p.request_id, v=p.contact_id,
                                                              x="no_show"))
    return text, kb.as_markup()


@renders(M.NudgeDeadline)
def _nudge_deadline(p: M.NudgeDeadline, _: Gettext, locale: str) -> Rendered:
    return _("⏳ Request #{id} ({type} {component}) is not covered yet: {confirmed}/{target} coming, deadline "
             "{deadline} ({minutes} min left). Consider the blood bank; club leads can phone members from "
             "the call list (/board {id}).").format(
        id=p.request_id, type=_type(p), component=component_name(p.component, _), confirmed=p.confirmed,
        target=p.target, deadline=p.deadline_local, minutes=p.minutes_left), None


@renders(M.Covered)
def _covered(p: M.Covered, _: Gettext, locale: str) -> Rendered:
    return _("✅ Request #{id} is covered: {confirmed} donor is coming. Everyone else has been told they are "
             "not needed.", "✅ Request #{id} is covered: {confirmed} donors are coming. Everyone else has been "
             "told they are not needed.", p.confirmed).format(id=p.request_id, confirmed=p.confirmed), None


@renders(M.Exhausted)
def _exhausted(p: M.Exhausted, _: Gettext, locale: str) -> Rendered:
    return _("⚠️ Request #{id}: no eligible donor is left to message ({asked} asked, {confirmed} coming). "
             "The club leads have their call lists and are phoning members.").format(
        id=p.request_id, asked=p.asked, confirmed=p.confirmed), None


@renders(M.Expired)
def _expired(p: M.Expired, _: Gettext, locale: str) -> Rendered:
    return _("⏰ Request #{id} reached its deadline with {confirmed}/{target} confirmed.").format(
        id=p.request_id, confirmed=p.confirmed, target=p.target), None


# --------------------------------------------------------------------------- to a club lead

def _listed(p: M.LeadPage) -> str:
    return call_list_lines((r.name, r.phone, r.type) for r in p.call_list)


@renders(M.LeadRare)
def _lead_rare(p: M.LeadRare, _: Gettext, locale: str) -> Rendered:
    text = _("🚨 Rare type <b>{type}</b> needed at {hospital} by {deadline}. Every eligible member on "
             "Telegram has been messaged.").format(type=_type(p), hospital=escape(p.hospital),
                                                   deadline=p.deadline_local)
    if p.call_list:
        text += "\n" + _("Please phone these members (not on Telegram or not reachable):") + _listed(p)
    return text, None


@renders(M.LeadExhausted)
def _lead_exhausted(p: M.LeadExhausted, _: Gettext, locale: str) -> Rendered:
    text = _("⚠️ Request #{id} ({type} at {hospital}) has nobody left to message.").format(
        id=p.request_id, type=_type(p), hospital=escape(p.hospital))
    if p.call_list:
        text += "\n" + _("Please phone these members:") + _listed(p)
    return text, None


@renders(M.MonthlyReport)
def _monthly_report(p: M.MonthlyReport, _: Gettext, locale: str) -> Rendered:
    # The parts themselves are read and drawn when sent (bot.monthly_report); this is their title.
    return monthly_title(p, _), None


def monthly_title(p: M.MonthlyReport, _: Gettext) -> str:
    year, month = p.month.split("-")
    return _("📅 Monthly report, {month}: {name}").format(month=f"{month}/{year}", name=escape(p.name))


@renders(M.LeadDigest)
def _lead_digest(p: M.LeadDigest, _: Gettext, locale: str) -> Rendered:
    return render_digest(p, _, locale), None


def _type_counts(rows: Iterable[tuple[Any, ...]], _: Gettext, locale: str, *, covered: bool = False) -> str:
    def one(r) -> str:
        text = f"{format_blood_type(r[0], r[1])} <b>{fmt_number(r[2], locale)}</b>"
        return text + (" " + _("({n} covered)").format(n=fmt_number(r[3], locale)) if covered else "")

    return " · ".join(one(r) for r in rows)


def render_digest(p: M.LeadDigest, _: Gettext, locale: str) -> str:
    """Counts only, never names or phones: a lead may forward it (DOMAIN.md §7)."""
    n = partial(fmt_number, locale=locale)
    negative = [r for r in p.eligible if r[1] == "-"]
    positive = [r for r in p.eligible if r[1] == "+"]
    lines = [
        _("📋 <b>Weekly digest — {club}</b>").format(club=escape(p.club)),
        _("👥 {members} member; {eligible} likely able to give today:",
          "👥 {members} members; {eligible} likely able to give today:", p.members).format(
            members=n(p.members), eligible=n(p.eligible_total)),
        _type_counts(negative, _, locale),
        _type_counts(positive, _, locale),
        _("⏸ Paused or deferred: {n}").format(n=n(p.paused)),
        _("📵 Not reachable on Telegram (phone them when needed): {n}").format(n=n(p.unreachable)),
        "",
    ]
    km = n(p.radius_km)
    if p.requests_total:
        lines.append(_("🏥 Requests within {km} km in the past {days} day: {n}, {covered} covered.",
                       "🏥 Requests within {km} km in the past {days} days: {n}, {covered} covered.",
                       p.days).format(
            km=km, days=p.days, n=n(p.requests_total), covered=n(p.covered_total)))
        lines.append(_type_counts(p.requests, _, locale, covered=True))
    else:
        lines.append(_("🏥 No requests within {km} km in the past {days} day.",
                       "🏥 No requests within {km} km in the past {days} days.", p.days).format(km=km, days=p.days))
    return "\n".join(lines)
