"""Baseline: the schema as it stood when migrations were introduced (3 December 2026).

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-03

A new database gets every table. A database made before migrations existed (by
``create_all``: RedReserve tables but no ``alembic_version``) is adopted: missing tables,
columns and indexes are added, nothing is dropped or rewritten, and Alembic then stamps
it at this revision. The tables below are a frozen copy, never the live models: later
revisions change the models, not this file.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (the column types below)
from alembic import op

revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

baseline = sa.MetaData()
# What existing rows get when a NOT NULL column is added to them: the models' plain defaults.
FILL: dict[tuple[str, str], object] = {
    ("audit_log", "actor"): "",
    ("audit_log", "subject"): "",
    ("audit_log", "detail"): "",
    ("club", "area"): "",
    ("donor", "location_approx"): False,
    ("donor", "area"): "",
    ("donor", "donation_count"): 0,
    ("donor", "status"): "active",
    ("donor", "remind_eligible"): True,
    ("donor", "note"): "",
    ("fsm_record", "data"): "{}",
    ("hospital", "address"): "",
    ("outbox_message", "state"): "pending",
    ("outbox_message", "priority"): 5,
    ("outbox_message", "attempts"): 0,
    ("outbox_message", "last_error"): "",
    ("telegram_user", "first_name"): "",
    ("blood_request", "note"): "",
    ("blood_request", "rh_positive_ok"): False,
    ("blood_request", "state"): "open",
    ("blood_request", "rare"): False,
    ("blood_request", "target_available"): 0,
    ("blood_request", "wave_no"): 0,
    ("blood_request", "radius_km"): 0.0,
    ("blood_request", "close_reason"): "",
    ("club_membership", "role"): "member",
    ("donation", "component"): "whole_blood",
    ("donation", "place"): "",
    ("invite", "max_uses"): 1,
    ("invite", "uses"): 0,
    ("request_contact", "state"): "queued",
    ("request_contact", "wave_no"): 1,
    ("request_contact", "tier"): 0,
    ("request_contact", "token"): "",
    ("request_wave", "max_tier"): 0,
    ("request_wave", "asked"): 0,
}


def _index(name: str, table: str, columns: list[str], *, unique: bool) -> None:
    sa.Index(name, *(baseline.tables[table].c[c] for c in columns), unique=unique)


sa.Table(
    "audit_log", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("actor_telegram_id", sa.BigInteger(), nullable=True),
    sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint("id")
)
_index("ix_audit_log_action", "audit_log", ["action"], unique=False)
_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
sa.Table(
    "club", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("lat", sa.Float(), nullable=False),
    sa.Column("lon", sa.Float(), nullable=False),
    sa.Column("area", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id")
)
_index("ix_club_name", "club", ["name"], unique=True)
sa.Table(
    "donor", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("full_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("telegram_id", sa.BigInteger(), nullable=True),
    sa.Column("abo", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("rh", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("sex", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("weight_kg", sa.Float(), nullable=True),
    sa.Column("lat", sa.Float(), nullable=True),
    sa.Column("lon", sa.Float(), nullable=True),
    sa.Column("location_approx", sa.Boolean(), nullable=False),
    sa.Column("geo_cell", sa.Integer(), nullable=True),
    sa.Column("area", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("last_donation_date", sa.Date(), nullable=True),
    sa.Column("last_donation_component", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("donation_count", sa.Integer(), nullable=False),
    sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("status_until", sa.Date(), nullable=True),
    sa.Column("deferral_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("remind_eligible", sa.Boolean(), nullable=False),
    sa.Column("consent_profile_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("consent_contact_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("consent_location_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("consent_policy_version", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("telegram_id")
)
_index("ix_donor_cell", "donor", ["geo_cell"], unique=False)
_index("ix_donor_cell_type_loc", "donor", ["geo_cell", "abo", "rh", "lat", "lon", "id"], unique=False)
_index("ix_donor_last_donation", "donor", ["last_donation_date"], unique=False)
_index("ix_donor_lat_lon", "donor", ["lat", "lon"], unique=False)
_index("ix_donor_phone", "donor", ["phone"], unique=True)
_index("ix_donor_type_status", "donor", ["abo", "rh", "status"], unique=False)
sa.Table(
    "fsm_record", baseline,
    sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("key")
)
sa.Table(
    "hospital", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("lat", sa.Float(), nullable=False),
    sa.Column("lon", sa.Float(), nullable=False),
    sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id")
)
_index("ix_hospital_name", "hospital", ["name"], unique=True)
sa.Table(
    "outbox_message", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("chat_id", sa.BigInteger(), nullable=False),
    sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("params", sa.JSON(), nullable=False),
    sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("edit_of_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("request_id", sa.Integer(), nullable=True),
    sa.Column("contact_id", sa.Integer(), nullable=True),
    sa.Column("message_id", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("key")
)
_index("ix_outbox_due", "outbox_message", ["state", "next_attempt_at"], unique=False)
_index("ix_outbox_message_request_id", "outbox_message", ["request_id"], unique=False)
sa.Table(
    "processed_update", baseline,
    sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("update_id")
)
sa.Table(
    "reminder_run", baseline,
    sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("ran_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("name")
)
sa.Table(
    "telegram_user", baseline,
    sa.Column("telegram_id", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column("first_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("username", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("blocked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint("telegram_id")
)
sa.Table(
    "blood_request", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("hospital_id", sa.Integer(), nullable=False),
    sa.Column("abo", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("rh", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("component", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("units", sa.Integer(), nullable=False),
    sa.Column("urgency", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("deadline", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("rh_positive_ok", sa.Boolean(), nullable=False),
    sa.Column("posted_by", sa.BigInteger(), nullable=True),
    sa.Column("chat_id", sa.BigInteger(), nullable=True),
    sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("rare", sa.Boolean(), nullable=False),
    sa.Column("target_available", sa.Integer(), nullable=False),
    sa.Column("wave_no", sa.Integer(), nullable=False),
    sa.Column("next_wave_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("radius_km", sa.Float(), nullable=False),
    sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("covered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("close_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("closed_by", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["hospital_id"], ["hospital.id"], ),
    sa.PrimaryKeyConstraint("id")
)
_index("ix_blood_request_hospital_id", "blood_request", ["hospital_id"], unique=False)
_index("ix_request_state", "blood_request", ["state"], unique=False)
sa.Table(
    "club_membership", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("club_id", sa.Integer(), nullable=False),
    sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("donor_id", sa.Integer(), nullable=True),
    sa.Column("telegram_id", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["club_id"], ["club.id"], ),
    sa.ForeignKeyConstraint(["donor_id"], ["donor.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("club_id", "donor_id", name="uq_member_donor"),
    sa.UniqueConstraint("club_id", "telegram_id", "role", name="uq_member_tg_role")
)
_index("ix_club_membership_club_id", "club_membership", ["club_id"], unique=False)
_index("ix_club_membership_donor_id", "club_membership", ["donor_id"], unique=False)
_index("ix_club_membership_telegram_id", "club_membership", ["telegram_id"], unique=False)
sa.Table(
    "donation", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("donor_id", sa.Integer(), nullable=True),
    sa.Column("club_id", sa.Integer(), nullable=True),
    sa.Column("donated_on", sa.Date(), nullable=False),
    sa.Column("volume_ml", sa.Integer(), nullable=True),
    sa.Column("component", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("place", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("hospital_id", sa.Integer(), nullable=True),
    sa.Column("recorded_by", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["club_id"], ["club.id"], ),
    sa.ForeignKeyConstraint(["donor_id"], ["donor.id"], ),
    sa.ForeignKeyConstraint(["hospital_id"], ["hospital.id"], ),
    sa.PrimaryKeyConstraint("id")
)
_index("ix_donation_club_id", "donation", ["club_id"], unique=False)
_index("ix_donation_donor_id", "donation", ["donor_id"], unique=False)
sa.Table(
    "hospital_chat", baseline,
    sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column("hospital_id", sa.Integer(), nullable=False),
    sa.Column("bound_by", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["hospital_id"], ["hospital.id"], ),
    sa.PrimaryKeyConstraint("chat_id")
)
_index("ix_hospital_chat_hospital_id", "hospital_chat", ["hospital_id"], unique=False)
sa.Table(
    "hospital_staff", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("hospital_id", sa.Integer(), nullable=False),
    sa.Column("telegram_id", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["hospital_id"], ["hospital.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("hospital_id", "telegram_id", name="uq_staff")
)
_index("ix_hospital_staff_hospital_id", "hospital_staff", ["hospital_id"], unique=False)
_index("ix_hospital_staff_telegram_id", "hospital_staff", ["telegram_id"], unique=False)
sa.Table(
    "invite", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("club_id", sa.Integer(), nullable=True),
    sa.Column("hospital_id", sa.Integer(), nullable=True),
    sa.Column("max_uses", sa.Integer(), nullable=False),
    sa.Column("uses", sa.Integer(), nullable=False),
    sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.BigInteger(), nullable=True),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["club_id"], ["club.id"], ),
    sa.ForeignKeyConstraint(["hospital_id"], ["hospital.id"], ),
    sa.PrimaryKeyConstraint("id")
)
_index("ix_invite_code", "invite", ["code"], unique=True)
sa.Table(
    "donor_commitment", baseline,
    sa.Column("donor_id", sa.Integer(), autoincrement=False, nullable=False),
    sa.Column("request_id", sa.Integer(), nullable=False),
    sa.Column("until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["donor_id"], ["donor.id"], ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["request_id"], ["blood_request.id"], ),
    sa.PrimaryKeyConstraint("donor_id")
)
_index("ix_donor_commitment_request_id", "donor_commitment", ["request_id"], unique=False)
sa.Table(
    "request_contact", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("request_id", sa.Integer(), nullable=False),
    sa.Column("donor_id", sa.Integer(), nullable=True),
    sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("wave_no", sa.Integer(), nullable=False),
    sa.Column("tier", sa.Integer(), nullable=False),
    sa.Column("distance_km", sa.Float(), nullable=True),
    sa.Column("travel_min", sa.Float(), nullable=True),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("token", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("asked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("notified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("answered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("en_route_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("arrived_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("outcome_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("volume_ml", sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(["donor_id"], ["donor.id"], ondelete="SET NULL"),
    sa.ForeignKeyConstraint(["request_id"], ["blood_request.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("request_id", "donor_id", name="uq_contact")
)
_index("ix_contact_donor_asked", "request_contact", ["donor_id", "asked_at"], unique=False)
_index("ix_contact_request_state", "request_contact", ["request_id", "state"], unique=False)
sa.Table(
    "request_wave", baseline,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("request_id", sa.Integer(), nullable=False),
    sa.Column("wave_no", sa.Integer(), nullable=False),
    sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("fired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column("radius_km", sa.Float(), nullable=True),
    sa.Column("max_tier", sa.Integer(), nullable=False),
    sa.Column("asked", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["request_id"], ["blood_request.id"], ),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("request_id", "wave_no", name="uq_wave")
)
_index("ix_request_wave_request_id", "request_wave", ["request_id"], unique=False)


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    if not present & set(baseline.tables):
        baseline.create_all(bind)
        return
    _adopt(bind, present)


def _adopt(bind: sa.engine.Connection, present: set[str]) -> None:
    """Bring a pre-migrations database up to this baseline without touching what it holds."""
    inspector = sa.inspect(bind)
    for table in baseline.sorted_tables:
        if table.name not in present:
            table.create(bind)
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        for column in missing:
            op.add_column(table.name, _added(column))
            if _filled(column) is not None and bind.dialect.name != "sqlite":
                # The default only filled the existing rows: new rows get theirs from the code, as on a new database.
                op.alter_column(table.name, column.name, server_default=None)
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def _filled(column: sa.Column) -> object | None:
    """The value existing rows get for a new NOT NULL column: the model's plain default."""
    if column.nullable:
        return None
    key = (column.table.name, column.name)
    if key not in FILL:
        raise RuntimeError(f"cannot add {key[0]}.{key[1]} to existing rows: it has no plain default")
    return FILL[key]


def _added(column: sa.Column) -> sa.Column:
    value = _filled(column)
    copy = sa.Column(column.name, column.type, nullable=column.nullable)
    if value is not None:
        literal = sa.literal(value, column.type).compile(
            dialect=op.get_bind().dialect, compile_kwargs={"literal_binds": True})
        copy.server_default = sa.DefaultClause(sa.text(str(literal)))
    return copy


def downgrade() -> None:
    baseline.drop_all(op.get_bind())
