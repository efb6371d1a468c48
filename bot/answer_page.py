"""The signed answer link's page on the bot's own HTTP server (issue 15): GET shows, POST answers.

``/a/<token>`` (ground.answer_link): one screen, mobile-first, no login, no script, no outside asset;
the hospital, the time and the request's code, and the buttons that fit where her answer stands
(dispatcher.link_answers). Every refusal is a page that says what happened in her language
(Vietnamese by default), never an error trace, and never says whose link it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import I18n
from aiohttp import web

from dispatcher import messages as M
from dispatcher.engine import AnswerOutcome
from dispatcher.sender import Outgoing
from dispatcher.link_answers import CHOICES, AskView, LinkAnswers
from ground.answer_link import BadLink, LinkClaim, sign, verify
from ground.clock import Clock
from ground.i18n import N_

log = logging.getLogger(__name__)

ANSWER_PATH = "/a/{token}"
Gettext = Callable[[str], str]

_BUTTONS = {"available": N_("I'm coming"), "declined": N_("Not this time"),
            "withdraw": N_("I can't come after all")}
_OFFERED = {"asked": ("available", "declined"), "declined": ("available",), "coming": ("withdraw",), "closed": ()}
_STANDING = {"coming": N_("You said you are coming."), "declined": N_("You said you cannot come this time."),
             "closed": N_("This request is no longer asking for donors. Thank you!")}
_OUTCOME = {
    AnswerOutcome.accepted: N_("Thank you! The hospital expects you by {time}. Bring your ID card."),
    AnswerOutcome.declined: N_("Thank you for answering. We will ask someone else this time."),
    AnswerOutcome.withdrew: N_("Thank you for letting us know. We are asking someone else — no need to come."),
    AnswerOutcome.duplicate: N_("You had already answered this way: nothing has changed."),
    AnswerOutcome.closed: N_("This request is no longer asking for donors. Thank you!"),
    AnswerOutcome.committed_elsewhere: N_("You are already expected at another request. Thank you!"),
    AnswerOutcome.already_arrived: N_("The hospital has already recorded your arrival. Thank you!"),
    AnswerOutcome.already_donated: N_("The hospital has already recorded your donation. Thank you!"),
}
_BAD = N_("This link is not valid. To answer, reply to our SMS: CO and the request's code if you can come, "
          "KHONG and the code if you cannot.")
_EXPIRED = N_("This link has expired: the request it was for is over. Thank you!")


def answer_url(public_url: str, secret: str, contact_id: int, request_id: int, expires_at: datetime) -> str:
    """The link for one ask, as it goes into an SMS."""
    return f"{public_url}/a/{sign(LinkClaim(contact_id, request_id, expires_at), secret)}"


def call_links(public_url: str, secret: str) -> Callable[[Outgoing], str | None]:
    """For the SMS transport: a call's link, expiring with the request (its deadline); nothing else has one."""
    def link(message: Outgoing) -> str | None:
        p = message.params
        if not isinstance(p, M.Call) or message.contact_id is None:
            return None
        return answer_url(public_url, secret, message.contact_id, p.request_id, datetime.fromisoformat(p.deadline))
    return link


class AnswerPage:
    def __init__(self, links: LinkAnswers, secret: str, i18n: I18n, default_locale: str, tz: ZoneInfo, *,
                 clock: Clock) -> None:
        self.links = links
        self.secret = secret
        self.i18n = i18n
        self.default_locale = default_locale
        self.tz = tz
        self.clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [web.get(ANSWER_PATH, self.show), web.post(ANSWER_PATH, self.press)]

    def _gettext(self, locale: str | None) -> tuple[Gettext, str]:
        locale = locale if locale in self.i18n.available_locales else self.default_locale
        return partial(self.i18n.gettext, locale=locale), locale

    async def _claim(self, request: web.Request) -> LinkClaim | web.Response:
        try:
            return verify(request.match_info["token"], self.secret, self.clock())
        except BadLink as bad:
            _, locale = self._gettext(None)
            if bad.claim is not None:
                await self.links.expired(bad.claim)
                return self._page(locale, None, [_EXPIRED], status=410)
            log.info("answer link: refused a %s token from %s", bad.reason, request.remote)
            return self._page(locale, None, [_BAD], status=403)

    async def show(self, request: web.Request) -> web.Response:
        claim = await self._claim(request)
        if isinstance(claim, web.Response):
            return claim
        view = await self.links.view(claim)
        if view is None:
            return self._page(self.default_locale, None, [_BAD], status=404)
        lines = [_STANDING[view.standing]] if view.standing in _STANDING else []
        return self._page(view.locale, view, lines, offered=_OFFERED[view.standing], token=request.match_info["token"])

    async def press(self, request: web.Request) -> web.Response:
        claim = await self._claim(request)
        if isinstance(claim, web.Response):
            return claim
        form = await request.post()
        choice = str(form.get("answer", ""))
        result = await self.links.answer(claim, choice if choice in CHOICES else "")
        view = await self.links.view(claim)
        if view is None or result.outcome is AnswerOutcome.refused:
            return self._page(view.locale if view else None, None, [_BAD], status=403)
        return self._page(view.locale, view, [_OUTCOME.get(result.outcome, _BAD)],
                          offered=_OFFERED[view.standing], token=request.match_info["token"],
                          status=200 if result.outcome in _OUTCOME else 403)

    def _page(self, locale: str | None, view: AskView | None, lines: list[str], *, offered: tuple[str, ...] = (),
              token: str = "", status: int = 200) -> web.Response:
        _, locale = self._gettext(locale)
        time = "" if view is None else view.deadline.astimezone(self.tz).strftime("%H:%M %d/%m")
        body = []
        if view is not None:
            title = _("Blood request {code}").format(code=view.request_id)
            need = _("{hospital} needs blood by {time}.").format(hospital=view.hospital, time=time)
            body += [f"<h1>{escape(title)}</h1>", f"<p class=big>{escape(need)}</p>"]
        body += [f"<p>{escape(_(line).format(time=time))}</p>" for line in lines]
        if offered:
            labels = {choice: escape(_(_BUTTONS[choice])) for choice in offered}
            buttons = "".join(f"<button name=answer value={c} class={c}>{label}</button>" for c, label in labels.items())
            body.append(f'<form method=post action="/a/{escape(token)}">{buttons}</form>')
        html = (f'<!doctype html><html lang={locale}><head><meta charset=utf-8>'
                '<meta name=viewport content="width=device-width,initial-scale=1">'
                '<meta name=robots content=noindex><meta name=referrer content=no-referrer>'
                f'<title>RedReserve</title><style>{_STYLE}</style></head><body>{"".join(body)}</body></html>')
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                     "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                                "form-action 'self'"})


_STYLE = ("body{font-family:sans-serif;margin:0 auto;max-width:28em;padding:1em;font-size:1.15em;line-height:1.4}"
          "h1{font-size:1.3em;color:#b00}.big{font-size:1.2em}form{display:flex;flex-direction:column;gap:.8em}"
          "button{font-size:1.2em;padding:.9em;border-radius:.5em;border:0}"
          ".available{background:#b00;color:#fff}.declined,.withdraw{background:#ddd}")


__all__ = ["ANSWER_PATH", "AnswerPage", "answer_url", "call_links"]
