"""Dispatcher tables: requests, who was asked, commitments, waves, and the outbox.

The database is the source of truth (issue 3): the scheduler and the sender keep
nothing that a restart would lose. Times are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel, col

from models.tables import Donor, utcnow


class Urgency(str, enum.Enum):
    critical = "critical"
    urgent = "urgent"
    planned = "planned"


class RequestState(str, enum.Enum):
    open = "open"
    dispatching = "dispatching"
    covered = "covered"
    exhausted = "exhausted"
    expired = "expired"
    cancelled = "cancelled"
    fulfilled = "fulfilled"  # donations cover the units, or staff closed it (close_reason says which)


ACTIVE_REQUEST_STATES = (RequestState.open.value, RequestState.dispatching.value)
# Asking has stopped, but donors who said "available" may still arrive and donate.
RECEIVING_REQUEST_STATES = ACTIVE_REQUEST_STATES + (RequestState.covered.value, RequestState.exhausted.value,
                                                    RequestState.expired.value)


class ContactState(str, enum.Enum):
    queued = "queued"  # the call is in the outbox, not yet delivered
    notified = "notified"  # delivered; the response window runs from notified_at
    available = "available"
    declined = "declined"
    no_answer = "no_answer"  # silent past the response window; a late "available" still counts
    unreachable = "unreachable"  # 403 or retries used up
    stood_down = "stood_down"  # told "no longer needed" before answering
    cancelled = "cancelled"  # the call was never delivered (request closed first)
    # after "available" (issue 4): the donor's own taps, then the hospital's marks
    en_route = "en_route"
    arrived = "arrived"
    donated = "donated"
    no_show = "no_show"
    released = "released"  # said available, then thanked and let go (request closed, or a nearer donor took her place)
    withdrew = "withdrew"  # said available, then "I can't come after all" (issue 9): replaced, not a no-show
    deferred = "deferred"  # came, and the facility deferred her at screening (issue 9); the wait is on the donor


OUTSTANDING_CONTACT_STATES = (ContactState.queued.value, ContactState.notified.value)
# Counted as "confirmed" towards the request's target: said available and not since let down.
COMMITTED_CONTACT_STATES = (ContactState.available.value, ContactState.en_route.value, ContactState.arrived.value,
                            ContactState.donated.value)
# Said "available" at some point: what a donor's answer history and the learned rates count.
SAID_AVAILABLE_STATES = COMMITTED_CONTACT_STATES + (ContactState.no_show.value, ContactState.released.value,
                                                   ContactState.withdrew.value, ContactState.deferred.value)
# The hospital's outcomes for a donor who said available: what the wave model's "arrives × passes" learns from.
OUTCOME_CONTACT_STATES = (ContactState.donated.value, ContactState.no_show.value, ContactState.deferred.value)


class OutboxState(str, enum.Enum):
    pending = "pending"
    sending = "sending"  # handed to Telegram; a restart puts it back to pending (at-least-once)
    sent = "sent"
    failed = "failed"  # retries used up
    unreachable = "unreachable"  # 403
    cancelled = "cancelled"  # no longer worth sending (e.g. a call for a covered request)


class BloodRequest(SQLModel, table=True):
    __tablename__ = "blood_request"
    __table_args__ = (Index("ix_request_state", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    abo: str
    rh: str
    component: str
    units: int
    urgency: str
    deadline: datetime
    note: str = ""
    rh_positive_ok: bool = False  # staff's explicit flag (DOMAIN.md §1), never inferred
    posted_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Where it was posted (a private chat or a hospital's staff group): the live board lives there.
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    state: str = RequestState.open.value
    rare: bool = False  # DOMAIN.md §3: every club, everyone at once, leads paged
    target_available: int = 0
    wave_no: int = 0  # waves fired so far; the conditional update on it makes a wave fire once
    next_wave_at: datetime | None = None
    radius_km: float = 0.0
    closed_at: datetime | None = None
    covered_at: datetime | None = None  # first time confirmed reached the target (the report's "minutes to cover")
    close_reason: str = ""  # cancelled: the staff's reason; fulfilled: "donations" or "staff"
    closed_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RequestWave(SQLModel, table=True):
    """One fired wave; the unique key is a second guard against firing a wave twice."""

    __tablename__ = "request_wave"
    __table_args__ = (UniqueConstraint("request_id", "wave_no", name="uq_wave"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="blood_request.id", index=True)
    wave_no: int
    due_at: datetime | None = None
    fired_at: datetime
    radius_km: float | None = None  # None: every cell (rare type)
    max_tier: int = 0
    asked: int = 0


class RequestContact(SQLModel, table=True):
    """One donor asked for one request. ``token`` binds a button press to this row."""

    __tablename__ = "request_contact"
    __table_args__ = (
        UniqueConstraint("request_id", "donor_id", name="uq_contact"),
        Index("ix_contact_donor_asked", "donor_id", "asked_at"),
        Index("ix_contact_request_state", "request_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="blood_request.id")
    # SET NULL: forgetting a donor (DOMAIN.md §7) keeps the anonymous count of asks.
    donor_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("donor.id", ondelete="SET NULL"), nullable=True))
    state: str = ContactState.queued.value
    wave_no: int = 1
    tier: int = 0
    distance_km: float | None = None
    travel_min: float | None = None
    # When she would be at the hospital: asked (or answered) + preparation + travel (dispatcher.coverage).
    # Her "available" counts towards the target only if this is before the deadline (issue 9).
    expected_arrival_at: datetime | None = None
    score: float | None = None
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    token: str = ""
    asked_at: datetime = Field(default_factory=utcnow)
    notified_at: datetime | None = None
    answered_at: datetime | None = None
    en_route_at: datetime | None = None
    arrived_at: datetime | None = None
    outcome_at: datetime | None = None  # donated, deferred or no-show, marked by staff; or when she withdrew
    volume_ml: int | None = None
    component: str | None = None  # the component actually given, when it differs from the request's
    # What the last desk mark changed, so staff may undo it for a short while (dispatcher.desk.undo):
    # {"action", "at", "by", "state", "arrived_at", "donation_id", "donor": {previous donor fields}}.
    undo: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class DonorCommitment(SQLModel, table=True):
    """A donor who said "available" is held for one request; the primary key makes it one at a time.

    An INSERT is atomic on SQLite and PostgreSQL alike, so two requests racing for one
    donor cannot both commit her (a conditional UPDATE under READ COMMITTED could).
    """

    __tablename__ = "donor_commitment"

    donor_id: int = Field(sa_column=Column(Integer, ForeignKey("donor.id", ondelete="CASCADE"),
                                           primary_key=True, autoincrement=False))
    request_id: int = Field(foreign_key="blood_request.id", index=True)
    until: datetime  # the request's deadline: a stale hold frees itself
    created_at: datetime = Field(default_factory=utcnow)


class OutboxMessage(SQLModel, table=True):
    """A message the dispatcher wants sent, written in the same transaction as its cause."""

    __tablename__ = "outbox_message"
    # ix_outbox_chat_state: the claim's "is another message to this chat being sent?" (dispatcher.sender).
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),
                      Index("ix_outbox_chat_state", "chat_id", "state"))

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # idempotency: the same intent is written once
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    locale: str | None = None
    state: str = OutboxState.pending.value
    priority: int = 5  # lower first: calls and stand-downs before notices
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    last_error: str = ""
    edit_of_key: str | None = None  # edit the message sent for that key instead of sending anew
    request_id: int | None = Field(default=None, index=True)
    contact_id: int | None = None
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    # While ``sending``: which instance claimed the row, and until when the claim holds unless renewed
    # (issue 14). A row whose lease has run out is another instance's to take over: its claimer died.
    claimed_by: str | None = None
    lease_until: datetime | None = None
    # Which channel carries it (models.tables.Channel) and, off Telegram, to which address (an E.164
    # phone for SMS): each channel has its own sender and limits. ``chat_id`` is then the donor_channel
    # row's id, so that one address is paced as one chat.
    channel: str = "telegram"
    address: str | None = None


class SendBudget(SQLModel, table=True):
    """Telegram's per-token limits shared by several instances (dispatcher.send_budget, PostgreSQL only).

    One row per budget: "global", and "chat:<id>" for each chat recently written to. ``next_at`` is
    the earliest moment (seconds since the epoch, by the database's clock) the next send may start.
    """

    __tablename__ = "send_budget"

    name: str = Field(primary_key=True)
    next_at: float = 0.0


class ReminderRun(SQLModel, table=True):
    """One row per reminder source, written first in each of its runs (dispatcher.reminders).

    The write takes the lock up front: on PostgreSQL it serialises runs of one source, on
    SQLite a read-then-write run cannot fail with SQLITE_BUSY_SNAPSHOT. It also shows when
    each source last ran.
    """

    __tablename__ = "reminder_run"

    name: str = Field(primary_key=True)
    ran_at: datetime


# Searching a few grid cells for one blood type is the hot path of every wave
# (bench/rank.py). With the location in the index, the nearest compatible donors
# are found from the index alone; only those few are then read in full.
Index("ix_donor_cell_type_loc", *(col(c) for c in (Donor.geo_cell, Donor.abo, Donor.rh, Donor.lat, Donor.lon,
                                                   Donor.id)))
