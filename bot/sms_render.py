"""The dispatcher's messages to a donor as short SMS text, from the same kinds as Telegram's (bot.render).

Every kind that can reach a donor has an SMS rendering here, registered with ``@sms_renders``; a kind
without one (a board, a lead's call list) never goes by SMS. The text is Vietnamese by default through
the catalogs, carries the request's short code (its number) for a keyword answer ("CO 12"), and a
call is kept to ``[sms] max_parts`` parts: the hospital's name is shortened first, never the code or
the time. ``[sms] unaccented`` strips the diacritics: 160 characters a part instead of 70.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from aiogram.utils.i18n import I18n

from bot.texts import component_name
from dispatcher import messages as M
from dispatcher.sender import Outgoing
from ground.config import SmsConfig
from ground.sms_text import count_parts, unaccented

Gettext = Callable[[str], str]
# (the message, gettext in her language, how many characters the hospital's name may take) -> the text
SmsRenderer = Callable[[Any, Gettext, int], str]
R = TypeVar("R", bound=SmsRenderer)

SMS_RENDERERS: dict[type[M.Message], SmsRenderer] = {}
NAME_MAX = 60  # a hospital's name, before shortening to fit the parts


def sms_renders(kind: type[M.Message]) -> Callable[[R], R]:
    """Register the SMS rendering of one message kind."""
    def register(fn: R) -> R:
        if kind in SMS_RENDERERS:
            raise TypeError(f"{kind.__name__} has two SMS renderings")
        SMS_RENDERERS[kind] = fn
        return fn
    return register


def render_sms(message: Outgoing, i18n: I18n, default_locale: str, cfg: SmsConfig,
               link: str | None = None) -> str | None:
    """The SMS text of ``message``, or None when its kind is not sent by SMS. ``link``: the signed
    answer link (bot.answer_page), appended only while the text still fits ``max_parts`` with the
    hospital's name readable; else left out (she answers by keyword, which every call explains)."""
    fn = SMS_RENDERERS.get(type(message.params))
    if fn is None:
        return None
    locale = message.locale if message.locale in i18n.available_locales else default_locale
    _ = partial(i18n.gettext, locale=locale)
    finish = unaccented if cfg.unaccented else (lambda t: t)
    if link:
        for room in (NAME_MAX, 40, 28):
            text = finish(fn(message.params, _, room)) + " " + link
            if count_parts(text).parts <= cfg.max_parts:
                return text
    for room in (NAME_MAX, 40, 28, 18, 10):
        text = finish(fn(message.params, _, room))
        if count_parts(text).parts <= cfg.max_parts:
            return text
    return text  # the shortest: a hospital's name cannot be shortened further


def _short(name: str, room: int) -> str:
    return name if len(name) <= room else name[:room - 1].rstrip() + "…"


def _type(abo: str, rh: str) -> str:
    """"O-" with an ASCII hyphen: the typographic minus of the Telegram text is not GSM-7, and one such
    character would make an unaccented SMS UCS-2 (70 characters a part instead of 160)."""
    return f"{abo}{'+' if rh == '+' else '-'}"


def _when(deadline_local: str) -> str:
    """"14:30 10/03/2026" → "14:30 10/03": the year is never in doubt for an emergency."""
    return deadline_local[:11]


@sms_renders(M.Call)
def _call(p: M.Call, _: Gettext, room: int) -> str:
    text = _("Blood needed: {hospital} needs {type} {component} by {deadline}.").format(
        hospital=_short(p.hospital, room), type=_type(p.abo, p.rh),
        component=component_name(p.component, _), deadline=_when(p.deadline_local))
    if p.late and p.arrive_local:
        # the time alone: a late arrival is hours after the deadline, rarely another day
        text += " " + _("You would arrive around {time}.").format(time=p.arrive_local[:5])
    return text + " " + _("Can you come? Reply CO {code} or KHONG {code}").format(code=p.request_id)


@sms_renders(M.Confirmed)
def _confirmed(p: M.Confirmed, _: Gettext, room: int) -> str:
    return _("Thank you! {hospital} expects you by {deadline}. Bring your ID card. "
             "Cannot come after all? Reply KHONG {code}").format(
        hospital=_short(p.hospital, room), deadline=_when(p.deadline_local), code=p.request_id)


@sms_renders(M.Venue)
def _venue(p: M.Venue, _: Gettext, room: int) -> str:
    return _("Address of {hospital}: {address}").format(hospital=_short(p.hospital, room),
                                                       address=p.address or p.hospital)


@sms_renders(M.Declined)
def _declined(p: M.Declined, _: Gettext, room: int) -> str:
    return _("Thank you for answering. We will ask someone else this time.")


@sms_renders(M.Withdrew)
def _withdrew(p: M.Withdrew, _: Gettext, room: int) -> str:
    return _("Thank you for letting us know. We are asking someone else — no need to come.")


@sms_renders(M.StandDown)
def _stand_down(p: M.StandDown, _: Gettext, room: int) -> str:
    return _("Blood request {code}: you are no longer needed. Thank you!").format(code=p.request_id)


@sms_renders(M.Donated)
def _donated(p: M.Donated, _: Gettext, room: int) -> str:
    return _("Thank you for donating at {hospital}! Donation number {count}.").format(
        hospital=_short(p.hospital, room), count=p.count)


@sms_renders(M.Deferred)
def _deferred(p: M.Deferred, _: Gettext, room: int) -> str:
    return _("Thank you for coming to {hospital}. You may give blood again from {until}.").format(
        hospital=_short(p.hospital, room), until=p.until)


@sms_renders(M.EligibleAgain)
def _eligible_again(p: M.EligibleAgain, _: Gettext, room: int) -> str:
    return _("From today you may donate blood again. Thank you!")


__all__ = ["SMS_RENDERERS", "render_sms", "sms_renders"]
