"""The dispatcher's messages in words and buttons, in the recipient's language.

The dispatcher writes (kind, params, locale) to the outbox; this is where they become
Telegram text. It runs in the sender, outside any update, so it translates with an
explicit locale instead of the per-update context.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.board_view import board_keyboard, board_text, moved_text
from bot.callbacks import AnswerCb, BoardCb
from bot.texts import component_name, escape, fmt_number, urgency_name
from dispatcher.messages import Kind
from dispatcher.sender import Outgoing
from ground.parsing import format_blood_type

Rendered = tuple[str, InlineKeyboardMarkup | None]


def _type(p: dict[str, Any]) -> str:
    return format_blood_type(p["abo"], p["rh"])


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


def call_list_lines(p: dict[str, Any]) -> str:
    return "".join(f"\n• {escape(r['name'])} — {r['phone']} ({r['type']})" for r in p.get("call_list") or [])


def render_outgoing(message: Outgoing, i18n: I18n, default_locale: str) -> Rendered:
    locale = message.locale if message.locale in i18n.available_locales else default_locale
    _ = partial(i18n.gettext, locale=locale)
    p = message.params
    kind = Kind(message.kind)

    if kind is Kind.call:
        lines = [
            _("🩸 <b>Urgent blood request</b>"),
            _("{hospital} needs <b>{type}</b> {component} ({urgency}).").format(
                hospital=escape(p["hospital"]), type=_type(p), component=component_name(p["component"], _),
                urgency=urgency_name(p["urgency"], _)),
        ]
        if p.get("distance_km") is not None:
            lines.append(_("📍 {km} km from you, about {minutes} min.").format(
                km=p["distance_km"], minutes=p["travel_min"]))
        lines.append(_("⏰ Needed by {deadline}.").format(deadline=p["deadline_local"]))
        if p.get("note"):
            lines.append("📝 " + escape(p["note"]))
        if p.get("late") and p.get("arrive_local"):
            # Asked only because nobody who can arrive in time is left (issue 9): say so honestly.
            lines.append(_("The hospital needs it by {deadline}; from {km} km away you would arrive around "
                           "{time} — can you still come?").format(
                deadline=p["deadline_local"], km=p.get("distance_km"), time=p["arrive_local"]))
        else:
            lines.append(_("Can you come?"))
        return "\n".join(lines), answer_keyboard(p["request_id"], p["token"], _)

    if kind is Kind.confirmed:
        lines = [_("✅ Thank you! {hospital} expects you by {deadline}.").format(
            hospital=escape(p["hospital"]), deadline=p["deadline_local"])]
        if p.get("address"):
            lines.append("📍 " + escape(p["address"]))
        if p.get("late") and p.get("arrive_local"):
            lines.append(_("⏳ You would arrive around {time}, after the time it is needed by. The hospital "
                           "can see this and will tell you if you are no longer needed.").format(
                time=p["arrive_local"]))
        lines.append(_("Bring your ID card, eat a light meal and drink water before you come. "
                       "Show this message at reception."))
        if p.get("hospital_phone"):
            lines.append(_("☎️ Hospital: {phone}").format(phone=p["hospital_phone"]))
        return "\n".join(lines), progress_keyboard(p["request_id"], p.get("token", ""), "available", _)

    if kind is Kind.venue:  # a map pin: the transport sends it; the text is the fallback address
        return p.get("address") or p["hospital"], None

    if kind is Kind.declined:
        return _("Thank you for answering. We will ask someone else this time."), None

    if kind is Kind.withdrew:
        return _("Thank you for letting us know. We are asking someone else — no need to come."), None

    if kind is Kind.stand_down:
        if p.get("reason") == "covered":
            return _("✅ No longer needed — enough donors are on their way. Thank you for being ready!"), None
        if p.get("reason") == "stopped":
            return _("The hospital has stopped asking for this request. No need to come — thank you for "
                     "being ready!"), None
        if p.get("reason") == "replaced":
            return _("🙏 A donor nearer to the hospital can be there sooner, so you are no longer needed for this "
                     "request. Thank you very much for being ready!"), None
        if p.get("reason") == "cancelled":
            return _("The hospital cancelled this request. No need to come — thank you for being ready!"), None
        return _("This request has closed. No need to come — thank you for being ready!"), None

    if kind is Kind.posted:
        lines = [_("📣 Request #{id}: {type} {component} × {units}.").format(
            id=p["request_id"], type=_type(p), component=component_name(p["component"], _), units=p["units"])]
        if p["asked"] == 0:
            lines.append(_("No eligible donor could be messaged yet; club leads have been told."))
        elif p.get("rare"):
            lines.append(_("Rare type: sent at once to all {n} eligible donors in every club; club leads are "
                           "phoning the others.").format(n=p["asked"]))
        else:
            lines.append(_("Sent to the {n} best-placed donors.").format(n=p["asked"]))
        if p.get("next_wave_min") is not None and not p.get("rare"):
            lines.append(_("Next wave in {n} min if needed.").format(n=p["next_wave_min"]))
        if p.get("warn_travel"):
            lines.append(_("⚠️ The deadline is close: few donors can arrive in time. Consider the blood bank too."))
        lines.append(_("Follow it live: /board {id}").format(id=p["request_id"]))
        return "\n".join(lines), None

    if kind is Kind.board:
        return board_text(p, _), board_keyboard(p, _)

    if kind is Kind.board_moved:
        return moved_text(p["request_id"], p.get("time", ""), _), None  # no markup: the buttons go

    if kind is Kind.nudge_arrival:
        text = _("⏰ Request #{id}: {name} said they were coming {minutes} min ago and is not marked arrived yet. "
                 "Please check with reception.").format(id=p["request_id"], name=escape(p["name"]),
                                                       minutes=p["minutes"])
        if p.get("phone"):
            text += "\n" + _("☎️ {phone}").format(phone=p["phone"])
        kb = InlineKeyboardBuilder()
        kb.button(text=_("🏥 Arrived"), callback_data=BoardCb(a="nmark", r=p["request_id"], v=p["contact_id"],
                                                             x="arrived"))
        kb.button(text=_("✖ Did not come"), callback_data=BoardCb(a="nmark", r=p["request_id"], v=p["contact_id"],
                                                                  x="no_show"))
        return text, kb.as_markup()

    if kind is Kind.nudge_deadline:
        return _("⏳ Request #{id} ({type} {component}) is not covered yet: {confirmed}/{target} coming, deadline "
                 "{deadline} ({minutes} min left). Consider the blood bank; club leads can phone members from "
                 "the call list (/board {id}).").format(
            id=p["request_id"], type=_type(p), component=component_name(p["component"], _),
            confirmed=p["confirmed"], target=p["target"], deadline=p["deadline_local"],
            minutes=p["minutes_left"]), None

    if kind is Kind.donated:
        if p.get("volume_ml"):
            first = _("🩸 Thank you! {hospital} recorded your donation of {ml} ml. It was your donation number "
                      "{count}.").format(hospital=escape(p["hospital"]), ml=p["volume_ml"], count=p["count"])
        else:  # apheresis: the machine sets the volume
            first = _("🩸 Thank you! {hospital} recorded your donation of {component}. It was your donation "
                      "number {count}.").format(hospital=escape(p["hospital"]),
                                                component=component_name(p.get("component") or "", _),
                                                count=p["count"])
        lines = [first]
        if p.get("milestone"):
            lines.append(_("🏅 {count} donations — a milestone! Your club and the Red Cross honour donors "
                           "like you.").format(count=p["count"]))
        if p.get("next_date"):
            lines.append(_("You may donate again from {date}; we will not call you before then.").format(
                date=p["next_date"]))
        return "\n".join(lines), None

    if kind is Kind.deferred:
        return _("🙏 Thank you for coming to {hospital}. The screening found you cannot give blood today; "
                 "this is common and keeps you and patients safe. You may give again from {date} — we will not "
                 "call you before then.").format(hospital=escape(p["hospital"]), date=p["until"]), None

    if kind is Kind.covered:
        return _("✅ Request #{id} is covered: {confirmed} donors are coming. Everyone else has been told "
                 "they are not needed.").format(id=p["request_id"], confirmed=p["confirmed"]), None

    if kind is Kind.exhausted:
        return _("⚠️ Request #{id}: no eligible donor is left to message ({asked} asked, {confirmed} coming). "
                 "The club leads have their call lists and are phoning members.").format(
            id=p["request_id"], asked=p["asked"], confirmed=p["confirmed"]), None

    if kind is Kind.expired:
        return _("⏰ Request #{id} reached its deadline with {confirmed}/{target} confirmed.").format(
            id=p["request_id"], confirmed=p["confirmed"], target=p["target"]), None

    if kind is Kind.lead_rare:
        text = _("🚨 Rare type <b>{type}</b> needed at {hospital} by {deadline}. Every eligible member on "
                 "Telegram has been messaged.").format(type=_type(p), hospital=escape(p["hospital"]),
                                                       deadline=p["deadline_local"])
        if p.get("call_list"):
            text += "\n" + _("Please phone these members (not on Telegram or not reachable):") + call_list_lines(p)
        return text, None

    if kind is Kind.lead_exhausted:
        text = _("⚠️ Request #{id} ({type} at {hospital}) has nobody left to message.").format(
            id=p["request_id"], type=_type(p), hospital=escape(p["hospital"]))
        if p.get("call_list"):
            text += "\n" + _("Please phone these members:") + call_list_lines(p)
        return text, None

    if kind is Kind.eligible_again:
        lines = [_("🩸 <b>From today you may donate blood again.</b>")]
        if p["count"] >= 2:
            lines.append(_("Thank you for the {n} donations you have made — each one helped a patient.").format(
                n=fmt_number(p["count"], locale)))
        else:
            lines.append(_("Thank you for giving blood — it helps patients when they need it most."))
        lines.append(_("When a hospital near you needs your blood type, we will message you here. "
                       "You can also give at any blood donation site."))
        lines.append(_("You can turn these reminders off in /me."))
        return "\n".join(lines), None

    if kind is Kind.lead_digest:
        return render_digest(p, _, locale), None

    raise ValueError(message.kind)  # pragma: no cover


def _type_counts(rows: list, _, locale: str, *, covered: bool = False) -> str:
    def one(r) -> str:
        text = f"{format_blood_type(r[0], r[1])} <b>{fmt_number(r[2], locale)}</b>"
        return text + (" " + _("({n} covered)").format(n=fmt_number(r[3], locale)) if covered else "")

    return " · ".join(one(r) for r in rows)


def render_digest(p: dict[str, Any], _, locale: str) -> str:
    """Counts only, never names or phones: a lead may forward it (DOMAIN.md §7)."""
    n = partial(fmt_number, locale=locale)
    negative = [r for r in p["eligible"] if r[1] == "-"]
    positive = [r for r in p["eligible"] if r[1] == "+"]
    lines = [
        _("📋 <b>Weekly digest — {club}</b>").format(club=escape(p["club"])),
        _("👥 {members} members; {eligible} likely able to give today:").format(
            members=n(p["members"]), eligible=n(p["eligible_total"])),
        _type_counts(negative, _, locale),
        _type_counts(positive, _, locale),
        _("⏸ Paused or deferred: {n}").format(n=n(p["paused"])),
        _("📵 Not reachable on Telegram (phone them when needed): {n}").format(n=n(p["unreachable"])),
        "",
    ]
    km = n(p["radius_km"])
    if p["requests_total"]:
        lines.append(_("🏥 Requests within {km} km in the past {days} days: {n}, {covered} covered.").format(
            km=km, days=p["days"], n=n(p["requests_total"]), covered=n(p["covered_total"])))
        lines.append(_type_counts(p["requests"], _, locale, covered=True))
    else:
        lines.append(_("🏥 No requests within {km} km in the past {days} days.").format(km=km, days=p["days"]))
    return "\n".join(lines)
