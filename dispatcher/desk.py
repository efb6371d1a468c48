"""The hospital desk's actions on a request (issue 4): arrivals, donations, no-shows, units, closing.

Composed by ``dispatcher.engine.Dispatcher`` (``engine.desk``) and given the engine
through ``DeskEngine``, so each action runs under the same lock and row "touch" as the
waves, and can close or re-open the request through the same state machine. Every action checks that the person acting is staff of *that*
hospital (callback data can be forged, DOMAIN.md §8), validates before writing, and
answers with a ``DeskResult`` the bot turns into words; a refused action writes only
its audit line.

A donation closes the loop: a Donation row, the donor's last donation date and count
(so the dispatcher does not call her again before the interval, DOMAIN.md §2), a
thank-you with her next date, and the outcome that teaches the wave model its
"arrives × passes" rate (DOMAIN.md §5).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo
from typing import Any, Awaitable, Callable, Protocol

from sqlalchemy import and_, delete, func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher import messages as M
from dispatcher.board import STOPPED_BY_STAFF, UNDO_WINDOW, buckets, donated_by, refresh_boards
from dispatcher.candidates import Search, call_list, unreachable_counts
from dispatcher.channels import reached_by
from ground.eligibility import (
    ALLOWED_VOLUMES_ML,
    APHERESIS,
    MAX_DEFERRAL_DAYS,
    DeferralError,
    DonorFacts,
    deferral_until,
    max_volume_ml,
    next_donation_date,
)
from dispatcher.headline import request_headline
from dispatcher.outbox import enqueue
from dispatcher.waves import Rates
from models.dispatch_tables import (
    ACTIVE_REQUEST_STATES,
    RECEIVING_REQUEST_STATES,
    SAID_AVAILABLE_STATES,
    BloodRequest,
    ContactState,
    DonorCommitment,
    RequestContact,
    RequestState,
    RequestWave,
)
from models.donors import add_donation, consented_in_bot
from models.tables import (
    AuditLog,
    Club,
    ClubMembership,
    Component,
    Donation,
    Donor,
    DonorStatus,
    Hospital,
    HospitalStaff,
    TelegramUser,
)
from ground.clock import Clock, as_utc
from ground.config import DispatchConfig, EligibilityConfig

# How a request ended, for the report's timeline (state, close_reason) → label code: asking
# stopped (covered, nobody left, deadline) is not the same as closed (issue 9).
_ENDINGS: dict[tuple[str, str | None], str | None] = {
    (RequestState.covered.value, None): "stopped_covered",
    (RequestState.exhausted.value, None): "stopped_exhausted",
    (RequestState.expired.value, None): "deadline_passed",
    (RequestState.cancelled.value, None): "cancelled",
    (RequestState.fulfilled.value, "donations"): "fulfilled",
    (RequestState.fulfilled.value, None): "closed",
    (RequestState.covered.value, STOPPED_BY_STAFF): None,  # the staff's stop is its own event
}

# Vietnam honours repeat donors by count (DOMAIN.md §4).
MILESTONES = (5, 10, 15, 20, 30, 50, 100)
OUTCOMES = ("arrived", "donated", "no_show", "deferred")
COMPONENTS = tuple(c.value for c in Component)


class DeskOutcome(str, enum.Enum):
    """What a staff action on the desk did; the bot words its answer from this alone."""
    ok = "ok"
    duplicate = "duplicate"  # already so: a second tap or a redelivered update
    closed = "closed"
    not_staff = "not_staff"
    not_found = "not_found"
    not_accepted = "not_accepted"  # the donor never said available
    bad_volume = "bad_volume"
    bad_units = "bad_units"
    bad_deferral = "bad_deferral"
    nothing_to_undo = "nothing_to_undo"
    too_late = "too_late"  # the undo window has passed
    committed_elsewhere = "committed_elsewhere"


@dataclass(frozen=True)
class DeskResult:
    outcome: DeskOutcome  # a plain string is taken and checked: an unknown outcome fails here, not in the bot
    request_id: int
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", DeskOutcome(self.outcome))

    @property
    def ok(self) -> bool:
        return self.outcome is DeskOutcome.ok


Action = Callable[[AsyncSession, BloodRequest, datetime], Awaitable[tuple[DeskResult, bool]]]


class DeskEngine(Protocol):
    """What the desk uses of the engine: its lock, sessions, settings and state-machine steps.
    (Read-only properties here, so the engine's own attributes may be of narrower types.)"""

    @property
    def sm(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def lock(self) -> asyncio.Lock: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def cfg(self) -> DispatchConfig: ...
    @property
    def rules(self) -> EligibilityConfig: ...
    @property
    def tz(self) -> ZoneInfo: ...
    @property
    def rates_prior(self) -> Rates: ...

    def kick(self) -> None: ...
    def stop_target(self, units: int, urgency: str) -> int: ...
    async def tick(self, request_id: int) -> datetime | None: ...
    async def touch(self, s: AsyncSession, request_id: int, now: datetime) -> BloodRequest | None: ...
    async def audit(self, s: AsyncSession, now: datetime, actor: int | None, action: str, subject: str,
                    detail: str) -> None: ...
    async def close_request(self, s: AsyncSession, req: BloodRequest, state: str, now: datetime) -> None: ...
    async def confirmed(self, s: AsyncSession, req: BloodRequest) -> int: ...
    async def count_contacts(self, s: AsyncSession, request_id: int, *states: str) -> int: ...
    async def reopen_if_short(self, s: AsyncSession, req: BloodRequest, now: datetime) -> None: ...
    async def commit_donor(self, s: AsyncSession, donor_id: int, req: BloodRequest, now: datetime) -> bool: ...
    def search(self, req: BloodRequest, hospital: Hospital, now: datetime, *, radius: float | None,
               last_resort: bool, channels: tuple[str, ...] = ()) -> Search: ...
    async def usable_channels(self, s: AsyncSession, req: BloodRequest, now: datetime) -> tuple[str, ...]: ...


class Desk:
    """The desk's actions; ``engine`` gives the lock, sessions and state-machine steps they share with the waves."""

    def __init__(self, engine: DeskEngine) -> None:
        self.engine = engine

    async def _as_staff(self, request_id: int, by: int | None, name: str, action: Action) -> DeskResult:
        async with self.engine.lock:
            async with self.engine.sm() as s, s.begin():
                now = self.engine.clock()
                req = await self.engine.touch(s, request_id, now)
                if req is None:
                    return DeskResult(DeskOutcome.not_found, request_id)
                if not await self.is_staff_of(s, req.hospital_id, by):
                    await self.engine.audit(s, now, by, "desk_refused", f"request:{request_id}", f"action={name}")
                    return DeskResult(DeskOutcome.not_staff, request_id)
                result, retick = await action(s, req, now)
                if result.ok:
                    await refresh_boards(s, request_id, now)
        if retick:
            await self.engine.tick(request_id)
        else:
            self.engine.kick()
        return result

    @staticmethod
    async def is_staff_of(s, hospital_id: int, telegram_id: int | None) -> bool:
        if telegram_id is None:
            return False
        return (await s.exec(select(HospitalStaff.telegram_id).where(
            HospitalStaff.hospital_id == hospital_id, HospitalStaff.telegram_id == telegram_id))).first() is not None

    # ------------------------------------------------------------ the request
    async def mark_covered(self, request_id: int, *, by: int | None) -> DeskResult:
        """Stop asking now: the outstanding calls are stood down; donors who said available still come."""
        async def act(s, req, now):
            if req.state not in ACTIVE_REQUEST_STATES:
                return DeskResult(DeskOutcome.closed, req.id, {"state": req.state}), False
            req.closed_by, req.close_reason = by, STOPPED_BY_STAFF
            await self.engine.close_request(s, req, RequestState.covered.value, now)
            donated = await donated_by(s, req.id, None)
            # The timeline reads "staff stopped asking at 1/2 donated" from this line (report).
            await self.engine.audit(s, now, by, "request_marked_covered", f"request:{req.id}",
                              f"donated={donated} units={req.units}")
            return DeskResult(DeskOutcome.ok, req.id), False
        return await self._as_staff(request_id, by, "covered", act)

    async def add_units(self, request_id: int, *, by: int | None, expected_units: int, add: int) -> DeskResult:
        """More units. ``expected_units`` is what the presser saw: a second tap of the same button adds nothing."""
        async def act(s, req, now):
            if req.state not in ACTIVE_REQUEST_STATES + (RequestState.covered.value, RequestState.exhausted.value) \
                    or now >= req.deadline:
                return DeskResult(DeskOutcome.closed, req.id, {"state": req.state}), False
            if req.units != expected_units:
                return DeskResult(DeskOutcome.duplicate, req.id, {"units": req.units}), False
            if add < 1 or req.units + add > self.engine.cfg.max_units:
                return DeskResult(DeskOutcome.bad_units, req.id, {"max": self.engine.cfg.max_units}), False
            req.units += add
            req.target_available = self.engine.stop_target(req.units, req.urgency)
            if req.state in (RequestState.covered.value, RequestState.exhausted.value) \
                    and await self.engine.confirmed(s, req) < req.target_available:
                req.state, req.closed_at, req.next_wave_at = RequestState.dispatching.value, None, now
                req.close_reason = ""  # more units: asking resumes, whoever had stopped it
            await self.engine.audit(s, now, by, "request_units_added", f"request:{req.id}", f"units={req.units}")
            return DeskResult(DeskOutcome.ok, req.id, {"units": req.units}), True
        return await self._as_staff(request_id, by, "units", act)

    async def close(self, request_id: int, *, by: int | None) -> DeskResult:
        """Staff close the request as fulfilled: donors still expected are thanked and released."""
        async def act(s, req, now):
            if req.state not in RECEIVING_REQUEST_STATES:
                return DeskResult(DeskOutcome.closed, req.id, {"state": req.state}), False
            req.close_reason, req.closed_by = "staff", by
            await self.engine.close_request(s, req, RequestState.fulfilled.value, now)
            await self.engine.audit(s, now, by, "request_closed", f"request:{req.id}", "")
            return DeskResult(DeskOutcome.ok, req.id), False
        return await self._as_staff(request_id, by, "close", act)

    async def cancel(self, request_id: int, *, by: int | None, reason: str = "") -> DeskResult:
        """Staff cancel: everyone asked or coming is stood down and released."""
        async def act(s, req, now):
            if req.state not in RECEIVING_REQUEST_STATES:
                return DeskResult(DeskOutcome.closed, req.id, {"state": req.state}), False
            req.close_reason, req.closed_by = reason, by
            await self.engine.close_request(s, req, RequestState.cancelled.value, now)
            await self.engine.audit(s, now, by, "dispatch_request_cancelled", f"request:{req.id}", f"reason={reason}")
            return DeskResult(DeskOutcome.ok, req.id), False
        return await self._as_staff(request_id, by, "cancel", act)

    # ------------------------------------------------------------ one donor
    async def mark(self, request_id: int, contact_id: int, outcome: str, *, by: int | None,
                   volume_ml: int | None = None, component: str | None = None, category: str | None = None,
                   until: date | None = None) -> DeskResult:
        """Staff mark a donor who said "available": arrived, donated (a volume, and the component if it is not
        the request's), deferred at screening (a coarse category and, for "other", the end date) or no-show."""
        async def act(s, req, now):
            contact = await s.get(RequestContact, contact_id)
            if outcome not in OUTCOMES or contact is None or contact.request_id != req.id \
                    or contact.donor_id is None:
                return DeskResult(DeskOutcome.not_found, req.id), False
            if req.state in (RequestState.cancelled.value, RequestState.fulfilled.value):
                return DeskResult(DeskOutcome.closed, req.id, {"state": req.state}), False
            if contact.state == outcome or (outcome == "arrived" and contact.state == ContactState.donated.value):
                return DeskResult(DeskOutcome.duplicate, req.id, {"state": contact.state}), False
            coming = (ContactState.available.value, ContactState.en_route.value, ContactState.arrived.value)
            if contact.state not in coming:
                return DeskResult(DeskOutcome.not_accepted, req.id, {"state": contact.state}), False
            donor = await s.get(Donor, contact.donor_id)
            undo = {"action": outcome, "at": now.isoformat(), "by": by, "state": contact.state,
                    "arrived_at": None if contact.arrived_at is None else as_utc(contact.arrived_at).isoformat()}
            if outcome == "arrived":
                contact.state, contact.arrived_at, contact.undo = outcome, now, undo
                await self.engine.audit(s, now, by, "donor_marked_arrived", f"request:{req.id}", f"donor:{donor.id}")
                return DeskResult(DeskOutcome.ok, req.id, {"name": donor.full_name}), False
            if outcome == "no_show":
                contact.state, contact.outcome_at, contact.undo = outcome, now, undo
                await self._let_go(s, req, donor, now)
                await self.engine.audit(s, now, by, "donor_marked_no_show", f"request:{req.id}", f"donor:{donor.id}")
                return DeskResult(DeskOutcome.ok, req.id, {"name": donor.full_name}), True
            if outcome == "deferred":
                return await self._deferred(s, req, contact, donor, category, until, undo, by, now)
            return await self._donated(s, req, contact, donor, volume_ml, component, undo, by, now)
        return await self._as_staff(request_id, by, outcome, act)

    async def _let_go(self, s, req: BloodRequest, donor: Donor, now: datetime) -> None:
        """She will not donate for this request: free her, and ask again if the request is now short."""
        await s.exec(delete(DonorCommitment).where(col(DonorCommitment.donor_id) == donor.id,
                                                   col(DonorCommitment.request_id) == req.id))
        await self.engine.reopen_if_short(s, req, now)

    async def _deferred(self, s, req: BloodRequest, contact: RequestContact, donor: Donor, category: str | None,
                        until: date | None, undo: dict, by: int | None, now: datetime) -> tuple[DeskResult, bool]:
        """Deferred at screening (issue 9): only the coarse category and the end date are kept, on the donor."""
        assert req.id is not None  # a row read from the database
        today = now.astimezone(self.engine.tz).date()
        try:
            end = deferral_until(category or "", today, until)
        except DeferralError as err:
            return DeskResult(DeskOutcome.bad_deferral, req.id, {"why": err.code, "name": donor.full_name,
                                                       "max": MAX_DEFERRAL_DAYS}), False
        undo["donor"] = {"status": donor.status, "deferral_reason": donor.deferral_reason,
                         "status_until": None if donor.status_until is None else donor.status_until.isoformat()}
        contact.state, contact.outcome_at, contact.undo = ContactState.deferred.value, now, undo
        if contact.arrived_at is None:
            contact.arrived_at = now
        if donor.status != DonorStatus.retired.value:
            # A longer pause or deferral already set stands; a deferral is never shortened.
            held = donor.status_until if donor.status in (DonorStatus.paused.value, DonorStatus.deferred.value) \
                else None
            donor.status, donor.deferral_reason = DonorStatus.deferred.value, category
            donor.status_until = end if held is None or held < end else held
            donor.updated_at = now
        await self._let_go(s, req, donor, now)
        if donor.telegram_id is not None:
            hospital = await s.get(Hospital, req.hospital_id)
            await enqueue(s, key=f"deferred:{req.id}:{donor.id}:{now.timestamp()}", chat_id=donor.telegram_id,
                          locale=donor.locale, request_id=req.id, now=now,
                          params=M.Deferred(request_id=req.id, hospital=hospital.name, until=end.strftime("%d/%m/%Y")))
        # The category is health data (DOMAIN.md §7): it stays on the donor, not in the audit trail.
        await self.engine.audit(s, now, by, "donor_deferred", f"request:{req.id}", f"donor:{donor.id}")
        return DeskResult(DeskOutcome.ok, req.id, {"name": donor.full_name, "until": end.strftime("%d/%m/%Y")}), True

    async def _donated(self, s, req: BloodRequest, contact: RequestContact, donor: Donor, volume_ml: int | None,
                       component: str | None, undo: dict, by: int | None, now: datetime) -> tuple[DeskResult, bool]:
        assert req.id is not None  # a row read from the database
        component = component or req.component
        if component not in COMPONENTS:
            return DeskResult(DeskOutcome.not_found, req.id), False
        limit = max_volume_ml(donor.weight_kg)
        if component in APHERESIS:
            volume_ml = None  # the machine decides an apheresis volume; the weight rule is for whole blood
        elif volume_ml not in ALLOWED_VOLUMES_ML or volume_ml > limit:
            return DeskResult(DeskOutcome.bad_volume, req.id, {"max": limit, "name": donor.full_name}), False
        today = now.astimezone(self.engine.tz).date()
        undo["donor"] = {"last_donation_date": None if donor.last_donation_date is None
                         else donor.last_donation_date.isoformat(),
                         "last_donation_component": donor.last_donation_component,
                         "donation_count": donor.donation_count}
        added = await add_donation(s, donor, today, now=now, recorded_by=by, component=component,
                                   volume_ml=volume_ml, hospital_id=req.hospital_id)
        if added:
            await s.flush()
            undo["donation_id"] = (await s.exec(select(Donation.id).where(Donation.donor_id == donor.id,
                                                                          Donation.donated_on == today))).first()
        contact.state, contact.outcome_at, contact.volume_ml = ContactState.donated.value, now, volume_ml
        contact.component = None if component == req.component else component
        if contact.arrived_at is None:
            contact.arrived_at = now
        undo["request"] = {"state": req.state, "close_reason": req.close_reason,
                           "closed_at": None if req.closed_at is None else as_utc(req.closed_at).isoformat()}
        contact.undo = undo
        await s.exec(delete(DonorCommitment).where(col(DonorCommitment.donor_id) == donor.id))
        nxt = next_donation_date(DonorFacts.of(donor), self.engine.rules)
        if donor.telegram_id is not None:
            hospital = await s.get(Hospital, req.hospital_id)
            await enqueue(s, key=f"donated:{req.id}:{donor.id}", chat_id=donor.telegram_id,
                          locale=donor.locale, request_id=req.id, now=now, params=M.Donated(
                              request_id=req.id, hospital=hospital.name, volume_ml=volume_ml, component=component,
                              count=donor.donation_count, milestone=donor.donation_count in MILESTONES,
                              next_date=None if nxt is None else nxt.strftime("%d/%m/%Y")))
        await self.engine.audit(s, now, by, "donation_recorded", f"request:{req.id}",
                          f"donor:{donor.id} volume={volume_ml} component={component}")
        await s.flush()
        if await self.engine.count_contacts(s, req.id, ContactState.donated.value) >= req.units:
            req.close_reason = "donations"
            await self.engine.close_request(s, req, RequestState.fulfilled.value, now)
        return DeskResult(DeskOutcome.ok, req.id, {"name": donor.full_name, "count": donor.donation_count}), False

    async def undo(self, request_id: int, contact_id: int, *, by: int | None) -> DeskResult:
        """Take back the last desk mark on a donor, within ``UNDO_WINDOW`` of making it (audited).

        The record is restored as it was (state, the donor's dates and count, the deferral); a donation's
        row is deleted. A request the donation had fulfilled reopens; when it is short, the next wave asks
        again the best donors, those thanked and let go on fulfilment among them.
        """
        async def act(s, req, now):
            contact = await s.get(RequestContact, contact_id)
            if contact is None or contact.request_id != req.id or contact.donor_id is None:
                return DeskResult(DeskOutcome.not_found, req.id), False
            u = contact.undo
            if not u:
                return DeskResult(DeskOutcome.nothing_to_undo, req.id), False
            donor = await s.get(Donor, contact.donor_id)
            if now - datetime.fromisoformat(u["at"]) > UNDO_WINDOW:
                return DeskResult(DeskOutcome.too_late, req.id, {"minutes": int(UNDO_WINDOW.total_seconds() // 60),
                                                       "name": donor.full_name}), False
            if req.state == RequestState.cancelled.value:
                return DeskResult(DeskOutcome.closed, req.id, {"state": req.state}), False
            action = u["action"]
            if action in ("no_show", "deferred", "donated") \
                    and u["state"] in (ContactState.available.value, ContactState.en_route.value,
                                       ContactState.arrived.value) \
                    and not await self.engine.commit_donor(s, donor.id, req, now):
                return DeskResult(DeskOutcome.committed_elsewhere, req.id, {"name": donor.full_name}), False
            before = u.get("donor") or {}
            for name, value in before.items():
                if name in ("status_until", "last_donation_date") and value is not None:
                    value = date.fromisoformat(value)
                setattr(donor, name, value)
            if before:
                donor.updated_at = now
            if u.get("donation_id") is not None:
                await s.exec(delete(Donation).where(Donation.id == u["donation_id"]))
            contact.state = u["state"]
            contact.arrived_at = None if u["arrived_at"] is None else datetime.fromisoformat(u["arrived_at"])
            if action != "arrived":
                contact.outcome_at, contact.volume_ml, contact.component = None, None, None
            contact.undo = None
            was = u.get("request")
            if was and req.state == RequestState.fulfilled.value and req.close_reason == "donations":
                req.state, req.close_reason = was["state"], was["close_reason"]
                req.closed_at = None if was["closed_at"] is None else datetime.fromisoformat(was["closed_at"])
                if req.state in ACTIVE_REQUEST_STATES:
                    req.next_wave_at = now
                # The donors thanked and let go when it was fulfilled no longer count: if it is short now,
                # asking resumes, and they are among those asked again (dispatcher.donor_keys).
                await self.engine.reopen_if_short(s, req, now)
            await self.engine.audit(s, now, by, "desk_undone", f"request:{req.id}", f"donor:{donor.id} action={action}")
            return DeskResult(DeskOutcome.ok, req.id, {"name": donor.full_name, "action": action}), True
        return await self._as_staff(request_id, by, "undo", act)

    # ------------------------------------------------------------ reading
    async def report(self, request_id: int, *, by: int | None) -> DeskResult:
        """The after-action summary: timeline, funnel, headline times (issues 4 and 9)."""
        async def act(s, req, now):
            C = RequestContact
            waves = (await s.exec(select(RequestWave.wave_no, RequestWave.fired_at, RequestWave.asked)
                                  .where(RequestWave.request_id == req.id).order_by(col(RequestWave.wave_no)))).all()
            counts = dict((await s.exec(select(C.state, func.count()).where(C.request_id == req.id)
                                        .group_by(C.state))).all())
            first_available = (await s.exec(select(func.min(C.answered_at)).where(
                C.request_id == req.id, col(C.state).in_(SAID_AVAILABLE_STATES)))).one()
            first_arrival = (await s.exec(select(func.min(C.arrived_at)).where(C.request_id == req.id))).one()
            first_donation = (await s.exec(select(func.min(C.outcome_at)).where(
                C.request_id == req.id, C.state == ContactState.donated.value))).one()
            stops = (await s.exec(select(AuditLog.at, AuditLog.detail).where(
                AuditLog.subject == f"request:{req.id}", AuditLog.action == "request_marked_covered")
                .order_by(col(AuditLog.at)))).all()
            per_bucket = buckets(counts)
            donated = per_bucket["donated"]
            # Which channel reached whom (issue 15): per channel, donors reached and those who said available.
            via = await reached_by(s, req.id)
            said_ids = set((await s.exec(select(C.id).where(
                C.request_id == req.id, col(C.state).in_(SAID_AVAILABLE_STATES)))).all())
            per_channel: dict[str, dict[str, int]] = {}
            for contact_id, channel in via.items():
                row = per_channel.setdefault(channel, {"reached": 0, "available": 0})
                row["reached"] += 1
                row["available"] += contact_id in said_ids
            deferred = per_bucket["deferred"]
            arrived = per_bucket["arrived"] + donated + deferred
            said = sum(counts.get(st, 0) for st in SAID_AVAILABLE_STATES)
            screened = donated + deferred

            events = ([("posted", req.created_at, {})]
                      + [("wave", at, {"n": no, "asked": k}) for no, at, k in waves]
                      + [("first_available", first_available, {}), ("first_arrival", first_arrival, {}),
                         ("first_donation", first_donation, {}), ("covered", req.covered_at, {})]
                      + [("stopped", at, dict(kv.split("=", 1) for kv in detail.split())) for at, detail in stops])
            key = (req.state, req.close_reason)
            ending = _ENDINGS[key] if key in _ENDINGS else _ENDINGS.get((req.state, None))
            if ending is not None:
                events.append((ending, req.closed_at, {}))
            # In the order they happened (a second wave may come after the first donor said yes).
            happened = sorted(((as_utc(at), i, what, extra) for i, (what, at, extra) in enumerate(events)
                               if at is not None))
            timeline = [[what, at.astimezone(self.engine.tz).strftime("%H:%M %d/%m"), extra]
                        for at, _i, what, extra in happened]
            times = await request_headline(s, req)
            return DeskResult(DeskOutcome.ok, req.id, {
                "request_id": req.id, "abo": req.abo, "rh": req.rh, "component": req.component, "units": req.units,
                "state": req.state, "close_reason": req.close_reason,
                "stopped_donated": await donated_by(s, req.id, req.closed_at)
                if req.close_reason == STOPPED_BY_STAFF else None,
                "timeline": timeline,
                "funnel": {"asked": sum(per_bucket.values()), "available": said, "arrived": arrived,
                           "passed": donated, "donated": donated, "deferred": deferred,
                           "no_show": per_bucket["no_show"],
                           "deferral_rate": None if screened == 0 else round(100 * deferred / screened)},
                "asked": sum(per_bucket.values()),
                "buckets": per_bucket,
                "channels": per_channel,
                "headline": times.as_dict(),
                "minutes_to_cover": times.covered,
            }), False
        return await self._read(request_id, by, act)

    async def call_list_for(self, request_id: int, *, by: int | None) -> DeskResult:
        """Who to phone for a request: a lead gets her own club's members the bot cannot message;
        the hospital's staff get the club leads to ring, and the donors who accepted (DOMAIN.md §7:
        a hospital sees a donor's name and phone only after she accepted)."""
        async with self.engine.lock:
            async with self.engine.sm() as s, s.begin():
                now = self.engine.clock()
                req = await s.get(BloodRequest, request_id)
                if req is None:
                    return DeskResult(DeskOutcome.not_found, request_id)
                staff = await self.is_staff_of(s, req.hospital_id, by)
                lead_clubs = list((await s.exec(select(ClubMembership.club_id).where(
                    ClubMembership.telegram_id == by, ClubMembership.role == "lead"))).all()) if by else []
                if not staff and not lead_clubs:
                    await self.engine.audit(s, now, by, "desk_refused", f"request:{request_id}", "action=call_list")
                    return DeskResult(DeskOutcome.not_staff, request_id)
                hospital = await s.get(Hospital, req.hospital_id)
                assert hospital is not None  # a request's hospital: hospitals are never deleted
                search = self.engine.search(req, hospital, now, radius=None if req.rare else self.engine.cfg.max_radius_km,
                                            last_resort=True, channels=await self.engine.usable_channels(s, req, now))
                search.cap_count = None
                entries = await call_list(s, search, self.engine.rules, lead_clubs, limit=50)
                detail: dict[str, Any] = {"entries": [
                    {"name": e.full_name, "phone": e.phone, "type": e.blood_type, "why": e.why} for e in entries]}
                if staff:
                    detail["leads"] = await self._leads_to_ring(s, await unreachable_counts(s, search, self.engine.rules))
                    detail["accepted"] = await self._accepted(s, request_id)
                await self.engine.audit(s, now, by, "call_list_viewed", f"request:{request_id}",
                                  f"entries={len(entries)} staff={int(staff)}")
        return DeskResult(DeskOutcome.ok, request_id, detail)

    @staticmethod
    async def _leads_to_ring(s, counts: dict[int, int]) -> list[dict[str, Any]]:
        """The leads of the clubs with members only a phone call reaches: their name and, when the
        lead registered as a donor herself, her phone; the members are counted, never named."""
        if not counts:
            return []
        rows = (await s.exec(
            select(  # type: ignore[call-overload]  # sqlmodel types select() for at most four columns
                Club.id, Club.name, ClubMembership.telegram_id, TelegramUser.first_name, TelegramUser.username,
                Donor.phone)
            .join(ClubMembership, and_(col(ClubMembership.club_id) == Club.id, col(ClubMembership.role) == "lead"))
            .join(TelegramUser, col(TelegramUser.telegram_id) == ClubMembership.telegram_id, isouter=True)
            .join(Donor, and_(col(Donor.telegram_id) == ClubMembership.telegram_id, consented_in_bot()),
                  isouter=True)
            .where(col(Club.id).in_(list(counts)), col(ClubMembership.telegram_id).is_not(None))
            .order_by(col(Club.name), col(ClubMembership.id)))).all()
        return [{"club": club, "members": counts[club_id], "telegram_id": tg, "name": first or "",
                 "username": username, "phone": phone}
                for club_id, club, tg, first, username, phone in rows]

    @staticmethod
    async def _accepted(s, request_id: int) -> list[dict[str, Any]]:
        rows = (await s.exec(
            select(Donor.full_name, Donor.phone, Donor.abo, Donor.rh)
            .join(RequestContact, col(RequestContact.donor_id) == Donor.id)
            .where(RequestContact.request_id == request_id, col(RequestContact.state).in_(SAID_AVAILABLE_STATES))
            .order_by(col(RequestContact.answered_at)))).all()
        return [{"name": n, "phone": p, "type": f"{a}{r}"} for n, p, a, r in rows]

    async def _read(self, request_id: int, by: int | None, act: Action) -> DeskResult:
        async with self.engine.sm() as s:
            req = await s.get(BloodRequest, request_id)
            if req is None:
                return DeskResult(DeskOutcome.not_found, request_id)
            if not await self.is_staff_of(s, req.hospital_id, by):
                return DeskResult(DeskOutcome.not_staff, request_id)
            result, _ = await act(s, req, self.engine.clock())
            return result


__all__ = ["Desk", "DeskEngine", "DeskResult", "MILESTONES"]
