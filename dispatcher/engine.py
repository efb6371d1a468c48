"""The request state machine: create, run waves, record answers, cancel, expire (issue 3).

open → dispatching → covered | exhausted | expired | cancelled; per donor
queued → notified → available | declined | no_answer (models.dispatch_tables).

Plain Python: a sessionmaker, the settings, a clock and a random source come in;
messages go out only through the outbox. The database is the source of truth:
``tick(request_id)`` reloads everything, does whatever is due, and returns when it
wants to be woken next; calling it late, or twice, fires a due wave once.

Concurrency. Every transaction starts by writing the request row ("touch"): on
PostgreSQL that row lock serialises all work on one request across processes; on
SQLite it takes the write lock up front, so a read-then-write transaction cannot
fail with SQLITE_BUSY_SNAPSHOT. Committing a donor is an INSERT into
donor_commitment, whose primary key is the donor: two requests cannot both get her.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher import messages as M
from dispatcher.candidates import (
    CallListEntry,
    Search,
    call_list,
    count_eligible,
    fetch_ranked,
    type_condition,
)
from dispatcher.channels import enqueue_for_donor, moved_calls, sms_left, usable
from dispatcher.compat import ABO, COMPONENTS, RH, InvalidBloodType, compatible_tiers
from dispatcher.coverage import arrives_in_time, count_counted, counted_condition, expected_arrival
from dispatcher.donor_keys import (
    call_key,
    current_call_key,
    current_call_keys,
    per_ask_key,
    stand_down_key,
)
from dispatcher.outbox import cancel_pending, enqueue, enqueue_many, message
from dispatcher.ranking import GROUP_LATE, RankContext, RankedDonor, Reason, with_reason
from dispatcher.realism import DeadlineCheck, deadline_check
from dispatcher.waves import (
    Rates,
    learned_rates,
    more_to_ask,
    window_left,
)
from dispatcher import board
from dispatcher.board import STOPPED_BY_STAFF, refresh_boards
from dispatcher.desk import Desk
from dispatcher.wakeups import Wakeups
from dispatcher.wave_policy import OURS, WavePolicy
from models.dispatch_tables import (
    ACTIVE_REQUEST_STATES,
    COMMITTED_CONTACT_STATES,
    OUTCOME_CONTACT_STATES,
    RECEIVING_REQUEST_STATES,
    SAID_AVAILABLE_STATES,
    BloodRequest,
    ContactState,
    DonorCommitment,
    RequestContact,
    RequestState,
    RequestWave,
    Urgency,
)
from models.geo import haversine_km
from models.tables import (
    AuditLog,
    Channel,
    Club,
    ClubMembership,
    Donor,
    DonorChannel,
    Hospital,
    HospitalChat,
    HospitalStaff,
    TelegramUser,
)
from ground.clock import Clock, as_utc
from ground.config import Settings
from ground.i18n import N_, Text

log = logging.getLogger(__name__)

CALL_LIST_PER_CLUB = 50
CALL_LIST_FETCH = 2000  # the most donors a call list is picked from


class InvalidRequest(ValueError):
    """A request that cannot be dispatched; nothing was created. ``text`` is for the poster."""

    def __init__(self, code: str, text: Text):
        super().__init__(code)
        self.code = code
        self.text = text


class AnswerOutcome(str, enum.Enum):
    """What a donor's button did; the bot words its reply from this alone."""
    accepted = "accepted"
    declined = "declined"
    en_route = "en_route"
    arrived = "arrived"
    withdrew = "withdrew"
    duplicate = "duplicate"  # the same answer again (a second tap, a redelivered update): nothing changed
    closed = "closed"  # the request is no longer asking
    committed_elsewhere = "committed_elsewhere"  # she is already coming to another request
    refused = "refused"  # not her button, or forged
    # A withdrawal the hospital overtook: nothing changed.
    already_arrived = "already_arrived"
    already_donated = "already_donated"


ANSWER_OK = frozenset({AnswerOutcome.accepted, AnswerOutcome.declined, AnswerOutcome.en_route, AnswerOutcome.arrived,
                       AnswerOutcome.withdrew, AnswerOutcome.duplicate})


@dataclass(frozen=True)
class AnswerResult:
    outcome: AnswerOutcome  # a plain string is taken and checked: an unknown outcome fails here, not in the bot
    request_id: int
    covered: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", AnswerOutcome(self.outcome))

    @property
    def ok(self) -> bool:
        return self.outcome in ANSWER_OK


@dataclass(frozen=True)
class WaveParams:
    wave_no: int
    radius_km: float | None  # None: every cell (rare type)
    last_resort: bool  # the other RhD's tiers included
    widest: bool  # nothing left to widen


# Asked, not answered: stood down when a request stops asking (an exhausted one: at its deadline).
SILENT_CONTACT_STATES = (ContactState.queued.value, ContactState.notified.value, ContactState.no_answer.value)
# Between two chunks of a wave's rest on SQLite (see Dispatcher.tick): longer than SQLite's busy back-off.
REST_PAUSE_S = 0.12


