"""``redreserve demo``: the whole product on the embedded default, with no token and no Telegram.

The real bot (same handlers, dispatcher and sender) polls the Bot API simulator on
127.0.0.1 with Telegram's limits enforced, on a temporary SQLite database. A seeded
roster of simulated donors answers the calls at the field's rates (DOMAIN.md §5),
on a clock compressed by ``--speed``. A few Rh− donors cannot reach Telegram (blocked on their
mobile network, DOMAIN.md §9) and linked Zalo instead: their calls go on by the Zalo Bot API
simulator and they answer there by keyword ("CO 1"). Two hospitals post requests; donors who said
available travel, tap "on my way" and "I've arrived", and the nurse records their
donations on the live board (arrives × passes screening, DOMAIN.md §5) until the
donations cover the units; a few who cannot come after all say so ("I can't come after
all") and are replaced. The timeline, the boards, the after-action reports and a summary
are printed. Success is what the hospital needs (issue 9): every request has enough units
*donated before its deadline*; otherwise the summary says which request fell short and why,
and the exit status is 1.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import aiohttp
from babel.numbers import format_decimal
from sqlmodel import col, func, select
from yarl import URL

from bot.app import build_bot, build_dispatcher
from bot.ops_server import Health, OpsServer, UpdateActivity
from bot.sms_webhook import SMS_WEBHOOK_PATH
from dispatcher.metrics import Metrics
from bot.board_view import reasons_text
from bot.callbacks import AnswerCb, BoardCb
from bot.i18n import LOCALES, make_i18n
from dispatcher.coverage import late_condition
from ground.eligibility import max_volume_ml
from dispatcher.headline import request_headline
from models.dispatch_tables import (
    SAID_AVAILABLE_STATES,
    BloodRequest,
    OutboxMessage,
    RequestContact,
    RequestWave,
)
from models.engine import create_schema, make_engine, make_sessionmaker
from models.tables import Donor, DonorChannel
from redreserve.botapi_sim import BotAPISimulator
from redreserve.smsgw_sim import SmsGatewaySimulator
from redreserve.zalo_sim import ZaloBotSimulator
from ground.clock import VIETNAM, FrozenClock, as_utc
from ground.config import Settings
from ground.parsing import format_blood_type
from redreserve.seeding import CLUBS, HOSPITALS, STAFF_BASE, seed_roster

SCENARIO = [  # (virtual minutes after the start, hospital index, quick form)
    (0, 0, "O- 1 critical"),
    (3, 1, "A+ 3 urgent"),
]
READS, SAYS_AVAILABLE, DECLINES = 0.85, 0.40, 0.5  # DOMAIN.md §5; DECLINES: of those who read and can't
ARRIVES, PASSES = 0.75, 0.77  # DOMAIN.md §5: of those who said available
TELLS = 0.5  # of those who will not come after all: share who say so ("I can't come after all") rather than vanish
AT_THE_HOSPITAL = timedelta(minutes=15)  # reception, screening, the donation itself
FAR = timedelta(minutes=120)  # a donor this far who said yes anyway does not make it
CLOSED = ("fulfilled", "cancelled", "expired", "exhausted")
MAX_VIRTUAL = timedelta(hours=8)
MAX_TURN = 0.25  # real seconds one turn may move virtual time on (bigger jumps burst answers into the pool)
ZALO_DONORS = 2  # the Zalo persona: Rh− donors whose Telegram is blocked, reached on Zalo (issue 15)
_ZALO_CALL = re.compile(r"\bCO (\d+)\b")  # a call's keyword instructions carry the request's code


@dataclass
class Pending:
    at: datetime
    user_id: int
    message_id: int
    data: str
    available: bool
    zalo: str | None = None  # her Zalo chat, when the call reached her there: ``data`` is her reply


@dataclass
class Action:
    """Something a simulated person does at a virtual time: a donor's tap, or the nurse's on the board."""

    at: datetime
    request_id: int
    contact_id: int
    who: str  # donor | staff
    data: str
    says: str
    token: str = ""  # the ask it belongs to: a request that reopened asks her again with a new token


def default_lang(environ: dict[str, str] | None = None) -> str:
    """The terminal's language when it is one the bot speaks (LANGUAGE, LC_ALL, LC_MESSAGES, LANG, in
    gettext's order); Vietnamese when unsure, as the bot itself."""
    env = os.environ if environ is None else environ
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        for lang in LOCALES:
            if value.lower().startswith(lang):
                return lang
        if value and value not in ("C", "POSIX", "C.UTF-8"):
            break
    return "vi"


