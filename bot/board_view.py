"""The live board and the after-action report in words and buttons (issue 4).

``board_text`` and ``board_keyboard`` read the snapshot from ``dispatcher.board``; the
same functions serve the sender's edits and the handlers' immediate redraws, so the
board looks the same however it was last drawn. ``_`` is a gettext bound to the
chat's language.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import BoardCb
from bot.texts import component_name, escape, urgency_name
from dispatcher.eligibility import ALLOWED_VOLUMES_ML
from models.dispatch_tables import ACTIVE_REQUEST_STATES, RECEIVING_REQUEST_STATES
from redreserve.parsing import format_blood_type

ASKING = ACTIVE_REQUEST_STATES
RECEIVING = RECEIVING_REQUEST_STATES
CANCEL_REASONS = ("not_needed", "blood_bank", "mistake", "other")
ADD_UNITS = (1, 2, 3, 4)


def progress_bar(done: int, total: int, width: int = 10) -> str:
    total = max(total, 1)
    cells = min(total, width)
    filled = min(cells, round(cells * min(done, total) / total))
    return "▰" * filled + "▱" * (cells - filled)


def reasons_text(reasons: list, _, *, skip: tuple[str, ...] = ()) -> str:
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
            parts.append(_("{km} km ≈ {minutes} min").format(km=p["km"], minutes=p["min"]))
        elif code == "no_location":
            parts.append(_("location unknown"))
        elif code == "late":
            parts.append(_("may arrive {minutes} min after the deadline").format(minutes=p["min"]))
        elif code == "last_gave":
            days = p["days"]
            parts.append(_("last gave {n} days ago").format(n=days) if days < 60
                         else _("last gave {n} months ago").format(n=days // 30))
        elif code == "never_gave":
            parts.append(_("no donation recorded"))
        elif code == "answered":
            parts.append(_("answered {a} of {n}").format(a=p["answered"], n=p["asked"]))
        elif code == "new_donor":
            parts.append(_("not asked before"))
        elif code == "identical_short":
            parts.append(_("asked because only {n} {type} donors can arrive in time").format(
                n=p["found"], type=format_blood_type(p["type"][:-1], p["type"][-1])))
    return ", ".join(parts)


def _donor_state(d: dict[str, Any], _) -> str:
    st = d["state"]
    if st == "donated":
        return _("🩸 donated {ml} ml").format(ml=d.get("volume_ml") or "?")
    return {"available": _("✅ coming"), "en_route": _("🚗 on the way"), "arrived": _("🏥 arrived"),
            "no_show": _("✖ did not come"), "released": _("🙏 thanked, not needed"),
            "withdrew": _("↩️ can't come after all")}.get(st, st)


def _arrival(d: dict[str, Any], _) -> str:
    """Her expected arrival beside the deadline (issue 9); a late one is marked and not counted."""
    if d.get("late"):
        return " · " + _("⚠️ arrives ≈ {time}, after the deadline").format(time=d["arrive_local"])
    if d.get("arrive_local") and d["state"] in ("available", "en_route"):
        return " · " + _("arrives ≈ {time}").format(time=d["arrive_local"])
    return ""


def _state_line(p: dict[str, Any], _) -> str:
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


def cancel_reason_name(reason: str, _) -> str:
    return {"not_needed": _("no longer needed"), "blood_bank": _("supplied by the blood bank"),
            "mistake": _("posted by mistake"), "other": _("other reason")}.get(reason, _("other reason"))


def board_text(p: dict[str, Any], _) -> str:
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
    lines.append(_("Donated: {bar} {donated}/{units} units").format(
        bar=progress_bar(p["donated"], p["units"]), donated=p["donated"], units=p["units"]))
    lines.append(_("Asked {asked} · waiting {waiting} · declined {declined} · no answer {no_answer} · "
                   "unreachable {unreachable}").format(**{k: p[k] for k in (
                       "asked", "waiting", "declined", "no_answer", "unreachable")}))
    lines.append(_state_line(p, _))
    if p.get("warn_travel"):
        lines.append(_("⚠️ Many of the donors asked are far away: consider the blood bank too."))
    donors = p.get("donors") or []
    if donors:
        lines.append("")
        lines.append(_("<b>Said available:</b>"))
        for i, d in enumerate(donors, 1):
            who = escape(d["name"]) + (f" — {d['phone']}" if d.get("phone") else "")
            where = ""
            if d.get("distance_km") is not None:
                where = " · " + _("{km} km ≈ {minutes} min").format(km=d["distance_km"], minutes=d["travel_min"])
            lines.append(f"{i}. {who} · {format_blood_type(d['type'][:-1], d['type'][-1])}{where} · "
                         f"{_donor_state(d, _)}{_arrival(d, _)}")
            why = reasons_text(d.get("reasons"), _, skip=("distance",))  # already on the line above
            if why:
                lines.append(f"    <i>{escape(why)}</i>")
    if p.get("group"):
        lines.append(_("Phone numbers are shown only in staff's private chats."))
    lines.append(_("Updated {time}").format(time=p["updated_local"]))
    return "\n".join(lines)


def board_keyboard(p: dict[str, Any], _) -> InlineKeyboardMarkup | None:
    r, st = p["request_id"], p["state"]
    kb = InlineKeyboardBuilder()
    sizes = []
    if st in ASKING:
        kb.button(text=_("➕ Add units"), callback_data=BoardCb(a="units", r=r))
        kb.button(text=_("✅ Enough now"), callback_data=BoardCb(a="covered", r=r))
        sizes.append(2)
    if st in RECEIVING and p.get("donors"):
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


def confirm_keyboard(request_id: int, action: str, _) -> InlineKeyboardMarkup:
    """In place of the board's buttons: a second tap before anything irreversible (UX.md)."""
    kb = InlineKeyboardBuilder()
    label = {"covered": _("✅ Yes, stop asking"), "close": _("🏁 Yes, close the request")}[action]
    kb.button(text=label, callback_data=BoardCb(a=f"{action}_yes", r=request_id))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(1)
    return kb.as_markup()