class Dispatcher:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, clock: Clock,
                 rng: random.Random | None = None, wakeups: Wakeups | None = None,
                 policy: WavePolicy = OURS, channels: Collection[str] = ()) -> None:
        self.sm = sessionmaker
        self.cfg = settings.dispatch
        # Channels besides Telegram whose sender runs (bot.runtime): a donor agreed to one of them is
        # asked there, within its rules (dispatcher.channels.usable).
        self.channels = tuple(channels)
        self.sms = settings.sms
        self.rules = settings.eligibility
        self.tz = settings.bot.tz  # local days and quiet hours, one key for the whole bot
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.wakeups = wakeups or Wakeups()  # who hears of written messages and due moments: bot.runtime says
        self.rates_prior = Rates.of(self.cfg.rates)
        self.policy = policy  # how waves are sized, timed and widened (the policy lab runs the others)
        # One process drives the dispatcher (one poller per bot token, DOMAIN.md §8); this lock keeps
        # its own transactions from interleaving, and the row "touch" guards against any other.
        self.lock = asyncio.Lock()
        # A fired wave's first chunk is committed (and its calls leave) before the rest is written:
        # one second of the sender's global budget, so the sender is never idle waiting for the rest.
        self.first_chunk = max(1, int(self.cfg.send.global_per_second))
        self._rest: dict[int, list[RankedDonor]] = {}  # request id → the decided rest of its wave (tick only)
        bind = getattr(sessionmaker, "kw", {}).get("bind")
        self._one_writer = bind is None or bind.dialect.name == "sqlite"
        self.desk = Desk(self)  # the hospital's actions, under this engine's lock and state machine

    def kick(self) -> None:
        """After a transaction: its messages are in the outbox, and the request may have moved."""
        self.wakeups.outbox_written()
        self.wakeups.requests_changed()

    def stop_target(self, units: int, urgency: str) -> int:
        """Confirmed "available" at which asking stops: the one home of the rule, for a new request and
        for units the desk adds (the policy's margin, the prior rates: a stored target does not move
        with what the engine learns later)."""
        return self.policy.target(units, self.rates_prior, self.cfg, urgency)

    # ---------------------------------------------------------------- create
    async def create_request(self, *, hospital_id: int, abo: str, rh: str, component: str, units: int,
                             urgency: str, posted_by: int | None = None, deadline: datetime | None = None,
                             note: str = "", rh_positive_ok: bool = False, chat_id: int | None = None,
                             board_message_id: int | None = None, board_locale: str | None = None) -> int:
        """Validate, store and fire the first wave; returns the request id. Raises InvalidRequest.

        ``board_message_id``: the message in ``chat_id`` that becomes the live board (the poster's
        confirmation), attached in the same transaction: the first wave queues its edit in the outbox,
        so a crash before the bot redraws it leaves the board drawn at restart, not a live "Send" button."""
        now = self.clock()
        self._validate(abo, rh, component, units, urgency, deadline, now)
        async with self.lock:
            async with self.sm() as s, s.begin():
                hospital = await s.get(Hospital, hospital_id)
                if hospital is None:
                    raise InvalidRequest("hospital", Text(N_("Unknown hospital.")))
                if chat_id is not None and chat_id < 0:
                    await self._claim_group(s, chat_id, hospital, posted_by, now)
                req = BloodRequest(
                    hospital_id=hospital_id, abo=abo, rh=rh, component=component, units=units, urgency=urgency,
                    deadline=deadline or now + timedelta(hours=self.cfg.deadline_hours.of(urgency)), note=note,
                    rh_positive_ok=rh_positive_ok, posted_by=posted_by, chat_id=chat_id,
                    state=RequestState.open.value,
                    target_available=self.stop_target(units, urgency),
                    next_wave_at=now, created_at=now, updated_at=now)
                s.add(req)
                await s.flush()
                assert req.id is not None  # flushed: the database gave it its id
                if board_message_id is not None and chat_id is not None:
                    await board.attach(s, req.id, chat_id, board_message_id, board_locale, now)
                req.rare = await self._is_rare(s, req, hospital, now)
                request_id = req.id
        await self.tick(request_id)
        return request_id

    async def check_deadline(self, *, hospital_id: int, abo: str, rh: str, component: str, units: int,
                             urgency: str, deadline: datetime | None = None) -> DeadlineCheck | None:
        """Before posting (issue 9): can the nearest likely-eligible donors arrive and give in time?"""
        now = self.clock()
        async with self.sm() as s:
            hospital = await s.get(Hospital, hospital_id)
            if hospital is None or abo not in ABO or rh not in RH or component not in COMPONENTS:
                return None
            deadline = deadline or now + timedelta(hours=self.cfg.deadline_hours.of(urgency))
            return await deadline_check(s, hospital=hospital, abo=abo, rh=rh, component=component,
                                        want=self.stop_target(units, urgency),
                                        deadline=deadline, now=now, cfg=self.cfg, rules=self.rules, tz=self.tz)

    async def _claim_group(self, s, chat_id: int, hospital: Hospital, posted_by: int | None, now) -> None:
        """A staff group belongs to one hospital (issue 4): the first request posted there binds it."""
        assert hospital.id is not None  # a row read from the database
        bound = await s.get(HospitalChat, chat_id)
        if bound is None:
            s.add(HospitalChat(chat_id=chat_id, hospital_id=hospital.id, bound_by=posted_by, created_at=now))
            await self.audit(s, now, posted_by, "group.bind", f"hospital:{hospital.id}", f"chat:{chat_id}")
        elif bound.hospital_id != hospital.id:
            owner = await s.get(Hospital, bound.hospital_id)
            raise InvalidRequest("group", Text(N_("This group belongs to {hospital}: post requests for another "
                                                 "hospital from that hospital's group or in a private chat with "
                                                 "me."), {"hospital": owner.name if owner else "?"}))

    def _validate(self, abo, rh, component, units, urgency, deadline, now) -> None:
        if abo not in ABO or rh not in RH:
            raise InvalidRequest("blood_type", Text(N_("Unknown blood type: use O, A, B or AB with Rh + or −.")))
        if component not in COMPONENTS:
            raise InvalidRequest("component", Text(N_("Unknown component.")))
        if urgency not in {u.value for u in Urgency}:
            raise InvalidRequest("urgency", Text(N_("Urgency must be critical, urgent or planned.")))
        if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= self.cfg.max_units:
            raise InvalidRequest("units", Text(N_("Units must be a whole number from 1 to {max}."),
                                               {"max": self.cfg.max_units}))
        if deadline is not None and (deadline.tzinfo is None or deadline <= now):
            raise InvalidRequest("deadline", Text(N_("The deadline must be in the future.")))
        try:
            compatible_tiers(abo, rh, component)
        except InvalidBloodType as exc:  # pragma: no cover - guarded above
            raise InvalidRequest("blood_type", Text(N_("Unknown blood type."))) from exc

    async def _is_rare(self, s, req: BloodRequest, hospital: Hospital, now: datetime) -> bool:
        """DOMAIN.md §3: Rh− requests, or a pool smaller than the threshold within the widest radius."""
        if req.rh == "-":
            return True
        # A type is rare by its donors, not by how they are reached: every channel running counts.
        search = self.search(req, hospital, now, radius=self.cfg.max_radius_km, last_resort=False,
                             channels=self.channels)
        n = await count_eligible(s, search, self.rules, at_most=self.cfg.rare_pool_threshold)
        return n < self.cfg.rare_pool_threshold

    # ---------------------------------------------------------------- the tick
    async def tick(self, request_id: int) -> datetime | None:
        """Do whatever is due for the request; returns when to be woken next (None: closed)."""
        async with self.lock:
            self._rest.pop(request_id, None)
            async with self.sm() as s, s.begin():
                nxt = await self._tick(s, request_id)
                deadline = (await s.exec(select(BloodRequest.deadline).where(BloodRequest.id == request_id))).first()
            rest = self._rest.pop(request_id, None)
        if nxt is not None:
            self.wakeups.request_due(request_id, nxt, deadline)
        self.kick()  # the wave's first chunk leaves while the rest is written
        while rest:
            # The rest in chunks, each its own short transaction: on SQLite a single one would hold the
            # one write lock the sender needs to mark the first calls as being sent. Back to back, the
            # chunks still won that lock every time (the sender's retries back off up to 100 ms inside
            # SQLite): measured, the first call left only once the whole wave was written. A pause
            # longer than that back-off lets the sender in; the rest is needed only at its pace (30/s).
            if self._one_writer:
                await asyncio.sleep(REST_PAUSE_S)
            chunk, rest = rest[:self.first_chunk], rest[self.first_chunk:]
            async with self.lock:
                async with self.sm() as s, s.begin():
                    now = self.clock()
                    req = await self.touch(s, request_id, now)
                    if req is None or req.state not in ACTIVE_REQUEST_STATES or now >= req.deadline:
                        break
                    hospital = await s.get(Hospital, req.hospital_id)
                    assert hospital is not None  # a request's hospital: hospitals are never deleted
                    if not await self._finish_wave(s, req, hospital, now, chunk):
                        rest = []  # complete (perhaps by a tick in between, which ranked the missing again)
            self.kick()
        return nxt

    async def _tick(self, s, request_id: int) -> datetime | None:
        now = self.clock()
        req = await self.touch(s, request_id, now)
        if req is not None and req.state == RequestState.exhausted.value and now >= req.deadline:
            # The asks an exhausted request left out (close_request) end with its deadline: its deadline job.
            await self._stand_down(s, req, list(SILENT_CONTACT_STATES), req.state, "expired", now)
        if req is None or req.state not in ACTIVE_REQUEST_STATES:
            return None
        assert req.id is not None  # a row read from the database
        if now >= req.deadline:
            await self.close_request(s, req, RequestState.expired.value, now)
            return None
        window = timedelta(minutes=self.cfg.response_window_min.of(req.urgency))
        await self._time_out_silent(s, req, now, window)
        confirmed = await self.confirmed(s, req)
        if confirmed >= req.target_available:
            await self.close_request(s, req, RequestState.covered.value, now)
            return None
        quiet_end = self._quiet_until(now) if req.urgency != Urgency.critical.value else None
        hospital = await s.get(Hospital, req.hospital_id)
        # A wave whose first chunk was committed alone (the process died before the rest): finish it
        # first, so that whatever this tick decides counts every donor the wave meant to ask.
        await self._finish_wave(s, req, hospital, now, None)
        if quiet_end is not None:
            # Quiet hours hold back non-critical requests entirely; the wave waits for morning.
            if req.next_wave_at is None or req.next_wave_at < quiet_end:
                req.next_wave_at = quiet_end
            return min(quiet_end, req.deadline)

        rates = await self._rates(s, hospital)
        first_wave = req.wave_no == 0
        wave_before = req.wave_no
        asked_now: list[RankedDonor] = []
        for _ in range(12):  # a wave that finds nobody new widens again at once
            outstanding = await self._outstanding(s, req.id, now, window)
            firing = (req.next_wave_at is not None and req.next_wave_at <= now) or (
                self.policy.replace_at_once and req.wave_no > 0 and not outstanding)
            if firing:
                await self._advance_wave(s, req, now)
            params = self._wave_params(req)
            n = more_to_ask(units=req.units, confirmed=confirmed, outstanding=outstanding, rates=rates,
                            confidence=self.policy.confidence_of(self.cfg, req.urgency),
                            margin=self.policy.margin_of(self.cfg, req.urgency),
                            minimum=self.policy.smallest_wave(self.cfg) if firing else 0, maximum=self.cfg.max_wave)
            n = self.policy.wave_size(units=req.units, missing=req.target_available - confirmed,
                                      first=req.wave_no <= 1, firing=firing, model=n)
            ranked: list[RankedDonor] = []
            if n > 0 or (req.rare and firing):
                ranked = await self._find(s, req, hospital, params, n, now)
                await self._ask_streamed(s, req, hospital, ranked, now, firing=firing)
                asked_now += ranked
            if firing:
                s.add(RequestWave(request_id=req.id, wave_no=req.wave_no, fired_at=now, radius_km=params.radius_km,
                                  max_tier=max((r.tier for r in ranked), default=0), asked=len(ranked)))
            if ranked or outstanding or n == 0:
                break
            if params.widest:
                if await self._retry_later(s, req, now):
                    break
                await self.close_request(s, req, RequestState.exhausted.value, now)
                return None
            req.next_wave_at = now  # nobody new within this wave's reach: widen at once
        if first_wave:
            await self._posted(s, req, hospital, asked_now, now)
        if asked_now or first_wave or req.wave_no != wave_before:
            await refresh_boards(s, req.id, now)
        return await self._next_wake(s, req, now, window)

    async def _time_out_silent(self, s, req: BloodRequest, now: datetime, window: timedelta) -> None:
        """A call left unanswered for the whole response window is "no answer" from now on."""
        silent = await s.exec(update(RequestContact)
                              .where(col(RequestContact.request_id) == req.id,
                                     col(RequestContact.state) == ContactState.notified.value,
                                     col(RequestContact.notified_at) <= now - window)
                              .values(state=ContactState.no_answer.value))
        if silent.rowcount:
            assert req.id is not None  # a row read from the database
            await refresh_boards(s, req.id, now)

    async def _ask_streamed(self, s, req: BloodRequest, hospital: Hospital, ranked: list[RankedDonor],
                            now: datetime, *, firing: bool) -> None:
        if firing and len(ranked) > self.first_chunk:
            assert req.id is not None  # a row read from the database
            # Streamed (issue 10): the best-ranked chunk now, the rest in a transaction of its own
            # (tick). The wave's row (_tick) records the whole wave, so the database knows it is
            # partly written until its contacts reach that count (_finish_wave).
            await self._ask(s, req, hospital, ranked[:self.first_chunk], now)
            self._rest[req.id] = ranked[self.first_chunk:]
        else:
            await self._ask(s, req, hospital, ranked, now)

    async def touch(self, s, request_id: int, now: datetime) -> BloodRequest | None:
        res = await s.exec(update(BloodRequest).where(col(BloodRequest.id) == request_id).values(updated_at=now))
        if res.rowcount == 0:
            return None
        return (await s.exec(select(BloodRequest).where(BloodRequest.id == request_id)
                             .execution_options(populate_existing=True))).one()

    async def _advance_wave(self, s, req: BloodRequest, now: datetime) -> None:
        interval = self.policy.interval(self.cfg, req.urgency)
        res = await s.exec(update(BloodRequest)
                           .where(col(BloodRequest.id) == req.id, col(BloodRequest.wave_no) == req.wave_no)
                           .values(wave_no=req.wave_no + 1, next_wave_at=now + interval,
                                   state=RequestState.dispatching.value)
                           .execution_options(synchronize_session=False))
        if res.rowcount != 1:  # pragma: no cover - the touch already serialises us
            raise RuntimeError(f"request {req.id}: wave {req.wave_no + 1} fired elsewhere")
        req.wave_no += 1
        req.next_wave_at = now + interval
        req.state = RequestState.dispatching.value

    async def _retry_later(self, s, req: BloodRequest, now: datetime) -> bool:
        """Nobody new within reach: a policy with retries waits and tries again (BloodConnect's hourly retries)."""
        if not self.policy.retries:
            return False
        # The audit trail counts the retries: it is the request's record, and needs no column of its own.
        done = (await s.exec(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "dispatch_retry", AuditLog.subject == f"request:{req.id}"))).one()
        if done >= self.policy.retries:
            return False
        await self.audit(s, now, None, "dispatch_retry", f"request:{req.id}", f"retry={done + 1}")
        req.next_wave_at = now + timedelta(minutes=self.policy.retry_min)
        return True

    def _wave_params(self, req: BloodRequest) -> WaveParams:
        w = max(req.wave_no, 1)
        last_resort = w >= self.cfg.last_resort_from_wave
        has_last_resort = any(t.last_resort for t in self._tiers(req, True))
        if req.rare:
            radius = None
            widest = last_resort or not has_last_resort
        else:
            radius = self.policy.radius_km(self.cfg, w)
            widest = radius >= self.policy.reach_km(self.cfg) and (last_resort or not has_last_resort)
        return WaveParams(w, radius, last_resort, widest)

    def _tiers(self, req: BloodRequest, last_resort: bool):
        tiers = compatible_tiers(req.abo, req.rh, req.component, req.rh_positive_ok)
        return tiers if last_resort else [t for t in tiers if not t.last_resort]

    def search(self, req: BloodRequest, hospital: Hospital, now: datetime, *, radius, last_resort,
               channels: tuple[str, ...] = ()) -> Search:
        override = req.rare and req.urgency == Urgency.critical.value  # issue 3: the cap yields to a rare critical
        return Search(hospital.lat, hospital.lon, req.component, self._tiers(req, last_resort), now,
                      now.astimezone(self.tz).date(), req.deadline, radius, request_id=req.id,
                      cap_count=None if override else self.cfg.contact_cap_count, cap_days=self.cfg.contact_cap_days,
                      require_consent=self.cfg.require_contact_consent, reask_before_wave=req.wave_no,
                      channels=channels)

    async def usable_channels(self, s, req: BloodRequest, now: datetime) -> tuple[str, ...]:
        """The channels besides Telegram this request may call on now (dispatcher.channels.usable)."""
        return await usable(s, req, now, self.channels, self.sms)

    def _ctx(self, hospital: Hospital, req: BloodRequest, now: datetime) -> RankContext:
        return RankContext.of(hospital_lat=hospital.lat, hospital_lon=hospital.lon, now=now,
                              today=now.astimezone(self.tz).date(), deadline=req.deadline,
                              dispatch=self.cfg, eligibility=self.rules)

    async def _find(self, s, req, hospital, params: WaveParams, n: int, now: datetime) -> list[RankedDonor]:
        """Whom to ask now, in stages (issue 9; DOMAIN.md §1, §3, §6).

        1. The identical type who can arrive before the deadline, anywhere within reach (not
           only the wave's radius): O is every patient's reserve.
        2. Compatible types of the patient's RhD, in time, within the wave's radius — only when
           the identical type gave fewer than ``n`` (it cannot cover the request in time).
        3. The other RhD (from ``last_resort_from_wave``), in time, likewise.
        4. Only when nobody who can arrive in time is left anywhere (the widest wave): donors
           who cannot, whose call says so honestly.
        A rare type asks every match of a stage it reaches at once until donors first cover it; otherwise
        a stage gives at most what is still wanted.
        """
        ctx = self._ctx(hospital, req, now)
        channels = await self.usable_channels(s, req, now)
        tiers = self._tiers(req, params.last_resort)
        own = [t for t in tiers if not t.last_resort]
        stages = [(own[:1], self.policy.reach_km(self.cfg)), (own[1:], params.radius_km),
                  ([t for t in tiers if t.last_resort], params.radius_km)]
        found: list[RankedDonor] = []
        # Everyone at once is how a rare request starts (DOMAIN.md §3). Once donors have covered it, it
        # reopens only because one dropped out: asking again everyone it told "no longer needed" would
        # message a whole club twice more for one place; it asks the best few, like any request (§5).
        everyone = req.rare and req.covered_at is None and self.policy.rare_everyone
        for k, (stage, radius) in enumerate(stages):
            if not stage or (k > 0 and len(found) >= n):
                break
            limit = self.cfg.rare_max_wave if everyone else n - len(found)
            if limit <= 0:
                break
            search = self.search(req, hospital, now, radius=None if req.rare else radius, last_resort=True,
                                 channels=channels)
            search.tiers = stage
            ranked = await fetch_ranked(s, search, ctx, self.rules, limit, in_time_only=True)
            if k > 0:
                why = Reason("identical_short", {"type": f"{req.abo}{req.rh}",
                                                 "found": sum(r.tier == 0 for r in found)})
                ranked = [with_reason(r, why) for r in ranked]
            found += ranked
        if found or n <= 0 or not params.widest:
            return found
        late = self.search(req, hospital, now, radius=None if req.rare else self.policy.reach_km(self.cfg),
                           last_resort=params.last_resort, channels=channels)
        return await fetch_ranked(s, late, ctx, self.rules, n)

    async def _ask(self, s, req: BloodRequest, hospital: Hospital, ranked: list[RankedDonor], now: datetime) -> None:
        # One batched INSERT of the contacts and one of their calls: a 300-donor wave written row by row
        # kept every call waiting 1–1.5 s (issue 10).
        if not ranked:
            return
        assert req.id is not None  # a row read from the database
        deadline_local = req.deadline.astimezone(self.tz).strftime("%H:%M %d/%m/%Y")
        # Told "no longer needed" before the request reopened (dispatcher.donor_keys): her row is asked again.
        before = {c.donor_id: c for c in (await s.exec(select(RequestContact).where(
            RequestContact.request_id == req.id,
            col(RequestContact.donor_id).in_([r.donor_id for r in ranked])))).all()}
        asked: list[tuple[RankedDonor, RequestContact, bool, int, DonorChannel | None]] = []
        # Off Telegram (issue 15): her channel's row, and what SMS may still be spent on this request.
        off_ids = [r.candidate.channel_id for r in ranked if r.candidate.channel_id is not None]
        off = {ch.id: ch for ch in (await s.exec(select(DonorChannel).where(
            col(DonorChannel.id).in_(off_ids)))).all()} if off_ids else {}
        sms_budget, sms_refusal = (await sms_left(s, req, now, self.sms) if any(
            ch.channel == Channel.sms.value for ch in off.values()) else (0, None))
        sms_refusal = sms_refusal or f"sms budget spent within the wave ({sms_budget} left before it)"
        for r in ranked:
            fields: dict[str, Any] = dict(state=ContactState.queued.value, wave_no=req.wave_no, tier=r.tier, distance_km=r.distance_km,
                          travel_min=r.travel_min, expected_arrival_at=expected_arrival(now, r.travel_min,
                                                                                        self.cfg.prep_min),
                          score=r.score, reasons=r.reasons_json(), token=f"{self.rng.getrandbits(48):012x}",
                          asked_at=now)
            c = before.get(r.donor_id)
            again = c is not None
            if c is not None:
                for name, value in (fields | dict(notified_at=None, answered_at=None, en_route_at=None,
                                                  arrived_at=None, outcome_at=None, undo=None)).items():
                    setattr(c, name, value)
            else:
                c = RequestContact(request_id=req.id, donor_id=r.donor_id, **fields)
                s.add(c)
            via = off.get(r.candidate.channel_id) if r.candidate.telegram_id is None else None
            if via is not None and via.channel == Channel.sms.value:
                if sms_budget <= 0:
                    # The budget ran out within this wave: asked, reached by nothing; the lead's call list
                    # has her (dispatcher.candidates.call_list) and the next donor is asked in her place.
                    c.state = ContactState.unreachable.value
                    await self.audit(s, now, None, "channel_refused", f"request:{req.id}",
                                     f"donor:{r.donor_id} sms: {sms_refusal}")
                    continue
                sms_budget -= 1
            chat = r.candidate.telegram_id if via is None else via.id
            assert chat is not None  # ranked only among donors the bot can reach
            asked.append((r, c, again, chat, via))
        await s.flush()  # one INSERT … RETURNING for the new rows: the calls need the contacts' ids
        calls = [message(
            key=call_key(req.id, r.donor_id, req.wave_no if again else None), chat_id=chat,
            locale=r.candidate.locale, request_id=req.id, contact_id=c.id, now=now, params=M.Call(
                request_id=req.id, token=c.token, hospital=hospital.name, address=hospital.address,
                abo=req.abo, rh=req.rh, component=req.component, units=req.units, urgency=req.urgency,
                deadline=req.deadline.isoformat(), deadline_local=deadline_local,
                distance_km=None if r.distance_km is None else round(r.distance_km, 1),
                travel_min=None if r.travel_min is None else round(r.travel_min), note=req.note,
                # Issue 9: a donor who cannot make it in time is asked only when nobody who can is
                # left, and her call says how late she would be.
                late=r.group == GROUP_LATE, again=again,
                arrive_local=None if c.expected_arrival_at is None else self._local(c.expected_arrival_at)))
            for r, c, again, chat, _ in asked]
        for call, (_, _, _, _, via) in zip(calls, asked):
            if via is not None:
                # Under the key a call moved on to that channel would have (dispatcher.channels.family):
                # her answer, the stand-down and the venue follow it there.
                call.key, call.channel, call.address = f"{call.key}@{via.channel}", via.channel, via.address
        await enqueue_many(s, calls)

    async def _finish_wave(self, s, req: BloodRequest, hospital: Hospital, now: datetime,
                           rest: list[RankedDonor] | None) -> int:
        """Ask the donors still missing from the current wave, if its first chunk was written alone.

        The database is the truth: the wave's row holds how many it asks, its contacts how many were
        written. ``rest``: the next chunk of what the tick decided (the normal path); None after a
        restart, or for a tick that comes before the rest is written: the missing ones are ranked again
        (the search never returns a donor already asked, so none is asked twice, and the wave number
        does not move, so no wave is skipped or doubled). Returns how many the wave still misses."""
        wave = (await s.exec(select(RequestWave).where(RequestWave.request_id == req.id,
                                                       RequestWave.wave_no == req.wave_no))).first()
        if wave is None or not wave.asked:
            return 0
        assert req.id is not None  # a row read from the database
        written = (await s.exec(select(func.count()).select_from(RequestContact)
                                .where(RequestContact.request_id == req.id,
                                       RequestContact.wave_no == req.wave_no))).one()
        missing = wave.asked - written
        if missing <= 0:
            return 0
        recount = rest is None
        if rest is None:
            rest = await self._find(s, req, hospital, self._wave_params(req), missing, now)
        else:  # a tick in between may have finished it already, or asked some of them as replacements
            # Asked in this wave: a donor stood down in an earlier one may be asked again (reopened).
            done = set((await s.exec(select(RequestContact.donor_id).where(
                RequestContact.request_id == req.id, RequestContact.wave_no == req.wave_no,
                col(RequestContact.donor_id).in_([r.donor_id for r in rest])))).all())
            rest = [r for r in rest if r.donor_id not in done]
        rest = rest[:missing]
        await self._ask(s, req, hospital, rest, now)
        if recount:  # fewer than meant (donors became unreachable meanwhile): the wave is complete as it stands
            wave.asked = written + len(rest)
        await refresh_boards(s, req.id, now)
        log.debug("request %s wave %s: %d more asked (%d of %d)", req.id, req.wave_no, len(rest),
                  written + len(rest), wave.asked)
        return wave.asked - written - len(rest)

    async def _outstanding(self, s, request_id: int, now: datetime, window: timedelta) -> list[float]:
        rows = (await s.exec(select(RequestContact.state, RequestContact.notified_at)
                             .where(RequestContact.request_id == request_id,
                                    col(RequestContact.state).in_((ContactState.queued.value,
                                                                   ContactState.notified.value))))).all()
        w = window.total_seconds() / 60
        return [1.0 if st == ContactState.queued.value or at is None
                else window_left((now - at).total_seconds() / 60, w) for st, at in rows]

    async def confirmed(self, s, req: BloodRequest) -> int:
        """Said "available", not since let down, and expected before the deadline (dispatcher.coverage)."""
        assert req.id is not None  # a row read from the database
        return await count_counted(s, req.id, req.deadline)

    async def count_contacts(self, s, request_id: int, *states: str) -> int:
        return (await s.exec(select(func.count()).select_from(RequestContact)
                             .where(RequestContact.request_id == request_id,
                                    col(RequestContact.state).in_(states)))).one()

    async def _next_wake(self, s, req: BloodRequest, now: datetime, window: timedelta) -> datetime:
        assert req.id is not None  # a row read from the database
        times = [req.deadline]
        if req.next_wave_at is not None:
            times.append(req.next_wave_at)
        earliest = (await s.exec(select(func.min(RequestContact.notified_at))
                                 .where(RequestContact.request_id == req.id,
                                        RequestContact.state == ContactState.notified.value))).one()
        if earliest is not None:
            times.append(as_utc(earliest) + window)
        if await self.count_contacts(s, req.id, ContactState.queued.value):
            times.append(now + window)  # their windows start once the sender delivers them
        return max(min(times), now)

    def _quiet_until(self, now: datetime) -> datetime | None:
        """The end of the current quiet hours (configurable, local time), or None outside them."""
        local = now.astimezone(self.tz)
        start, end = _hhmm(self.cfg.quiet_start), _hhmm(self.cfg.quiet_end)
        t = local.time()
        inside = (start <= t or t < end) if start > end else (start <= t < end)
        if not inside or start == end:
            return None
        day = local.date() if t < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, tzinfo=self.tz).astimezone(now.tzinfo)

    async def _rates(self, s, hospital: Hospital) -> Rates:
        """The nearby clubs' own rates, DOMAIN.md §5's defaults as the prior."""
        clubs = (await s.exec(select(Club.id, Club.lat, Club.lon))).all()
        near = [cid for cid, lat, lon in clubs
                if haversine_km(hospital.lat, hospital.lon, lat, lon) <= self.cfg.max_radius_km]
        if not near:
            return self.rates_prior
        C = RequestContact
        # Only settled asks teach anything: one still inside its window is neither a yes nor a no.
        asked_states = SAID_AVAILABLE_STATES + (ContactState.declined.value, ContactState.no_answer.value)
        base = (select(func.count()).select_from(C).join(ClubMembership, col(ClubMembership.donor_id) == C.donor_id)
                .where(col(ClubMembership.club_id).in_(near)))
        state = col(C.state)
        asked = (await s.exec(base.where(state.in_(asked_states)))).one()
        available = (await s.exec(base.where(state.in_(SAID_AVAILABLE_STATES)))).one()
        # "Arrives × passes" learns from outcomes the hospital marked (issue 4): donated vs no-show or deferred.
        outcomes = (await s.exec(base.where(state.in_(OUTCOME_CONTACT_STATES)))).one()
        donated = (await s.exec(base.where(state == ContactState.donated.value))).one()
        return learned_rates(self.rates_prior, self.cfg.rates.prior_strength, asked=asked, available=available,
                             outcomes=outcomes, donated=donated)

    # ---------------------------------------------------------------- answers
    async def record_answer(self, request_id: int, answer: str, token: str, *, telegram_id: int | None = None,
                            donor_id: int | None = None) -> AnswerResult:
        """A donor's press on her call: available, declined, on my way, arrived, or "I can't come after all"
        (``withdraw``). Bound to (request, donor, token); idempotent."""
        if answer not in ("available", "declined", "en_route", "arrived", "withdraw"):
            return AnswerResult(AnswerOutcome.refused, request_id)
        async with self.lock:
            async with self.sm() as s, s.begin():
                result, top_up = await self._answer(s, request_id, answer, token, telegram_id, donor_id)
        if top_up:
            await self.tick(request_id)
        else:
            self.kick()
        return result

    async def _answer(self, s, request_id, answer, token, telegram_id, donor_id) -> tuple[AnswerResult, bool]:
        now = self.clock()
        req = await self.touch(s, request_id, now)
        if donor_id is None and telegram_id is not None:
            donor_id = (await s.exec(select(Donor.id).where(Donor.telegram_id == telegram_id))).first()
        contact = None
        if req is not None and donor_id is not None:
            contact = (await s.exec(select(RequestContact).where(RequestContact.request_id == request_id,
                                                                 RequestContact.donor_id == donor_id))).first()
        if contact is None or not hmac.compare_digest(contact.token, str(token)):
            # Callback data can be forged (DOMAIN.md §8): not this donor's, not this request's, or a bad token.
            await self.audit(s, now, telegram_id, "dispatch_answer_refused",
                              f"request:{request_id}", f"answer={answer} donor={donor_id}")
            return AnswerResult(AnswerOutcome.refused, request_id), False
        # Her contact was looked up only for a request that exists: a row read from the database.
        assert req is not None and req.id is not None
        if answer in ("en_route", "arrived"):
            return await self._progress(s, req, contact, answer, now, telegram_id), False
        if answer == "withdraw":
            return await self._withdraw(s, req, contact, now, telegram_id)
        want = ContactState.available.value if answer == "available" else ContactState.declined.value
        if contact.state == want or (want == ContactState.available.value
                                     and contact.state in COMMITTED_CONTACT_STATES):
            return AnswerResult(AnswerOutcome.duplicate, request_id, req.state == RequestState.covered.value), False
        open_states = (ContactState.queued.value, ContactState.notified.value, ContactState.no_answer.value,
                       ContactState.declined.value, ContactState.available.value, ContactState.en_route.value)
        committed = contact.state in (ContactState.available.value, ContactState.en_route.value)
        # An exhausted request still listens to the asks it left out (close_request): a late answer counts.
        active = req.state in ACTIVE_REQUEST_STATES + (RequestState.exhausted.value,) or (
            req.state == RequestState.covered.value and committed)
        if want == ContactState.available.value and req.state == RequestState.covered.value and not committed \
                and now < req.deadline and contact.state in open_states + (ContactState.stood_down.value,):
            # Her "available" crossed the stand-down: she is kept if she would arrive before someone counted.
            replaced = await self._nearer_than_counted(s, req, contact, now)
            if replaced is not None:
                return await self._accept(s, req, contact, now, replaces=replaced)
        if not active or contact.state not in open_states or now >= req.deadline:
            await self.audit(s, now, telegram_id, "dispatch_answer_closed", f"request:{request_id}",
                              f"answer={answer} donor={donor_id} state={req.state}")
            return AnswerResult(AnswerOutcome.closed, request_id), False
        if want == ContactState.available.value:
            return await self._accept(s, req, contact, now)
        # declined: either before answering, or a change of mind after "available"
        donor = await s.get(Donor, donor_id)
        contact.state, contact.answered_at = want, now
        await s.exec(delete(DonorCommitment).where(col(DonorCommitment.donor_id) == donor_id,
                                                   col(DonorCommitment.request_id) == req.id))
        await enqueue_for_donor(s, key=f"declined:{req.id}:{donor_id}:{now.timestamp()}", chat_id=donor.telegram_id,
                                locale=donor.locale, request_id=req.id, now=now,
                                edit_of_key=await current_call_key(s, contact), params=M.Declined(request_id=req.id))
        await refresh_boards(s, req.id, now)
        if committed:
            await self.reopen_if_short(s, req, now)
        return AnswerResult(AnswerOutcome.declined, request_id), True  # replaced at once (DOMAIN.md §5)

    async def _accept(self, s, req: BloodRequest, contact: RequestContact, now: datetime,
                      replaces: RequestContact | None = None) -> tuple[AnswerResult, bool]:
        """She said available: hold her, tell her where to go, count her if she arrives in time."""
        assert req.id is not None and contact.donor_id is not None  # a row read from the database
        donor_id = contact.donor_id
        if not await self.commit_donor(s, donor_id, req, now):
            return AnswerResult(AnswerOutcome.committed_elsewhere, req.id), False
        if replaces is not None:
            await self._release(s, req, replaces, now)
            # Her own stand-down, if not sent yet.
            await cancel_pending(s, [stand_down_key(contact, cause) for cause in ("covered", "stopped")])
        hospital = await s.get(Hospital, req.hospital_id)
        donor = await s.get(Donor, donor_id)
        contact.state, contact.answered_at = ContactState.available.value, now
        # From the moment she decided, not from the call (issue 9): a late "yes" may be too late.
        contact.expected_arrival_at = expected_arrival(now, contact.travel_min, self.cfg.prep_min)
        await s.flush()
        confirmed = await self.confirmed(s, req)
        late = not arrives_in_time(contact.expected_arrival_at, as_utc(req.deadline))
        confirmation = M.Confirmed(
            **self._destination(req, hospital), token=contact.token, late=late,
            arrive_local=None if contact.expected_arrival_at is None else self._local(contact.expected_arrival_at))
        await enqueue_for_donor(s, key=f"confirmed:{req.id}:{donor_id}:{now.timestamp()}", chat_id=donor.telegram_id,
                                locale=donor.locale, request_id=req.id, now=now,
                                edit_of_key=await current_call_key(s, contact), params=confirmation)
        # Where to go, as a pin the phone's map opens (issue 3); a separate message, so the
        # sender spaces it from the edit above (1 message/s per chat, DOMAIN.md §8).
        # By SMS the confirmation holds what she needs; the pin is Telegram's (an SMS would cost a part).
        if donor.telegram_id is not None and not await moved_calls(s, [await current_call_key(s, contact)]):
            await enqueue(s, key=per_ask_key("venue", contact), chat_id=donor.telegram_id,
                          locale=donor.locale, request_id=req.id, now=now,
                          params=M.Venue(**self._destination(req, hospital)))
        # The hospital learns her name and phone from the board, now that she accepted (DOMAIN.md §7).
        await refresh_boards(s, req.id, now)
        if req.state in ACTIVE_REQUEST_STATES + (RequestState.exhausted.value,) and confirmed >= req.target_available:
            await self.close_request(s, req, RequestState.covered.value, now)
            return AnswerResult(AnswerOutcome.accepted, req.id, covered=True), False
        return AnswerResult(AnswerOutcome.accepted, req.id, covered=req.state == RequestState.covered.value), False

    async def _nearer_than_counted(self, s, req: BloodRequest, contact: RequestContact,
                                   now: datetime) -> RequestContact | None:
        """The counted donor she would replace: the latest-expected one not yet on the way, if later than her."""
        arrival = expected_arrival(now, contact.travel_min, self.cfg.prep_min)
        if arrival is None or not arrives_in_time(arrival, as_utc(req.deadline)):
            return None
        expected_at = col(RequestContact.expected_arrival_at)
        latest = (await s.exec(select(RequestContact).where(
            RequestContact.request_id == req.id, RequestContact.state == ContactState.available.value,
            expected_at.is_not(None), counted_condition(req.deadline))
            .order_by(expected_at.desc(), col(RequestContact.id).desc()).limit(1))).first()
        if latest is None or as_utc(latest.expected_arrival_at) <= arrival:
            return None
        return latest

    async def _release(self, s, req: BloodRequest, contact: RequestContact, now: datetime) -> None:
        """Let a counted donor go, politely and at once: a nearer donor will be there before her."""
        assert req.id is not None  # a row read from the database
        contact.state = ContactState.released.value
        await s.exec(delete(DonorCommitment).where(col(DonorCommitment.donor_id) == contact.donor_id,
                                                   col(DonorCommitment.request_id) == req.id))
        donor = await s.get(Donor, contact.donor_id)
        await enqueue_for_donor(s, key=per_ask_key("replaced", contact), chat_id=donor.telegram_id,
                                locale=donor.locale, request_id=req.id, now=now,
                                edit_of_key=await current_call_key(s, contact),
                                params=M.StandDown(request_id=req.id, reason="replaced"))
        await self.audit(s, now, None, "dispatch_donor_replaced", f"request:{req.id}", f"donor:{contact.donor_id}")

    async def _withdraw(self, s, req: BloodRequest, contact: RequestContact, now: datetime,
                        telegram_id: int | None) -> tuple[AnswerResult, bool]:
        """"I can't come after all" (issue 9): replaced at once, shown to staff, not held against her."""
        assert req.id is not None  # a row read from the database
        if contact.state == ContactState.withdrew.value:
            return AnswerResult(AnswerOutcome.duplicate, req.id), False
        if contact.state in (ContactState.arrived.value, ContactState.donated.value):
            # Nothing changes: at the hospital, the staff record what happens (the bot says so).
            return AnswerResult(AnswerOutcome(f"already_{contact.state}"), req.id), False
        if contact.state not in (ContactState.available.value, ContactState.en_route.value) \
                or req.state not in RECEIVING_REQUEST_STATES:
            await self.audit(s, now, telegram_id, "dispatch_answer_closed", f"request:{req.id}",
                              f"answer=withdraw donor={contact.donor_id} state={req.state}/{contact.state}")
            return AnswerResult(AnswerOutcome.closed, req.id), False
        contact.state, contact.outcome_at = ContactState.withdrew.value, now
        await s.exec(delete(DonorCommitment).where(col(DonorCommitment.donor_id) == contact.donor_id,
                                                   col(DonorCommitment.request_id) == req.id))
        donor = await s.get(Donor, contact.donor_id)
        await enqueue_for_donor(s, key=per_ask_key("withdrew", contact), chat_id=donor.telegram_id,
                                locale=donor.locale, request_id=req.id, now=now,
                                edit_of_key=await current_call_key(s, contact), params=M.Withdrew(request_id=req.id))
        await self.audit(s, now, telegram_id, "dispatch_donor_withdrew", f"request:{req.id}",
                          f"donor:{contact.donor_id}")
        await refresh_boards(s, req.id, now)
        await self.reopen_if_short(s, req, now)
        return AnswerResult(AnswerOutcome.withdrew, req.id), req.state in ACTIVE_REQUEST_STATES  # replaced at once

    async def _progress(self, s, req: BloodRequest, contact: RequestContact, step: str, now: datetime,
                        telegram_id: int | None) -> AnswerResult:
        """The donor's own "on my way" / "I'm here" taps after saying available."""
        assert req.id is not None  # a row read from the database
        order = [ContactState.available.value, ContactState.en_route.value, ContactState.arrived.value,
                 ContactState.donated.value]
        if contact.state not in order or req.state not in RECEIVING_REQUEST_STATES:
            await self.audit(s, now, telegram_id, "dispatch_answer_closed", f"request:{req.id}",
                              f"answer={step} donor={contact.donor_id} state={req.state}/{contact.state}")
            return AnswerResult(AnswerOutcome.closed, req.id)
        if order.index(contact.state) >= order.index(step):
            return AnswerResult(AnswerOutcome.duplicate, req.id)
        contact.state = step
        if step == ContactState.en_route.value:
            contact.en_route_at = now
        else:
            contact.arrived_at = now
        await refresh_boards(s, req.id, now)
        return AnswerResult(AnswerOutcome(step), req.id)

    async def reopen_if_short(self, s, req: BloodRequest, now: datetime) -> None:
        """A confirmed donor dropped out of a covered request: asking resumes if it is now short."""
        await s.flush()
        if req.close_reason == STOPPED_BY_STAFF:
            return  # staff said "enough now": asking stays stopped until they add units
        if req.state == RequestState.covered.value and await self.confirmed(s, req) < req.target_available:
            req.state, req.closed_at, req.next_wave_at = RequestState.dispatching.value, None, now

    async def commit_donor(self, s, donor_id: int, req: BloodRequest, now: datetime) -> bool:
        """Hold the donor for this request; False when another open request holds her."""
        assert req.id is not None  # a row read from the database
        held = await s.get(DonorCommitment, donor_id)
        if held is not None:
            if held.request_id == req.id:
                return True
            if as_utc(held.until) > now:
                other = await s.get(BloodRequest, held.request_id)
                if other is not None and other.state in ACTIVE_REQUEST_STATES + (RequestState.covered.value,):
                    return False
            await s.delete(held)  # a stale hold: that request closed or its deadline passed
            await s.flush()
        try:
            async with s.begin_nested():
                s.add(DonorCommitment(donor_id=donor_id, request_id=req.id, until=req.deadline, created_at=now))
        except IntegrityError:
            return False  # another process committed her a moment ago
        return True

    def _local(self, at: datetime) -> str:
        """A time as the donor reads it: HH:MM, with the date when it is not today's."""
        local, today = as_utc(at).astimezone(self.tz), self.clock().astimezone(self.tz).date()
        return local.strftime("%H:%M") if local.date() == today else local.strftime("%H:%M %d/%m")

    def _destination(self, req: BloodRequest, hospital: Hospital) -> dict[str, Any]:
        """The fields of M.Destination: a confirmation and its map pin share them."""
        return {"request_id": req.id, "hospital": hospital.name, "address": hospital.address,
                "hospital_phone": hospital.phone, "lat": hospital.lat, "lon": hospital.lon,
                "deadline": req.deadline.isoformat(),
                "deadline_local": req.deadline.astimezone(self.tz).strftime("%H:%M %d/%m/%Y")}

    # ---------------------------------------------------------------- closing

    async def expire(self, request_id: int) -> None:
        """The deadline job: tick closes a request whose deadline passed."""
        await self.tick(request_id)

    async def close_request(self, s, req: BloodRequest, state: str, now: datetime) -> None:
        """Stop asking. Covered, exhausted and expired requests still receive the donors coming;
        cancelled and fulfilled ones stand everybody down and free their commitments. An exhausted
        request stands nobody down: it still needs blood, only nobody new is left to ask, and a donor
        who reads her call late (or whom her club's lead phones) may still say "available" in time."""
        assert req.id is not None  # a row read from the database
        req.state, req.closed_at, req.next_wave_at = state, now, None
        if state == RequestState.covered.value and req.covered_at is None and req.close_reason != STOPPED_BY_STAFF:
            req.covered_at = now  # coverage is the donors' doing; staff stopping early is not (issue 9)
        stand_down = [] if state == RequestState.exhausted.value else list(SILENT_CONTACT_STATES)
        if state in (RequestState.cancelled.value, RequestState.fulfilled.value):
            stand_down += [ContactState.available.value, ContactState.en_route.value]
            await s.exec(delete(DonorCommitment).where(col(DonorCommitment.request_id) == req.id))
        stopped = state == RequestState.covered.value and req.close_reason == STOPPED_BY_STAFF
        reason = "stopped" if stopped else {"covered": "covered", "cancelled": "cancelled",
                                             "fulfilled": "covered"}.get(state, "expired")
        await self._stand_down(s, req, stand_down, "stopped" if stopped else state, reason, now)
        confirmed = await self.confirmed(s, req)
        asked = (await s.exec(select(func.count()).select_from(RequestContact)
                              .where(RequestContact.request_id == req.id))).one()
        ends: dict[str, type[M.Covered] | type[M.Exhausted] | type[M.Expired]] = {
            "covered": M.Covered, "exhausted": M.Exhausted, "expired": M.Expired}
        kind = ends.get(state)
        if kind is not None and not stopped:  # staff who stopped it see it on the board; it is not coverage
            summary = kind(request_id=req.id, abo=req.abo, rh=req.rh, component=req.component, units=req.units,
                           confirmed=confirmed, target=req.target_available, asked=asked)
            # A separate message, not only the board's edit: reaching the goal (or failing to) should ring.
            for chat, locale in await self._staff(s, req, with_origin=True):
                await enqueue(s, key=f"{summary.kind}:{req.id}:{chat}", chat_id=chat, locale=locale,
                              request_id=req.id, now=now, params=summary)
        if state == RequestState.exhausted.value:
            await self._page_leads(s, req, now, M.LeadExhausted)
        await refresh_boards(s, req.id, now)

    async def _stand_down(self, s, req: BloodRequest, states: list[str], cause: str, reason: str,
                          now: datetime) -> None:
        """Tell the request's donors in ``states`` they are not needed (a call not yet sent is dropped)."""
        if not states:
            return
        assert req.id is not None  # a row read from the database
        rows = (await s.exec(select(RequestContact, Donor.telegram_id, Donor.locale)
                             .join(Donor, col(Donor.id) == RequestContact.donor_id)
                             .where(RequestContact.request_id == req.id,
                                    col(RequestContact.state).in_(states)))).all()
        calls = await current_call_keys(s, req.id, [c.id for c, _, _ in rows])
        moved = await moved_calls(s, list(calls.values()))  # calls that went on by SMS: one look-up
        await cancel_pending(s, [calls[c.id] for c, _, _ in rows if c.state == ContactState.queued.value
                                 and c.id in calls])
        for c, chat, locale in rows:
            if c.state == ContactState.queued.value:
                c.state = ContactState.cancelled.value
            elif c.state in COMMITTED_CONTACT_STATES:
                c.state = ContactState.released.value
            else:
                c.state = ContactState.stood_down.value
            # Edits the call if it went out; the sender drops it when the call never did (DOMAIN.md §5, Oslo 2011).
            edits = calls.get(c.id) or call_key(req.id, c.donor_id)
            await enqueue_for_donor(s, key=stand_down_key(c, cause), chat_id=chat,
                                    locale=locale, request_id=req.id, now=now, edit_of_key=edits,
                                    params=M.StandDown(request_id=req.id, reason=reason), moved=moved.get(edits))

    async def _posted(self, s, req: BloodRequest, hospital: Hospital, asked: list[RankedDonor], now: datetime) -> None:
        assert req.id is not None  # a row read from the database
        late = sum(r.group == GROUP_LATE for r in asked)
        minutes_left = (req.deadline - now).total_seconds() / 60
        params = M.Posted(request_id=req.id, abo=req.abo, rh=req.rh, component=req.component, units=req.units,
                          asked=len(asked), rare=req.rare,
                          next_wave_min=None if req.next_wave_at is None
                          else round((req.next_wave_at - now).total_seconds() / 60),
                          # DOMAIN.md §6: under 2–3 hours is hard to meet with new donors.
                          warn_travel=minutes_left < 150 or (bool(asked) and late * 2 >= len(asked)))
        # The chat it was posted from gets the live board instead (bot.routers.board).
        for chat, locale in await self._staff(s, req, with_origin=False):
            await enqueue(s, key=f"posted:{req.id}:{chat}", chat_id=chat, locale=locale,
                          request_id=req.id, now=now, params=params)
        if req.rare:
            await self._page_leads(s, req, now, M.LeadRare, hospital)

    async def _page_leads(self, s, req: BloodRequest, now: datetime, kind: type[M.LeadRare] | type[M.LeadExhausted],
                          hospital: Hospital | None = None) -> None:
        """Tell the leads of the clubs concerned, each with the call list of their own club only (DOMAIN.md §7)."""
        assert req.id is not None  # a row read from the database
        hospital = hospital or await s.get(Hospital, req.hospital_id)
        search = self.search(req, hospital, now, radius=None if req.rare else self.cfg.max_radius_km,
                             last_resort=True, channels=await self.usable_channels(s, req, now))
        search.cap_count = None  # a phone call from one's own lead is not a bot message
        led = (await s.exec(select(ClubMembership.club_id).where(
            ClubMembership.role == "lead", col(ClubMembership.telegram_id).is_not(None)).distinct())).all()
        entries = await call_list(s, search, self.rules, list(led), limit=CALL_LIST_FETCH)
        by_club: dict[int, list[CallListEntry]] = {}
        for e in entries:
            club_list = by_club.setdefault(e.club_id, [])
            if len(club_list) < CALL_LIST_PER_CLUB:  # a list a lead can phone through, best tier first
                club_list.append(e)
        asked_clubs = (await s.exec(select(ClubMembership.club_id).join(
            RequestContact, col(RequestContact.donor_id) == ClubMembership.donor_id)
            .where(RequestContact.request_id == req.id).distinct())).all()
        clubs = set(by_club) | set(asked_clubs)
        if req.rare:
            # Every club with a member of a matching type, reachable or not (DOMAIN.md §3).
            rows = await s.exec(select(ClubMembership.club_id).join(Donor, col(Donor.id) == ClubMembership.donor_id)
                                .where(type_condition(self._tiers(req, False))).distinct())
            clubs |= set(rows.all())
        if not clubs:
            return
        leads = (await s.exec(select(ClubMembership.club_id, ClubMembership.telegram_id, TelegramUser.locale)
                              .join(TelegramUser, col(TelegramUser.telegram_id) == ClubMembership.telegram_id,
                                    isouter=True)
                              .where(ClubMembership.role == "lead", col(ClubMembership.club_id).in_(clubs),
                                     col(ClubMembership.telegram_id).is_not(None)))).all()
        deadline_local = req.deadline.astimezone(self.tz).strftime("%H:%M %d/%m/%Y")
        for club_id, chat, locale in leads:
            listed = tuple(M.Listed(name=e.full_name, phone=e.phone, type=e.blood_type, why=e.why)
                           for e in by_club.get(club_id, []))
            added = await enqueue(s, key=f"{kind.kind}:{req.id}:{club_id}:{chat}", chat_id=chat,
                                  locale=locale, request_id=req.id, now=now, params=kind(
                                      request_id=req.id, club_id=club_id, hospital=hospital.name, abo=req.abo,
                                      rh=req.rh, component=req.component, deadline_local=deadline_local,
                                      call_list=listed))
            if added and listed:
                await self.audit(s, now, chat, "call_list_sent", f"club:{club_id}",
                                  f"request:{req.id} entries={len(listed)}")

    async def _staff(self, s, req: BloodRequest, *, with_origin: bool) -> list[tuple[int, str | None]]:
        """The hospital's staff in their private chats, and the chat it was posted from (maybe a group)."""
        rows = (await s.exec(select(HospitalStaff.telegram_id, TelegramUser.locale)
                             .join(TelegramUser, col(TelegramUser.telegram_id) == HospitalStaff.telegram_id,
                                   isouter=True)
                             .where(HospitalStaff.hospital_id == req.hospital_id))).all()
        chats = {chat: locale for chat, locale in rows}
        origin = req.chat_id if req.chat_id is not None else req.posted_by
        if origin is not None and origin not in chats:
            chats[origin] = (await s.exec(select(TelegramUser.locale)
                                          .where(TelegramUser.telegram_id == (req.posted_by or origin)))).first()
        if not with_origin and req.chat_id is not None:
            chats.pop(req.chat_id, None)  # posted through the bot: the board is there
        return sorted(chats.items())

    async def audit(self, s: AsyncSession, now: datetime, actor: int | None, action: str, subject: str,
                    detail: str) -> None:
        log.info("%s %s %s actor=%s", action, subject, detail, actor)
        s.add(AuditLog(at=now, actor_telegram_id=actor, actor="" if actor else "system", action=action,
                       subject=subject, detail=detail))

    # ---------------------------------------------------------------- restart, unreachable, status
    async def rearm_all(self) -> list[tuple[int, datetime]]:
        """At start-up: every open request gets its wake-up again; a missed wave fires once, late."""
        out: list[tuple[int, datetime]] = []
        for rid in await self.open_request_ids():
            nxt = await self.tick(rid)
            if nxt is not None:
                out.append((rid, nxt))
        return out

    async def open_request_ids(self) -> list[int]:
        async with self.sm() as s:
            rows = (await s.exec(select(BloodRequest.id).where(col(BloodRequest.state).in_(ACTIVE_REQUEST_STATES))
                                 .order_by(col(BloodRequest.id)))).all()
        return list(cast(Sequence[int], rows))  # a primary key is never NULL

    async def attach_board(self, request_id: int, chat_id: int, message_id: int, locale: str | None) -> None:
        """The bot sent a board for the request into a chat: keep it up to date from now on."""
        async with self.lock:
            async with self.sm() as s, s.begin():
                now = self.clock()
                await board.attach(s, request_id, chat_id, message_id, locale, now,
                                   local_time=now.astimezone(self.tz).strftime("%H:%M"))

    async def board_params(self, request_id: int, chat_id: int) -> dict | None:
        """The board as it is now, for that chat (None when the request is gone)."""
        async with self.sm() as s:
            return await board.snapshot(s, request_id, chat_id=chat_id, tz=self.tz, now=self.clock())

    async def board_message(self, request_id: int, chat_id: int) -> M.Board | None:
        """The board edit as it is now: the sender asks for it at the moment it edits."""
        view = await self.board_params(request_id, chat_id)
        return None if view is None else M.Board(request_id=request_id, view=view)

    async def refresh(self, request_id: int) -> None:
        """Staff pressed Refresh: queue an edit (a no-op when one is waiting)."""
        async with self.lock:
            async with self.sm() as s, s.begin():
                await refresh_boards(s, request_id, self.clock())
        self.kick()


def _hhmm(v: str) -> time:
    hh, mm = v.split(":")
    return time(int(hh), int(mm))


__all__ = ["AnswerResult", "Dispatcher", "InvalidRequest"]