@dataclass
class Demo:
    out: TextIO
    speed: float
    rng: random.Random
    lang: str = "vi"
    sim: BotAPISimulator = None
    zalo: ZaloBotSimulator = None
    clock: FrozenClock = None
    zalo_names: dict[str, str] = field(default_factory=dict)  # Zalo chat -> her name
    zalo_read: int = 0  # Zalo messages already looked at
    answers: list[Pending] = field(default_factory=list)
    seen_calls: set[tuple[int, int]] = field(default_factory=set)
    names: dict[int, str] = field(default_factory=dict)
    shown_waves: set[tuple[int, int]] = field(default_factory=set)
    states: dict[int, str] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    tracked: set[tuple[int, str]] = field(default_factory=set)  # (contact, token): each time she said yes
    gw: SmsGatewaySimulator = None
    answer_server: str = ""  # the bot's own HTTP server, where the answer links lead
    sms_seen: set[tuple[str, int]] = field(default_factory=set)  # (phone, request): her call was read
    sms_answers: list[tuple[datetime, str, int, str]] = field(default_factory=list)  # (at, phone, request, how)
    sms_planned: int = 0
    sms_names: dict[str, str] = field(default_factory=dict)  # phone -> name, for the narration

    def __post_init__(self) -> None:
        self.i18n = make_i18n(self.lang)

    def _(self, singular: str, plural: str | None = None, n: int = 1) -> str:
        """The narration in the demo's language, from the bot's catalogs."""
        return self.i18n.gettext(singular, plural, n, locale=self.lang)

    def say(self, text: str) -> None:
        local = self.clock().astimezone(VIETNAM).strftime("%H:%M:%S")
        print(f"[{local}] {text}", file=self.out, flush=True)


async def seed(sessionmaker, sim: BotAPISimulator, rng: random.Random, today: date, demo: Demo) -> None:
    roster = await seed_roster(sessionmaker, sim, rng, today=today, now=demo.clock(), locale=demo.lang)
    demo.names.update(roster.names)
    demo.say(demo._("Roster — donors: {donors} (on Telegram: {linked}); clubs: {clubs}; hospitals: {hospitals}.")
             .format(donors=roster.donors, linked=len(demo.names), clubs=len(CLUBS), hospitals=len(HOSPITALS)))
    # Issue 15: the Rh− members who are not on Telegram gave their number for SMS calls (no rng drawn:
    # the Telegram donors' timeline stays the seed's).
    async with sessionmaker() as s:
        off = (await s.exec(select(Donor).where(Donor.telegram_id.is_(None), Donor.rh == "-"))).all()
        for d in off:
            d.consent_contact_at = demo.clock()
            s.add(DonorChannel(donor_id=d.id, channel="sms", address=d.phone, rank=1, consent_at=demo.clock()))
            demo.sms_names[d.phone] = d.full_name
        await s.commit()
    demo.say(demo._("Rh− members not on Telegram, called by SMS: {n}.").format(n=len(off)))


