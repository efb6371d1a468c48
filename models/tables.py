"""Database tables.

Times are timezone-aware UTC datetimes; calendar facts a person states (birth date, donation date) are dates.
Health data (blood type, donations, deferral category) lives only here and is
removed by ``/forget`` (DOMAIN.md §7).
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone

from sqlalchemy import BigInteger, Column, Index, Table, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table behind a table model, for queries written in SQLAlchemy Core
    (``table_of(Donor).c.abo``). SQLModel sets ``__table__`` when the class is created but its
    type stubs do not declare it: this is the one place that says so to the type checker."""
    return model.__table__  # type: ignore[attr-defined]


class DonorStatus(str, enum.Enum):
    active = "active"
    paused = "paused"  # by the donor, until status_until
    deferred = "deferred"  # medical deferral, until status_until, coarse reason only
    retired = "retired"


class Component(str, enum.Enum):
    whole_blood = "whole_blood"
    red_cells = "red_cells"
    platelets = "platelets"
    plasma = "plasma"


class MemberRole(str, enum.Enum):
    member = "member"
    lead = "lead"


class InviteKind(str, enum.Enum):
    lead = "lead"
    staff = "staff"
    donor = "donor"


class TelegramUser(SQLModel, table=True):
    """Anyone who has written to the bot. Only these can be messaged (DOMAIN.md §8)."""

    __tablename__ = "telegram_user"

    telegram_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    first_name: str = ""
    username: str | None = None
    locale: str | None = None  # None until the user picks; the config default applies
    started_at: datetime = Field(default_factory=utcnow)
    blocked_at: datetime | None = None  # set on a 403 "blocked", cleared when they write again
    # A lead or staff member who asked (/monthly on) for last month's report on the 1st (issue 16).
    monthly_report_since: datetime | None = None


class Club(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    lat: float
    lon: float
    area: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Hospital(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    lat: float
    lon: float
    address: str = ""
    phone: str | None = None  # E.164
    created_at: datetime = Field(default_factory=utcnow)


class Donor(SQLModel, table=True):
    __table_args__ = (
        Index("ix_donor_type_status", "abo", "rh", "status"),
        Index("ix_donor_cell", "geo_cell"),
        Index("ix_donor_last_donation", "last_donation_date"),
        Index("ix_donor_lat_lon", "lat", "lon"),
    )

    id: int | None = Field(default=None, primary_key=True)
    full_name: str
    phone: str = Field(unique=True, index=True)  # E.164
    telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    abo: str | None = None  # "O", "A", "B", "AB"; None = unknown: kept, never dispatched
    rh: str | None = None  # "+", "-"; None = unknown
    sex: str | None = None  # "M", "F"
    birth_date: date | None = None
    weight_kg: float | None = None
    lat: float | None = None
    lon: float | None = None
    location_approx: bool = False  # True when the club's location stands in for the donor's
    geo_cell: int | None = None  # coarse grid cell of (lat, lon), see models.geo
    area: str = ""
    last_donation_date: date | None = None
    last_donation_component: str | None = None  # Component value
    donation_count: int = 0
    status: str = DonorStatus.active.value
    status_until: date | None = None
    deferral_reason: str | None = None  # a coarse category, never a diagnosis
    locale: str | None = None
    remind_eligible: bool = True  # "you may donate again" on the day the interval ends (opt-out in /me)
    consent_profile_at: datetime | None = None
    consent_contact_at: datetime | None = None
    consent_location_at: datetime | None = None
    consent_policy_version: str | None = None
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Channel(str, enum.Enum):
    """Where a donor can be reached (DOMAIN.md §9). Telegram stays the primary one: buttons and a live board."""

    telegram = "telegram"
    sms = "sms"
    zalo = "zalo"


class DonorChannel(SQLModel, table=True):
    """One channel a donor agreed to be called on, in her order of preference (DOMAIN.md §7: consent per
    purpose and per channel). A call goes to her first reachable one; an undeliverable one moves it on."""

    __tablename__ = "donor_channel"
    __table_args__ = (UniqueConstraint("donor_id", "channel", name="uq_donor_channel"),
                      # an incoming SMS or Zalo message is matched to its donor by (channel, address)
                      Index("ix_donor_channel_address", "channel", "address"))

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    channel: str  # Channel value
    address: str  # Telegram chat id as text, E.164 phone, or Zalo user id
    rank: int = 0  # her order: lower is tried first
    consent_at: datetime | None = None  # None: known but not agreed to; never used for a call
    consent_policy_version: str | None = None
    unreachable_at: datetime | None = None  # set when the channel said it cannot deliver to her
    created_at: datetime = Field(default_factory=utcnow)


class ClubMembership(SQLModel, table=True):
    """A donor on a club's roster (role member) or a Telegram user leading it (role lead)."""

    __tablename__ = "club_membership"
    __table_args__ = (
        UniqueConstraint("club_id", "donor_id", name="uq_member_donor"),
        UniqueConstraint("club_id", "telegram_id", "role", name="uq_member_tg_role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    club_id: int = Field(foreign_key="club.id", index=True)
    role: str = MemberRole.member.value
    donor_id: int | None = Field(default=None, foreign_key="donor.id", index=True)
    telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    created_at: datetime = Field(default_factory=utcnow)


class HospitalStaff(SQLModel, table=True):
    __tablename__ = "hospital_staff"
    __table_args__ = (UniqueConstraint("hospital_id", "telegram_id", name="uq_staff"),)

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow)


class HospitalChat(SQLModel, table=True):
    """A staff group chat belongs to one hospital: the first staff request posted there binds it."""

    __tablename__ = "hospital_chat"

    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    bound_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Invite(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True)
    kind: str  # InviteKind value
    club_id: int | None = Field(default=None, foreign_key="club.id")
    hospital_id: int | None = Field(default=None, foreign_key="hospital.id")
    max_uses: int = 1
    uses: int = 0
    expires_at: datetime
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Donation(SQLModel, table=True):
    """One donation. ``donor_id`` is cleared when the donor is forgotten: the count stays."""

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int | None = Field(default=None, foreign_key="donor.id", index=True)
    club_id: int | None = Field(default=None, foreign_key="club.id", index=True)
    donated_on: date
    volume_ml: int | None = None
    component: str = Component.whole_blood.value
    place: str = ""
    hospital_id: int | None = Field(default=None, foreign_key="hospital.id")
    recorded_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """Who changed access or read personal data (DOMAIN.md §7). Never holds the data itself."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    actor: str = ""  # "cli", "system" or empty when a Telegram user acted
    action: str = Field(index=True)
    subject: str = ""  # e.g. "donor:12", "club:3"
    detail: str = ""


class ChannelLinkCode(SQLModel, table=True):
    """A one-time code that links a donor's chat on another channel (Zalo) to her record (issue 15).

    Only its SHA-256 is kept: the code itself was shown once, to her or to her lead, and a copy of this
    table cannot be used to link anyone. Single use (``used_at``), valid until ``expires_at``."""

    __tablename__ = "channel_link_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(unique=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    channel: str  # Channel value
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # Telegram id
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
