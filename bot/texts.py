"""Formatting that several routers share: dates, blood types, a donor's profile, eligibility."""

from __future__ import annotations

from datetime import date
from html import escape as _html_escape

from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _
from babel.numbers import format_decimal, format_percent

from ground import eligibility as elig
from ground.eligibility import Assessment, DonorFacts
from ground.i18n import N_
from ground.parsing import format_blood_type


# A deferral's coarse category in words (ground.eligibility.DEFERRAL_DAYS has the waits).
DEFERRAL_LABELS: dict[str, str] = {
    "12m": N_("Surgery, childbirth, transfusion (12 months)"),
    "6m": N_("Tattoo, piercing, blood exposure (6 months)"),
    "4w": N_("Infection, live vaccine (4 weeks)"),
    "7d": N_("Flu, cold, vaccine, aspirin (7 days)"),
    "pregnancy": N_("Pregnancy"),
    "other": N_("Other"),
}


def escape(text: str) -> str:
    """Names and areas come from users; the bot sends HTML."""
    return _html_escape(text, quote=False)


def fmt_date(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "—"


def fmt_number(n: float, locale: str | None = None) -> str:
    """``1,4`` and ``12.345`` in Vietnamese, ``1.4`` and ``12,345`` in English (Babel); without
    ``locale``, the language of the update being handled."""
    return format_decimal(n, locale=locale or get_i18n().current_locale)


def fmt_share(part: int, whole: int, locale: str | None = None) -> str:
    """``part`` of ``whole`` as a percentage in the reader's format (``50%``); "—" when there is no whole."""
    return format_percent(part / whole, locale=locale or get_i18n().current_locale) if whole else "—"


def fmt_weight(kg: float | None) -> str:
    return _("{kg} kg").format(kg=fmt_number(kg)) if kg else "—"


def fmt_type(abo: str | None, rh: str | None) -> str:
    if abo is None or rh is None:
        return _("unknown")
    return format_blood_type(abo, rh)


def fmt_sex(sex: str | None) -> str:
    return {"M": _("Male"), "F": _("Female")}.get(sex or "", "—")


def explain(assessment: Assessment, facts: DonorFacts) -> str:
    """One line a donor or a lead reads: likely eligible today, or why not and until when."""
    if assessment.eligible:
        return _("✅ Likely able to give today")
    parts = []
    for reason in assessment.reasons:
        if reason == elig.UNKNOWN_TYPE:
            parts.append(_("blood type not known yet"))
        elif reason == elig.RETIRED:
            parts.append(_("retired from the reserve"))
        elif reason == elig.PAUSED:
            parts.append(_("paused until {date}").format(date=fmt_date(facts.status_until)))
        elif reason == elig.DEFERRED:
            parts.append(_("deferred until {date}").format(date=fmt_date(facts.status_until)))
        elif reason == elig.TOO_YOUNG:
            parts.append(_("under 18"))
        elif reason == elig.TOO_OLD:
            parts.append(_("over 60"))
        elif reason == elig.UNDERWEIGHT:
            parts.append(_("below the minimum weight"))
        elif reason == elig.INTERVAL:
            parts.append(_("recently gave blood"))
        elif reason == elig.YEARLY_LIMIT:
            parts.append(_("gave whole blood as often as advised in 12 months"))
    line = "⏳ " + "; ".join(parts)
    if assessment.eligible_from is not None:
        line += " — " + _("may give again from {date}").format(date=fmt_date(assessment.eligible_from))
    return line


def component_name(component: str, _) -> str:
    return {
        "whole_blood": _("whole blood"),
        "red_cells": _("red cells"),
        "platelets": _("platelets"),
        "plasma": _("plasma"),
    }.get(component, component)


def urgency_name(urgency: str, _) -> str:
    return {"critical": _("🚨 critical"), "urgent": _("urgent"), "planned": _("planned")}.get(urgency, urgency)
