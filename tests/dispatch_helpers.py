"""Shared scaffolding for the dispatcher tests: a small town, a fake Telegram, a frozen clock."""

from __future__ import annotations

import itertools
import random
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

from sqlmodel import select

from dispatcher.engine import Dispatcher
from dispatcher.messages import Message
from dispatcher.sender import DeliveryResult, RateLimiter, RetryAfter, Sender, TransientError, Unreachable
from models.dispatch_tables import BloodRequest, RequestContact
from models.geo import geo_cell
from models.tables import Club, ClubMembership, Donor, Hospital, HospitalStaff, TelegramUser
from ground.clock import FrozenClock
from ground.config import DispatchConfig, Settings

# 09:00 in Hà Nội: outside quiet hours
START = datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)
HOSP = (21.0285, 105.8542)
STAFF_TG = 1_000_001
LEAD_TG = 1_000_002


class FakeTelegram:
    """Delivers instantly; can block users, fail the next calls, and check the limits exactly."""

    def __init__(self):
        self.sent: list[tuple[float, int, str, str, int | None]] = []  # (t, chat, kind, key, edit_of)
        self.blocked: set[int] = set()
        self.fail: list[Exception] = []
        self.ids = itertools.count(100)
        self.params: dict[str, Message] = {}  # key -> the message delivered (the outbox then clears personal data)

    async def deliver(self, m):
        if self.fail:
            raise self.fail.pop(0)
        if m.chat_id in self.blocked:
            raise Unreachable("Forbidden: bot was blocked by the user")
        self.sent.append((time.monotonic(), m.chat_id, m.kind, m.key, m.edit_message_id))
        self.params[m.key] = m.params
        return DeliveryResult(m.edit_message_id or next(self.ids))

    def kinds(self, chat=None):
        return [k for _, c, k, _, _ in self.sent if chat is None or c == chat]

    def violations(self, global_per_s=30, per_chat_per_s=1):
        times = sorted(t for t, *_ in self.sent)
        bad = sum(1 for i in range(global_per_s, len(times)) if times[i] - times[i - global_per_s] < 1.0)
        by_chat = defaultdict(list)
        for t, c, *_ in self.sent:
            by_chat[c].append(t)
        for ts in by_chat.values():
            ts.sort()
            bad += sum(1 for i in range(per_chat_per_s, len(ts)) if ts[i] - ts[i - per_chat_per_s] < 1.0)
        return bad


def settings(**dispatch):
    send = dispatch.pop("send", {})
    return Settings(dispatch=DispatchConfig(**{**dispatch, "send": {"poll_interval_s": 0.01, **send}}))


async def town(sm, n=40, *, abo="O", rh="+", linked=True, seed=1, spread=0.05, consent=True):
    """A hospital, its staff, a club with a lead, and ``n`` donors around it."""
    rng = random.Random(seed)
    async with sm() as s:
        h = Hospital(name="BV Bạch Mai", lat=HOSP[0], lon=HOSP[1], address="78 Giải Phóng")
        club = Club(name="CLB Hà Nội", lat=HOSP[0], lon=HOSP[1])
        s.add_all([h, club, TelegramUser(telegram_id=STAFF_TG), TelegramUser(telegram_id=LEAD_TG)])
        await s.flush()
        s.add(HospitalStaff(hospital_id=h.id, telegram_id=STAFF_TG))
        s.add(ClubMembership(club_id=club.id, role="lead", telegram_id=LEAD_TG))
        donors = []
        for i in range(n):
            lat, lon = HOSP[0] + rng.uniform(-spread, spread), HOSP[1] + rng.uniform(-spread, spread)
            tg = 7_000_000_000 + i if linked else None
            d = Donor(full_name=f"Donor {i:03d}", phone=f"+8498{i:07d}", telegram_id=tg, abo=abo, rh=rh, sex="M",
                      birth_date=date(1990, 1, 1), weight_kg=60, lat=lat, lon=lon, geo_cell=geo_cell(lat, lon),
                      consent_contact_at=START if consent else None)
            s.add(d)
            if tg:
                s.add(TelegramUser(telegram_id=tg))
            donors.append(d)
        await s.flush()
        for d in donors:
            s.add(ClubMembership(club_id=club.id, donor_id=d.id))
        await s.commit()
        return h.id, [d.id for d in donors]


def make(sm, clock=None, *, reroute=None, **cfg):
    st = settings(**cfg)
    clock = clock or FrozenClock(START)
    tg = FakeTelegram()
    d = Dispatcher(sm, st, clock=clock, rng=random.Random(7))

    async def _replace(ids):
        for rid in ids:
            await d.tick(rid)

    sender = Sender(sm, tg, st.dispatch.send, clock=clock, limiter=RateLimiter(10_000, 10_000, 10_000, 0),
                    prepare={"board": d.board_message}, on_unreachable=_replace, reroute=reroute)
    return d, sender, tg, clock


async def contacts(sm, rid):
    async with sm() as s:
        return list((await s.exec(select(RequestContact).where(RequestContact.request_id == rid)
                                  .order_by(RequestContact.id))).all())


async def request(sm, rid):
    async with sm() as s:
        return await s.get(BloodRequest, rid)


async def post(d, hid, **kw):
    """An O+ red-cell request for one unit, posted by the staff member (keywords override)."""
    args = dict(hospital_id=hid, abo="O", rh="+", component="red_cells", units=1, urgency="urgent",
                posted_by=STAFF_TG)
    args.update(kw)
    return await d.create_request(**args)


def tg_of(donor_id_index):
    return 7_000_000_000 + donor_id_index


__all__ = ["START", "HOSP", "STAFF_TG", "LEAD_TG", "FakeTelegram", "town", "make", "settings", "RetryAfter",
           "TransientError", "timedelta", "contacts", "request", "post"]