async def link_zalo(sessionmaker, demo: Demo) -> None:
    """The Zalo persona: a few Rh− donors linked Zalo and agreed to calls there (README "Zalo"); their
    Telegram is blocked on their network, so Telegram answers 403 and the call goes on to Zalo."""
    async with sessionmaker() as s:
        # O−: the first request asks for O−, so the persona is seen in every run
        donors = (await s.exec(select(Donor).where(Donor.abo == "O", Donor.rh == "-",
                                                   col(Donor.telegram_id).is_not(None))
                               .order_by(col(Donor.id)).limit(ZALO_DONORS))).all()
        for d in donors:
            assert d.id is not None and d.telegram_id is not None  # rows read from the database
            chat = f"zalo-{d.id}"
            s.add(DonorChannel(donor_id=d.id, channel="zalo", address=chat, rank=1, consent_at=demo.clock(),
                               consent_policy_version=d.consent_policy_version))
            demo.sim.block(d.telegram_id)
            demo.zalo.known.add(chat)  # she wrote to the club's Zalo bot when she linked it
            demo.zalo_names[chat] = d.full_name
        await s.commit()
    if donors:
        demo.say(demo._("Zalo: {names} cannot reach Telegram on their mobile network and linked Zalo instead.")
                 .format(names=", ".join(demo.zalo_names.values())))


def plan_answers(demo: Demo) -> None:
    """Each simulated donor who got a call decides, and answers after a realistic delay."""
    plan_zalo_answers(demo)
    for call in demo.sim.sent(method="sendMessage", ok=True):
        markup = call.params.get("reply_markup") or {}
        buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
        if not buttons or not buttons[0].get("callback_data", "").startswith("ans:"):
            continue
        chat, message_id = int(call.params["chat_id"]), call.result["message_id"]
        if (chat, message_id) in demo.seen_calls:
            continue
        demo.seen_calls.add((chat, message_id))
        if demo.rng.random() >= READS:
            continue  # never reads it in time
        available = demo.rng.random() < SAYS_AVAILABLE
        if not available and demo.rng.random() >= DECLINES:
            continue  # reads it, stays silent
        delay = min(25.0, math.exp(demo.rng.gauss(math.log(4.0), 0.7)))
        data = buttons[0 if available else 1]["callback_data"]
        demo.answers.append(Pending(demo.clock() + timedelta(minutes=delay), chat, message_id, data, available))


def plan_sms_answers(demo: Demo) -> None:
    """The SMS-only donors: the first to get a call answers with the keyword, the second through the link
    in her SMS; any other reads it too late (the lead's phone call is for them)."""
    for sms in demo.gw.sent:
        code = re.search(r"\bCO (\d+)\b", sms.text)  # a call; her confirmation and a stand-down have no "CO"
        if code is None or (sms.phone, int(code[1])) in demo.sms_seen:
            continue
        demo.sms_seen.add((sms.phone, int(code[1])))
        if demo.sms_planned < 2:
            how = ("keyword", "link")[demo.sms_planned]
            demo.sms_answers.append((demo.clock() + timedelta(minutes=1 + demo.sms_planned), sms.phone,
                                     int(code[1]), f"{how} {sms.text.rsplit(' ', 1)[1]}"))
            demo.sms_planned += 1


async def answer_sms_due(demo: Demo) -> None:
    due = [a for a in demo.sms_answers if a[0] <= demo.clock()]
    demo.sms_answers = [a for a in demo.sms_answers if a[0] > demo.clock()]
    for _at, phone, rid, how in due:
        name = demo.sms_names.get(phone, phone)
        kind, last_word = how.split(" ", 1)
        if kind == "link" and last_word.startswith("http"):
            async with aiohttp.ClientSession() as http:
                async with http.post(demo.answer_server + URL(last_word).path, data={"answer": "available"}) as r:
                    await r.read()
            demo.say(demo._("#{id} {name} opens the link in her SMS and taps “I'm coming”").format(id=rid, name=name))
        else:
            await demo.gw.receive(phone, f"CO {rid}")
            demo.say(demo._("#{id} {name} replies by SMS: “CO {id}”").format(id=rid, name=name))