def cancel_keyboard(request_id: int, _) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for reason in CANCEL_REASONS:
        kb.button(text=cancel_reason_name(reason, _).capitalize(),
                  callback_data=BoardCb(a="cancel_yes", r=request_id, x=reason))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(1)
    return kb.as_markup()


def units_keyboard(request_id: int, units: int, max_units: int, _) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    n = 0
    for add in ADD_UNITS:
        if units + add <= max_units:
            kb.button(text=f"+{add}", callback_data=BoardCb(a="addu", r=request_id, v=units, x=str(add)))
            n += 1
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(max(n, 1), 1)
    return kb.as_markup()


def donors_keyboard(request_id: int, donors: list[dict], _) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for d in donors:
        kb.button(text=f"{_donor_state(d, _)[:2]} {d['name']}", callback_data=BoardCb(a="pick", r=request_id,
                                                                                       v=d["contact_id"]))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="back", r=request_id))
    kb.adjust(1)
    return kb.as_markup()


def donor_actions_keyboard(request_id: int, donor: dict, _) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    cid = donor["contact_id"]
    kb.button(text=_("🏥 Arrived"), callback_data=BoardCb(a="mark", r=request_id, v=cid, x="arrived"))
    # Arrived but turned away at screening, or never came: either way she will not donate for this request.
    label = _("✖ Could not donate") if donor["state"] == "arrived" else _("✖ Did not come")
    kb.button(text=label, callback_data=BoardCb(a="mark", r=request_id, v=cid, x="no_show"))
    volumes = [ml for ml in ALLOWED_VOLUMES_ML if ml <= donor["max_volume"]]
    for ml in volumes:
        kb.button(text=_("🩸 {ml} ml").format(ml=ml), callback_data=BoardCb(a="mark", r=request_id, v=cid,
                                                                            x=f"donated{ml}"))
    kb.button(text=_("⬅️ Back"), callback_data=BoardCb(a="donors", r=request_id))
    kb.adjust(2, len(volumes), 1)
    return kb.as_markup()


def report_text(p: dict[str, Any], _) -> str:
    labels = {"posted": _("posted"), "first_available": _("first donor available"),
              "first_arrival": _("first arrival"), "covered": _("covered"), "closed": _("closed")}
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
        else:
            lines.append(f"{at} {labels[what]}")
    f = p["funnel"]
    lines += ["", _("<b>Funnel</b>"),
              _("asked {asked} → available {available} → arrived {arrived} → donated {donated}").format(**f)]
    if f.get("no_show"):
        lines.append(_("did not come: {n}").format(n=f["no_show"]))
    if p.get("minutes_to_cover") is not None:
        lines.append(_("Minutes to cover: {n}").format(n=p["minutes_to_cover"]))
    else:
        lines.append(_("The request was never covered by donors saying available."))
    return "\n".join(lines)
