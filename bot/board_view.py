"""The live board and the after-action report in words and buttons (issue 4).

``board_text`` and ``board_keyboard`` read the snapshot from ``dispatcher.board``; the
same functions serve the sender's edits and the handlers' immediate redraws, so the
board looks the same however it was last drawn. ``_`` is a gettext bound to the
chat's language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import BoardCb
from bot.texts import DEFERRAL_LABELS, component_name, escape, fmt_number, urgency_name
from ground.eligibility import ALLOWED_VOLUMES_ML, APHERESIS
from models.dispatch_tables import ACTIVE_REQUEST_STATES, RECEIVING_REQUEST_STATES
from ground.parsing import format_blood_type, format_phone

Gettext = Callable[[str], str]  # aiogram's gettext, bound to the reader's language

ASKING = ACTIVE_REQUEST_STATES
RECEIVING = RECEIVING_REQUEST_STATES
CANCEL_REASONS = ("not_needed", "blood_bank", "mistake", "other")
ADD_UNITS = (1, 2, 3, 4)
COMPONENTS = ("whole_blood", "red_cells", "platelets", "plasma")


def progress_bar(done: int, total: int, width: int = 10) -> str:
    total = max(total, 1)
    cells = min(total, width)
    filled = min(cells, round(cells * min(done, total) / total))
    return "▰" * filled + "▱" * (cells - filled)


def reasons_text(reasons: list, _: Gettext, *, skip: tuple[str, ...] = (), locale: str | None = None) -> str:
    """The ranking reasons (dispatcher.ranking codes) in the reader's language, but those in ``skip``."""
    kinds = {"exact": _("exact"), "compatible": _("compatible"), "rh_negative": _("Rh− last resort"),
             "rh_positive_allowed": _("Rh+ allowed by staff")}
    parts = []
    for code, p in reasons or []:
        if code in skip:
            continue
        if code == "tier":
            parts.append(f"{format_blood_type(p['type'][:-1], p['type'][-1])} {kinds.get(p['kind'], p['kind'])}")
        elif code == "distance":
            parts.append(_("{km} km ≈ {minutes} min").format(km=fmt_number(p["km"], locale), minutes=p["min"]))
        elif code == "no_location":
            parts.append(_("location unknown"))
        elif code == "late":
            parts.append(_("may arrive {minutes} min after the deadline").format(minutes=p["min"]))
        elif code == "last_gave":
            days = p["days"]
            parts.append(_("last gave {n} day ago", "last gave {n} days ago", days).format(n=days) if days < 60
                         else _("last gave {n} month ago", "last gave {n} months ago", days // 30).format(
                             n=days // 30))
        elif code == "never_gave":
            parts.append(_("no donation recorded"))
        elif code == "answered":
            parts.append(_("answered {a} of {n}").format(a=p["answered"], n=p["asked"]))
        elif code == "new_donor":
            parts.append(_("not asked before"))
        elif code == "identical_short":
            parts.append(_("asked because only {n} {type} donor can arrive in time",
                           "asked because only {n} {type} donors can arrive in time", p["found"]).format(
                n=p["found"], type=format_blood_type(p["type"][:-1], p["type"][-1])))
    return ", ".join(parts)


def _donor_state(d: dict[str, Any], _: Gettext) -> str:
    st = d["state"]
    if st == "donated":
        given = component_name(d["component"], _) + " " if d.get("component") else ""
        if d.get("volume_ml"):
            return _("🩸 donated {what}{ml} ml").format(what=given, ml=d["volume_ml"])
        return _("🩸 donated {what}").format(what=given).rstrip()
    return {"available": _("✅ coming"), "en_route": _("🚗 on the way"), "arrived": _("🏥 arrived"),
            "no_show": _("✖ did not come"), "released": _("🙏 thanked, not needed"),
            "deferred": _("⏸ could not donate (deferred)"), "withdrew": _("↩️ can't come after all")}.get(st, st)


def bucket_name(bucket: str, _: Gettext) -> str:
    """The board's and the report's word for each bucket of dispatcher.board.BUCKETS."""
    return {"waiting": _("waiting"), "available": _("coming"), "en_route": _("on the way"),
            "arrived": _("arrived"), "donated": _("donated"), "declined": _("declined"),
            "withdrew": _("withdrew"), "no_answer": _("no answer"), "unreachable": _("unreachable"),
            "not_needed": _("thanked, not needed"), "deferred": _("deferred"),
            "no_show": _("did not come")}.get(bucket, bucket)


def buckets_line(p: dict[str, Any], _: Gettext) -> str:
    """"Asked 12: waiting 3 · coming 2 · declined 7": every asked donor once, the parts add up."""
    parts = [f"{bucket_name(b, _)} {n}" for b, n in p["buckets"].items() if n]
    line = _("Asked {n}").format(n=p["asked"])
    return line + (": " + " · ".join(parts) if parts else "")


def headline_line(h: dict[str, int | None], _: Gettext) -> str | None:
    """The headline times (dispatcher.headline), those that happened."""
    parts = []
    if h.get("first_available") is not None:
        parts.append(_("first available {n} min").format(n=h["first_available"]))
    if h.get("covered") is not None:
        parts.append(_("covered {n} min").format(n=h["covered"]))
    if h.get("first_donation") is not None:
        parts.append(_("first donation {n} min").format(n=h["first_donation"]))
    if h.get("fulfilled") is not None:
        parts.append(_("fulfilled {n} min").format(n=h["fulfilled"]))
    return ("⏱ " + _("After posting: ") + " · ".join(parts)) if parts else None


def _arrival(d: dict[str, Any], _: Gettext) -> str:
    """Her expected arrival beside the deadline (issue 9); a late one is marked and not counted."""
    if d.get("late"):
        return " · " + _("⚠️ arrives ≈ {time}, after the deadline").format(time=d["arrive_local"])
    if d.get("arrive_local") and d["state"] in ("available", "en_route"):
        return " · " + _("arrives ≈ {time}").format(time=d["arrive_local"])
    return ""


def _state_line(p: dict[str, Any], _: Gettext) -> str:
    st = p["state"]
    if st in ASKING:
        if p["wave_no"] == 0 and p.get("next_wave_local"):
            # Quiet hours hold non-critical requests (config [dispatch] quiet_start/quiet_end).
            return _("🌙 Night hours: donors will be messaged at {time}. If it cannot wait, cancel this and "
                     "post it again as critical.").format(time=p["next_wave_local"])
        if p.get("next_wave_local"):
            return _("📡 Asking donors: wave {n}, next wave at {time} if still needed.").format(
                n=max(p["wave_no"], 1), time=p["next_wave_local"])
        return _("📡 Asking donors: wave {n}.").format(n=max(p["wave_no"], 1))
    if st == "covered" and p.get("close_reason") == "stopped":
        return _("✋ Staff stopped asking at {donated}/{units} donated; those coming still come.").format(
            donated=p.get("stopped_donated") or 0, units=p["units"])
    if st == "covered":
        return _("✅ Enough donors are coming; no one else is being asked.")
    if st == "exhausted":
        return _("⚠️ No eligible donor is left to message; club leads have their call lists.")
    if st == "expired":
        return _("⏰ The deadline has passed.")
    if st == "cancelled":
        return _("✖ Cancelled ({reason}).").format(reason=cancel_reason_name(p.get("close_reason") or "other", _))
    if st == "fulfilled":
        if p.get("close_reason") == "donations":
            return _("🏁 Fulfilled: the donations cover the units. Thank you!")
        return _("🏁 Closed by staff.")
    return st


def cancel_reason_name(reason: str, _: Gettext) -> str:
    return {"not_needed": _("no longer needed"), "blood_bank": _("supplied by the blood bank"),
            "mistake": _("posted by mistake"), "other": _("other reason")}.get(reason, _("other reason"))


def board_text(p: dict[str, Any], _: Gettext, locale: str | None = None) -> str:
    """The live board; ``locale`` for numbers, the update's own when None (the sender passes the chat's)."""
    kind = format_blood_type(p["abo"], p["rh"])
    lines = [
        _("🩸 <b>Request #{id}: {type} {component} × {units}</b> · {urgency}").format(
            id=p["request_id"], type=kind, component=component_name(p["component"], _), units=p["units"],
            urgency=urgency_name(p["urgency"], _)),
        _("🏥 {hospital} · needed by {deadline}").format(hospital=escape(p["hospital"]), deadline=p["deadline_local"]),
    ]
    if p.get("note"):
        lines.append("📝 " + escape(p["note"]))
    lines.append("")
    lines.append(_("Coming: {bar} {confirmed}/{target}").format(
        bar=progress_bar(p["confirmed"], p["target"]), confirmed=p["confirmed"], target=p["target"]))
    lines.append(_("Donated: {bar} {donated}/{units} unit", "Donated: {bar} {donated}/{units} units", p["units"]).format(
        bar=progress_bar(p["donated"], p["units"]), donated=p["donated"], units=p["units"]))
    lines.append(buckets_line(p, _))
    lines.append(_state_line(p, _))
    times = headline_line(p.get("headline") or {}, _)
    if times:
        lines.append(times)
    if p.get("warn_travel"):
        lines.append(_("⚠️ Many of the donors asked are far away: consider the blood bank too."))
    donors = p.get("donors") or []
    if donors:
        lines.append("")
        lines.append(_("<b>Said available:</b>"))
        for i, d in enumerate(donors, 1):
            who = escape(d["name"]) + (f" — {format_phone(d['phone'])}" if d.get("phone") else "")
            where = ""
            if d.get("distance_km") is not None:
                where = " · " + _("{km} km ≈ {minutes} min").format(km=fmt_number(d["distance_km"], locale),
                                                                    minutes=d["travel_min"])
            lines.append(f"{i}. {who}{_channel_mark(d.get('channel'), _)} · "
                         f"{format_blood_type(d['type'][:-1], d['type'][-1])}{where} · "
                         f"{_donor_state(d, _)}{_arrival(d, _)}")
            why = reasons_text(d.get("reasons"), _, skip=("distance",), locale=locale)  # already on the line above
            if why:
                lines.append(f"    <i>{escape(why)}</i>")
    if p.get("group"):
        lines.append(_("Phone numbers are shown only in staff's private chats."))
    lines.append(_("Updated {time}").format(time=p["updated_local"]))
    return "\n".join(lines)


def board_keyboard(p: dict[str, Any], _: Gettext) -> InlineKeyboardMarkup | None:
    r, st = p["request_id"], p["state"]
    kb = InlineKeyboardBuilder()
    sizes = []
    if st in ASKING:
        kb.button(text=_("➕ Add units"), callback_data=BoardCb(a="units", r=r))
        kb.button(text=_("✅ Enough now"), callback_data=BoardCb(a="covered", r=r))
        sizes.append(2)
    if (st in RECEIVING and p.get("donors")) or any(d.get("undo") for d in p.get("donors") or []):
        kb.button(text=_("🩸 Arrivals & donations"), callback_data=BoardCb(a="donors", r=r))
        sizes.append(1)
    if st in RECEIVING:
        kb.button(text=_("📋 Call list"), callback_data=BoardCb(a="calls", r=r))
        kb.button(text=_("🔄 Refresh"), callback_data=BoardCb(a="refresh", r=r))
        kb.button(text=_("🏁 Close"), callback_data=BoardCb(a="close", r=r))
        kb.button(text=_("✖ Cancel"), callback_data=BoardCb(a="cancel", r=r))
        sizes += [2, 2]
    else:
        kb.button(text=_("📊 Report"), callback_data=BoardCb(a="report", r=r))
        sizes.append(1)
    kb.adjust(*sizes)
    return kb.as_markup()


def confirm_keyboard(request_id: int, action: str, _: Gettext) -> InlineKeyboardMarkup:
    """In place of the board's buttons: a second tap before anything irreversible (UX.md)."""
    kb = InlineKeyboardBuilder()
    label = {"covered": _("✅ Yes, stop asking"), "close": _("🏁 Yes, close the request")}[action]
    kb.button(text=label, callback_data=BoardCb(a=f"{action}_yes", r=request_id))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(1)
    return kb.as_markup()


def cancel_keyboard(request_id: int, _: Gettext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for reason in CANCEL_REASONS:
        kb.button(text=cancel_reason_name(reason, _).capitalize(),
                  callback_data=BoardCb(a="cancel_yes", r=request_id, x=reason))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(1)
    return kb.as_markup()


def units_keyboard(request_id: int, units: int, max_units: int, _: Gettext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    n = 0
    for add in ADD_UNITS:
        if units + add <= max_units:
            kb.button(text=f"+{add}", callback_data=BoardCb(a="addu", r=request_id, v=units, x=str(add)))
            n += 1
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(max(n, 1), 1)
    return kb.as_markup()


def donors_keyboard(request_id: int, donors: list[dict], _: Gettext) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for d in donors:
        kb.button(text=f"{_donor_state(d, _)[:2]} {d['name']}", callback_data=BoardCb(a="pick", r=request_id,
                                                                                       v=d["contact_id"]))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(1)
    return kb.as_markup()


def donor_actions_keyboard(request_id: int, donor: dict, request_component: str, _: Gettext,
                           component: str | None = None) -> InlineKeyboardMarkup:
    """One donor's panel: her name first, then what can be recorded, the component given, and undo."""
    kb = InlineKeyboardBuilder()
    cid, st = donor["contact_id"], donor["state"]
    given = component or request_component
    sizes = [1]
    kb.button(text=f"👤 {donor['name']} · {format_blood_type(donor['type'][:-1], donor['type'][-1])} · "
                   f"{_donor_state(donor, _)}", callback_data=BoardCb(a="pick", r=request_id, v=cid, x=given))
    if st in ("available", "en_route", "arrived"):
        if st != "arrived":
            kb.button(text=_("🏥 Arrived"), callback_data=BoardCb(a="mark", r=request_id, v=cid, x="arrived"))
            kb.button(text=_("✖ Did not come"), callback_data=BoardCb(a="mark", r=request_id, v=cid, x="no_show"))
            sizes.append(2)
        # Turned away at screening: a deferral, with its wait (DOMAIN.md §2), not a no-show.
        kb.button(text=_("⏸ Could not donate"), callback_data=BoardCb(a="defer", r=request_id, v=cid))
        sizes.append(1)
        nxt = COMPONENTS[(COMPONENTS.index(given) + 1) % len(COMPONENTS)] if given in COMPONENTS else COMPONENTS[0]
        kb.button(text=_("Given: {component} (change)").format(component=component_name(given, _)),
                  callback_data=BoardCb(a="pick", r=request_id, v=cid, x=nxt))
        sizes.append(1)
        if given in APHERESIS:
            kb.button(text=_("🩸 Donated {component}").format(component=component_name(given, _)),
                      callback_data=BoardCb(a="mark", r=request_id, v=cid, x=f"donated0.{given}"))
            sizes.append(1)
        else:
            volumes = [ml for ml in ALLOWED_VOLUMES_ML if ml <= donor["max_volume"]]
            for ml in volumes:
                suffix = "" if given == request_component else f".{given}"
                kb.button(text=_("🩸 {ml} ml").format(ml=ml), callback_data=BoardCb(a="mark", r=request_id, v=cid,
                                                                                    x=f"donated{ml}{suffix}"))
            sizes.append(len(volumes))
    if donor.get("undo"):
        kb.button(text=_("↩️ Undo: {what}").format(what=_donor_state(donor, _)),
                  callback_data=BoardCb(a="undo", r=request_id, v=cid))
        sizes.append(1)
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="donors", r=request_id))
    sizes.append(1)
    kb.adjust(*sizes)
    return kb.as_markup()


DESK_DEFERRALS = ("7d", "4w", "6m", "12m")


def deferral_keyboard(request_id: int, contact_id: int, _: Gettext) -> InlineKeyboardMarkup:
    """The coarse categories with DOMAIN.md §2's waits; never the diagnosis."""
    kb = InlineKeyboardBuilder()
    for code in DESK_DEFERRALS:
        kb.button(text=_(DEFERRAL_LABELS[code]), callback_data=BoardCb(a="mark", r=request_id, v=contact_id,
                                                                       x=f"deferred.{code}"))
    kb.button(text=_("Other — until a date…"), callback_data=BoardCb(a="defer_other", r=request_id, v=contact_id))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="pick", r=request_id, v=contact_id))
    kb.adjust(1)
    return kb.as_markup()