def plan_zalo_answers(demo: Demo) -> None:
    """The same decision for a call that reached her on Zalo; she answers by keyword."""
    new, demo.zalo_read = demo.zalo.sent[demo.zalo_read:], len(demo.zalo.sent)
    for msg in new:
        found = _ZALO_CALL.search(msg.text or "")
        if found is None or demo.rng.random() >= READS:
            continue
        available = demo.rng.random() < SAYS_AVAILABLE
        if not available and demo.rng.random() >= DECLINES:
            continue
        delay = min(25.0, math.exp(demo.rng.gauss(math.log(4.0), 0.7)))
        reply = f"{'CO' if available else 'KHONG'} {found.group(1)}"
        demo.answers.append(Pending(demo.clock() + timedelta(minutes=delay), 0, 0, reply, available, msg.chat_id))


async def press_due(demo: Demo) -> None:
    due = [a for a in demo.answers if a.at <= demo.clock()]
    demo.answers = [a for a in demo.answers if a.at > demo.clock()]
    for a in due:
        if a.zalo is not None:
            await demo.zalo.user_says(a.zalo, a.data)
            demo.say(demo._("#{id} {name} replies on Zalo: “{text}”").format(
                id=a.data.split()[1], name=demo.zalo_names.get(a.zalo, a.zalo), text=a.data))
            continue
        demo.sim.push_callback(a.user_id, a.message_id, a.data)
        request_id, name = a.data.split(":")[1], demo.names.get(a.user_id, a.user_id)
        demo.say((demo._("#{id} {name} taps “Available — I'm coming”") if a.available
                  else demo._("#{id} {name} taps “Not this time”")).format(id=request_id, name=name))


async def plan_visits(demo: Demo, sessionmaker) -> None:
    """Each donor who said available: on her way, arrives (or not), and gives (or is turned away)."""
    async with sessionmaker() as s:
        rows = (await s.exec(select(RequestContact, Donor.full_name, Donor.weight_kg, Donor.telegram_id)
                             .join(Donor, Donor.id == RequestContact.donor_id)
                             .where(RequestContact.state == "available"))).all()
    for c, name, weight, telegram_id in rows:
        if (c.id, c.token) in demo.tracked:
            continue
        demo.tracked.add((c.id, c.token))
        start = demo.clock()
        travel = timedelta(minutes=max(c.travel_min or 20, 5) * demo.rng.uniform(0.8, 1.3))

        def donor(at, a, says):
            demo.actions.append(Action(at, c.request_id, c.id, "donor", AnswerCb(r=c.request_id, t=c.token,
                                                                                  a=a).pack(), says, c.token))

        def staff(at, x, says):
            demo.actions.append(Action(at, c.request_id, c.id, "staff", BoardCb(a="mark", r=c.request_id, v=c.id,
                                                                                 x=x).pack(), says, c.token))

        if telegram_id is None:  # by SMS: no buttons; the nurse records her when she comes
            ml = min(350, max_volume_ml(weight))
            staff(start + travel + AT_THE_HOSPITAL, f"donated{ml}",
                  demo._("nurse records: {name} donated {ml} ml").format(name=name, ml=ml))
            continue
        if demo.rng.random() >= ARRIVES or travel > FAR:
            if demo.rng.random() < TELLS:
                donor(start + timedelta(minutes=demo.rng.uniform(3, 20)), "x",
                      demo._("{name} taps “I can't come after all”").format(name=name))
            else:
                staff(start + travel + timedelta(minutes=40), "no_show",
                      demo._("nurse marks {name}: did not come").format(name=name))
            continue
        donor(start + timedelta(minutes=2), "w", demo._("{name} taps “On my way”").format(name=name))
        donor(start + travel, "h", demo._("{name} taps “I've arrived”").format(name=name))
        if demo.rng.random() < PASSES:
            ml = min(350, max_volume_ml(weight))  # what the nurse can record for her weight (DOMAIN.md §2)
            staff(start + travel + AT_THE_HOSPITAL, f"donated{ml}",
                  demo._("nurse records: {name} donated {ml} ml").format(name=name, ml=ml))
        else:
            # Deferred at screening: the nurse taps the coarse category (here a cold: 7 days), never the reason.
            staff(start + travel + AT_THE_HOSPITAL, "deferred.7d",
                  demo._("nurse marks {name}: could not donate (deferred at screening for 7 days)").format(name=name))


async def act_due(demo: Demo, sessionmaker) -> None:
    due = sorted((a for a in demo.actions if a.at <= demo.clock()), key=lambda a: a.at)
    demo.actions = [a for a in demo.actions if a.at > demo.clock()]
    for a in due:
        async with sessionmaker() as s:
            c = await s.get(RequestContact, a.contact_id)
            req = await s.get(BloodRequest, a.request_id)
            board = (await s.exec(select(OutboxMessage.message_id).where(
                OutboxMessage.request_id == a.request_id, OutboxMessage.kind == "board",
                OutboxMessage.edit_of_key.is_(None), OutboxMessage.state == "sent"))).first()
            call = (await s.exec(select(OutboxMessage.message_id).where(  # her latest call: she may be asked again
                OutboxMessage.request_id == a.request_id, OutboxMessage.contact_id == c.id,
                OutboxMessage.kind == "call").order_by(OutboxMessage.id.desc()))).first()
            donor_tg = (await s.exec(select(Donor.telegram_id).where(Donor.id == c.donor_id))).first()
        if c.state not in ("available", "en_route", "arrived") or req.state in ("fulfilled", "cancelled") \
                or c.token != a.token:
            continue  # released when the donations covered the units (she was told not to come), or asked anew
        if a.who == "donor" and call is not None:
            demo.sim.push_callback(donor_tg, call, a.data)
        elif a.who == "staff" and board is not None:
            demo.sim.push_callback(req.posted_by, board, a.data, chat_id=req.chat_id)
        else:
            continue
        demo.say(f"#{a.request_id} {a.says}")


async def report_progress(demo: Demo, sessionmaker) -> None:
    async with sessionmaker() as s:
        waves = (await s.exec(select(RequestWave).order_by(RequestWave.id))).all()
        for w in waves:
            if (w.request_id, w.wave_no) in demo.shown_waves:
                continue
            demo.shown_waves.add((w.request_id, w.wave_no))
            contacts = (await s.exec(
                select(RequestContact, Donor.full_name).join(Donor, Donor.id == RequestContact.donor_id)
                .where(RequestContact.request_id == w.request_id, RequestContact.wave_no == w.wave_no)
                .order_by(RequestContact.score))).all()
            scope = (demo._("every club") if w.radius_km is None
                     else demo._("within {km} km").format(km=format_decimal(w.radius_km, locale=demo.lang)))
            demo.say(demo._("#{id} wave {wave}: {n} donor asked, {scope}", "#{id} wave {wave}: {n} donors asked, {scope}",
                            len(contacts)).format(id=w.request_id, wave=w.wave_no, n=len(contacts), scope=scope))
            for c, name in contacts[:3]:
                demo.say(f"   {name}: {reasons_text(c.reasons, demo._, locale=demo.lang)}")
            if len(contacts) > 3:
                demo.say("   " + demo._("… and {n} more donor.", "… and {n} more donors.", len(contacts) - 3)
                         .format(n=len(contacts) - 3))
        for req in (await s.exec(select(BloodRequest))).all():
            if demo.states.get(req.id) != req.state:
                demo.states[req.id] = req.state
                if req.state not in ("open", "dispatching"):
                    demo.say(demo._("#{id}: {state}").format(id=req.id, state=state_name(demo, req.state).upper()))