def moved_text(request_id: int, time: str, _: Gettext) -> str:
    """An old board after /board N posted a new one in the same chat: it no longer changes."""
    return _("↪️ Request #{id}: this board is no longer updated. The live board was posted below at {time} "
             "(/board {id} posts it again).").format(id=request_id, time=time)


def channel_name(channel: str, _: Gettext) -> str:
    """A channel as staff read it; one a newer version added and this one does not know, by its name."""
    names = {"telegram": _("Telegram"), "sms": _("📱 SMS"), "zalo": _("💬 Zalo")}
    return names.get(channel, channel)


def _channel_mark(channel: str | None, _: Gettext) -> str:
    """Beside a donor reached off Telegram: she answers by text, not with the board's buttons."""
    return "" if channel in (None, "telegram") else f" · {channel_name(channel, _)}"


def report_text(p: dict[str, Any], _: Gettext) -> str:
    labels = {"posted": _("posted"), "first_available": _("first donor available"),
              "first_arrival": _("first arrival"), "first_donation": _("first donation"),
              "covered": _("covered: enough donors said available"),
              "stopped_covered": _("stopped asking: enough donors coming"),
              "stopped_exhausted": _("stopped asking: no eligible donor left to message"),
              "deadline_passed": _("deadline passed"), "cancelled": _("closed: cancelled"),
              "fulfilled": _("closed: the donations cover the units"), "closed": _("closed by staff")}
    lines = [_("📊 <b>Report for request #{id}</b>: {type} {component} × {units}").format(
        id=p["request_id"], type=format_blood_type(p["abo"], p["rh"]), component=component_name(p["component"], _),
        units=p["units"]), _state_line({**p, "wave_no": 0, "next_wave_local": None}, _), "",
        _("<b>Timeline</b>")]
    for entry in p["timeline"]:
        what, at = entry[0], entry[1]
        if at is None:
            continue
        if what == "wave":
            lines.append(_("{time} wave {n}: {asked} asked").format(time=at, n=entry[2]["n"], asked=entry[2]["asked"]))
        elif what == "stopped":
            lines.append(_("{time} staff stopped asking at {donated}/{units} donated").format(
                time=at, donated=entry[2].get("donated", "?"), units=entry[2].get("units", "?")))
        else:
            lines.append(f"{at} {labels.get(what, what)}")
    f = p["funnel"]
    lines += ["", _("<b>Funnel</b>"),
              _("asked {asked} → available {available} → arrived {arrived} → passed screening {passed} → "
                "donated {donated}").format(**f)]
    if f.get("deferral_rate") is not None:
        lines.append(_("deferred at screening: {n} ({rate}% of those screened)").format(
            n=f["deferred"], rate=f["deferral_rate"]))
    if f.get("no_show"):
        lines.append(_("did not come: {n}").format(n=f["no_show"]))
    for channel, n in sorted((p.get("channels") or {}).items()):
        lines.append(_("{channel}: {reached} reached, {available} said available").format(
            channel=channel_name(channel, _), reached=n["reached"], available=n["available"]))
    lines.append(buckets_line(p, _))
    times = headline_line(p.get("headline") or {}, _)
    lines.append(times or _("No donor has said available yet."))
    if (p.get("headline") or {}).get("covered") is None:
        lines.append(_("The request was never covered by donors saying available."))
    return "\n".join(lines)