async def summary(demo: Demo, sessionmaker) -> bool:
    """One row per request, then for each one short of its units before the deadline, why (issue 9)."""
    rows, short = [], []
    async with sessionmaker() as s:
        for req in (await s.exec(select(BloodRequest).order_by(BloodRequest.id))).all():
            counts = dict((await s.exec(select(RequestContact.state, func.count())
                                        .where(RequestContact.request_id == req.id)
                                        .group_by(RequestContact.state))).all())
            in_time = (await s.exec(select(func.count()).select_from(RequestContact).where(
                RequestContact.request_id == req.id, RequestContact.state == "donated",
                RequestContact.outcome_at <= req.deadline))).one()
            times = await request_headline(s, req)  # the same minutes as the board and /report
            late = (await s.exec(select(func.count()).select_from(RequestContact).where(
                RequestContact.request_id == req.id, late_condition(req.deadline)))).one()
            sent = (await s.exec(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.request_id == req.id, OutboxMessage.state == "sent"))).one()
            to_cover = "–" if times.covered is None else times.covered
            to_first = "–" if times.first_donation is None else times.first_donation
            said = sum(counts.get(st, 0) for st in SAID_AVAILABLE_STATES)
            label = f"#{req.id} {format_blood_type(req.abo, req.rh)}×{req.units}"
            rows.append((label, state_name(demo, req.state), sum(counts.values()), said,
                         req.target_available, f"{in_time}/{req.units}", to_first, to_cover, sent))
            if in_time < req.units:
                short.append(demo._("{request} fell short: {in_time} of {units} unit donated before its "
                                    "deadline {deadline} — {why}",
                                    "{request} fell short: {in_time} of {units} units donated before its "
                                    "deadline {deadline} — {why}", req.units).format(
                    request=label, in_time=in_time, units=req.units,
                    deadline=as_utc(req.deadline).astimezone(VIETNAM).strftime('%H:%M'),
                    why=why_short(demo, req, counts, late, demo.clock())))
    header = (demo._("request"), demo._("state"), demo._("asked"), demo._("available"), demo._("target"),
              demo._("donated in time"), demo._("min to 1st donation"), demo._("min to cover"), demo._("messages"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("", file=demo.out)
    for r in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)), file=demo.out)
    for line in short:
        print(line, file=demo.out)
    if demo.sim.violations:
        print(demo._("{n} message was sent faster than Telegram allows.",
                     "{n} messages were sent faster than Telegram allows.", demo.sim.violations)
              .format(n=demo.sim.violations), file=demo.out)
    else:
        print(demo._("Every message kept to Telegram's sending limits."), file=demo.out)
    return not short and len(rows) == len(SCENARIO) and demo.sim.violations == 0


def state_name(demo: Demo, state: str) -> str:
    return {"open": demo._("open"), "dispatching": demo._("asking"), "covered": demo._("covered"),
            "fulfilled": demo._("fulfilled"), "exhausted": demo._("exhausted"), "expired": demo._("expired"),
            "cancelled": demo._("cancelled")}.get(state, state)


def why_short(demo: Demo, req: BloodRequest, counts: dict, late: int, now: datetime) -> str:
    """The request's own record, in words: where the donors it needed were lost."""
    reasons = []
    if req.state == "exhausted":
        reasons.append(demo._("nobody was left to ask who could arrive in time"))
    elif req.state == "expired" or now >= as_utc(req.deadline):
        reasons.append(demo._("the deadline passed"))
    elif req.state not in CLOSED:
        reasons.append(demo._("the demo's time ran out before the deadline"))
    said = sum(counts.get(st, 0) for st in SAID_AVAILABLE_STATES)
    reasons.append(demo._("said available: {n}").format(n=said))
    if counts.get("no_show"):
        reasons.append(demo._("did not come or could not donate: {n}").format(n=counts["no_show"]))
    if counts.get("withdrew"):
        reasons.append(demo._("could not come after all: {n}").format(n=counts["withdrew"]))
    if late:
        reasons.append(demo._("could not arrive before the deadline: {n}").format(n=late))
    return "; ".join(reasons)


async def run_demo(*, speed: float = 300.0, seed_value: int = 7, out: TextIO = sys.stdout,
                   workdir: Path | None = None, real_timeout: float = 55.0, lang: str = "vi") -> int:
    rng = random.Random(seed_value)
    demo = Demo(out=out, speed=speed, rng=rng, lang=lang)
    start = datetime.now(timezone.utc).replace(microsecond=0)
    local = start.astimezone(VIETNAM)
    if not 7 <= local.hour < 21:  # a daytime scenario: quiet hours would hold the urgent request back
        start = start.astimezone(VIETNAM).replace(hour=9, minute=0).astimezone(timezone.utc)
    demo.clock = FrozenClock(start)
    with tempfile.TemporaryDirectory(prefix="redreserve-demo-", dir=workdir) as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        db = make_engine(url)
        await create_schema(db)
        sessionmaker = make_sessionmaker(db)
        demo.sim = sim = BotAPISimulator(bot_username="redreserve_demo_bot")
        await sim.start()
        sim.set_limits()  # Telegram's own: 30/s overall, 1/s per chat, 20/min per group
        # SMS through the SMS Gateway for Android simulator; answers by keyword (its webhook) or by link.
        demo.gw = gw = SmsGatewaySimulator(signing_key="demo-signing-key")
        await gw.start()
        server = None
        demo.zalo = zalo = ZaloBotSimulator(name="Bot CLB Hiến máu")
        await zalo.start()
        try:
            await seed(sessionmaker, sim, rng, demo.clock().astimezone(VIETNAM).date(), demo)
            await link_zalo(sessionmaker, demo)
            settings = Settings(telegram={"token": "100200300:DEMO", "api_base": sim.base_url},
                                database={"url": url},
                                sms={"enabled": True, "api_url": gw.base_url, "username": gw.username,
                                     "password": gw.password, "webhook_secret": "demo-signing-key",
                                     "unaccented": True, "per_second": 5},
                                http={"listen": "127.0.0.1:0", "public_url": "https://rr.example.vn",
                                      "link_secret": "demo-link-secret-0123456789"},
                                zalo={"enabled": True, "token": zalo.token, "api_url": zalo.base_url})
            bot = build_bot(settings)
            dp = build_dispatcher(settings, sessionmaker, clock=demo.clock, rng=random.Random(seed_value),
                                  use_scheduler=False)
            runtime = dp["runtime"]
            server = OpsServer("127.0.0.1", 0, health=Health(sessionmaker, lambda: True, UpdateActivity("polling"),
                                                             120),
                               metrics=Metrics(), clock=demo.clock, posts={SMS_WEBHOOK_PATH: runtime.sms.handle},
                               routes=runtime.answer_page.routes())
            await server.start()
            gw.webhook_url = f"http://127.0.0.1:{server.port}{SMS_WEBHOOK_PATH}"
            demo.answer_server = f"http://127.0.0.1:{server.port}"
            polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
            await asyncio.wait_for(runtime.started.wait(), 10)
            ok = await scenario(demo, dp, sessionmaker, real_timeout)
            ok = await summary(demo, sessionmaker) and ok
            await dp.stop_polling()
            await polling
            await bot.session.close()
        finally:
            if server is not None:
                await server.stop()
            await gw.stop()
            await sim.stop()
            await zalo.stop()
            await db.dispose()
    print(demo._("Demo succeeded: every request has enough units donated before its deadline.") if ok
          else demo._("The demo did NOT get every request enough units donated before its deadline (see above)."),
          file=out)
    return 0 if ok else 1


async def scenario(demo: Demo, dp, sessionmaker, real_timeout: float) -> bool:
    engine = dp["engine"]
    t0, real0 = demo.clock(), time.monotonic()
    todo = list(SCENARIO)
    wake: dict[int, datetime] = {}
    step = 0.05
    last = time.monotonic()
    while time.monotonic() - real0 < real_timeout and demo.clock() - t0 < MAX_VIRTUAL:
        while todo and demo.clock() >= t0 + timedelta(minutes=todo[0][0]):
            _, h, form = todo.pop(0)
            await post(demo, STAFF_BASE + h, form)
        plan_answers(demo)
        plan_sms_answers(demo)
        await press_due(demo)
        await answer_sms_due(demo)
        await plan_visits(demo, sessionmaker)
        await act_due(demo, sessionmaker)
        async with sessionmaker() as s:
            open_ids = (await s.exec(select(BloodRequest.id, BloodRequest.created_at)
                                     .where(BloodRequest.state.in_(("open", "dispatching"))))).all()
            unclosed = (await s.exec(select(func.count()).select_from(BloodRequest)
                                     .where(BloodRequest.state.not_in(CLOSED)))).one()
        for rid, created in open_ids:
            if demo.clock() >= wake.get(rid, demo.clock()):
                nxt = await engine.tick(rid)  # what the scheduler does in production
                wake[rid] = nxt if nxt is not None else demo.clock() + timedelta(minutes=1)
        await report_progress(demo, sessionmaker)
        if not todo and not unclosed:  # donors still on their way to a closed request were told not to come
            break
        await asyncio.sleep(step)
        # Virtual time follows real time × speed, not the number of turns: on a busy machine a turn
        # takes longer than ``step``, and a fixed advance per turn left the requests unfinished when
        # the real-time budget ran out. A capped jump keeps answers, waves and visits in order.
        real_now = time.monotonic()
        demo.clock.advance(seconds=min(real_now - last, MAX_TURN) * demo.speed)
        last = real_now
    else:
        demo.say(demo._("stopped: time is up (the summary shows where each request stands)"))
    await print_reports(demo, sessionmaker)
    return not todo


async def print_reports(demo: Demo, sessionmaker) -> None:
    """What the nurse sees at the end: each request's board, and its /report."""
    async with sessionmaker() as s:
        reqs = (await s.exec(select(BloodRequest).order_by(BloodRequest.id))).all()
    for req in reqs:
        await demo.sim.wait_idle(timeout=10)
        board = [m for m in demo.sim.messages(req.chat_id) if m.get("text", "").startswith("🩸")
                 and f"#{req.id}:" in m["text"].split("\n")[0]]
        if board:
            print("\n" + board[-1]["text"], file=demo.out)
        before = len(demo.sim.messages(req.posted_by))

        def report() -> list[dict]:
            return [m for m in demo.sim.messages(req.posted_by)[before:] if m.get("text", "").startswith("📊")]

        demo.sim.push_message(req.posted_by, f"/report {req.id}")
        await demo.sim.wait_for(lambda: bool(report()), timeout=10, what="the report")
        print("\n" + report()[0]["text"], file=demo.out)


async def post(demo: Demo, staff_id: int, form: str) -> None:
    """A nurse types the quick form and taps "Send" — through the bot, like a person."""
    demo.say(demo._("Hospital staff posts: /urgent {form}").format(form=form))
    before = len(demo.sim.messages(staff_id))
    demo.sim.push_message(staff_id, f"/urgent {form}", first_name="Điều dưỡng")
    await demo.sim.wait_for(lambda: len(demo.sim.messages(staff_id)) >= before + 2, timeout=10,
                            what="the bot's confirmation")
    last = demo.sim.last_message(staff_id)
    button = last["reply_markup"]["inline_keyboard"][0][0]
    demo.sim.push_callback(staff_id, last["message_id"], button["callback_data"])
    await demo.sim.wait_for_call("editMessageText", chat_id=staff_id, timeout=10)
