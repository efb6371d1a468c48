"""A donor's own record: edits, donations, export and deletion (DOMAIN.md §7 rights)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, and_, cast, delete, or_, update
from sqlalchemy.sql import ColumnElement
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.audit import audit
from models.bot_state import FsmRecord
from models.dispatch_tables import OutboxMessage
from models.tables import AuditLog, Channel, Club, ClubMembership, Donation, Donor, DonorChannel, TelegramUser, table_of


def consented_in_bot() -> ColumnElement:
    """She answered the bot's consent question herself (DOMAIN.md §7). An account linked any
    other way (an old roster file's Telegram id) is not hers to use until she does: until then
    she is treated as a member who is not on Telegram."""
    D = table_of(Donor).c
    return or_(D.consent_profile_at.is_not(None), D.consent_contact_at.is_not(None))


def refused_contact() -> ColumnElement:
    """She was asked and agreed only to keep her profile: nobody rings her for a request either."""
    D = table_of(Donor).c
    return and_(D.consent_profile_at.is_not(None), D.consent_contact_at.is_(None))


async def club_names(session: AsyncSession, donor_id: int) -> list[str]:
    rows = await session.exec(
        select(Club.name)
        .join(ClubMembership, col(ClubMembership.club_id) == Club.id)
        .where(col(ClubMembership.donor_id) == donor_id, col(ClubMembership.role) == "member")
        .order_by(col(Club.name))
    )
    return list(rows.all())


async def update_fields(session: AsyncSession, donor: Donor, *, now: datetime, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(donor, name, value)
    donor.updated_at = now
    session.add(donor)
    await session.commit()


async def set_contact_consent(
    session: AsyncSession, donor: Donor, allowed: bool, *, now: datetime, policy_version: str
) -> None:
    """Consent to emergency calls is given or withdrawn by the donor alone, and audited."""
    donor.consent_contact_at = now if allowed else None
    donor.consent_policy_version = policy_version
    donor.updated_at = now
    session.add(donor)
    action = "consent.contact." + ("give" if allowed else "withdraw")
    audit(session, donor.telegram_id, action, f"donor:{donor.id}", at=now)
    await session.commit()


async def set_eligible_reminder(session: AsyncSession, donor: Donor, on: bool, *, now: datetime) -> None:
    """The "you may donate again" reminder, switched by the donor alone; audited like the consent to calls."""
    donor.remind_eligible = on
    donor.updated_at = now
    session.add(donor)
    audit(session, donor.telegram_id, "reminder.eligible." + ("on" if on else "off"), f"donor:{donor.id}", at=now)
    await session.commit()


async def record_donation(
    session: AsyncSession, donor: Donor, when: date, *, now: datetime, recorded_by: int | None,
    component: str = "whole_blood", volume_ml: int | None = None, hospital_id: int | None = None, place: str = "",
) -> bool:
    """Record one donation and commit. Returns False (and writes nothing) if that day is already recorded."""
    added = await add_donation(session, donor, when, now=now, recorded_by=recorded_by, component=component,
                               volume_ml=volume_ml, hospital_id=hospital_id, place=place)
    if added:
        await session.commit()
    return added


async def add_donation(
    session: AsyncSession, donor: Donor, when: date, *, now: datetime, recorded_by: int | None,
    component: str = "whole_blood", volume_ml: int | None = None, hospital_id: int | None = None, place: str = "",
) -> bool:
    """Add one donation to the caller's transaction; False if that day is already recorded."""
    already = (
        await session.exec(select(Donation.id).where(Donation.donor_id == donor.id, Donation.donated_on == when))
    ).first()
    if already is not None:
        return False
    session.add(
        Donation(donor_id=donor.id, donated_on=when, component=component, volume_ml=volume_ml,
                 hospital_id=hospital_id, place=place, recorded_by=recorded_by, created_at=now)
    )
    donor.donation_count += 1
    if donor.last_donation_date is None or when >= donor.last_donation_date:
        donor.last_donation_date = when
        donor.last_donation_component = component
    donor.updated_at = now
    session.add(donor)
    return True


def _referencing_columns():
    """Every (table, column) holding a donor id, wherever a later table added one."""
    donor_table = table_of(Donor)
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table is donor_table for fk in column.foreign_keys):
                yield table, column


def _jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


async def export_personal_data(session: AsyncSession, donor: Donor) -> bytes:
    """Everything stored about the donor, as JSON: the profile and every row that names them."""
    assert donor.id is not None  # a row read from the database
    data: dict[str, Any] = {
        "profile": {c.name: _jsonable(getattr(donor, c.name)) for c in table_of(Donor).columns},
        "clubs": await club_names(session, donor.id),
    }
    conn = await session.connection()
    for table, column in _referencing_columns():
        rows = (await conn.execute(sa_select(table).where(column == donor.id))).mappings().all()
        data.setdefault(table.name, []).extend({k: _jsonable(v) for k, v in row.items()} for row in rows)
    trail = await session.exec(select(AuditLog).where(col(AuditLog.subject) == f"donor:{donor.id}").order_by(col(AuditLog.at)))
    data["audit_log"] = [
        {"at": a.at.isoformat(), "action": a.action, "detail": a.detail} for a in trail.all()
    ]
    audit(session, donor.telegram_id, "donor.export_self", f"donor:{donor.id}")
    await session.commit()
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


async def forget(session: AsyncSession, donor_id: int, *, now: datetime, actor: int | str) -> None:
    """Delete the donor's personal data in one transaction; anonymous counts stay.

    Rows elsewhere that point at the donor (donations, dispatch history) lose the
    pointer where it may be empty, so totals still add up; rows that cannot exist
    without the donor are deleted.
    """
    donor = await session.get(Donor, donor_id)
    if donor is None:
        return
    telegram_id, marks = donor.telegram_id, {donor.phone, donor.full_name}
    await _scrub_outbox(session, telegram_id, marks)
    await _scrub_channel_outbox(session, donor_id)
    await session.exec(delete(ClubMembership).where(col(ClubMembership.donor_id) == donor_id))
    for table, column in _referencing_columns():
        if table is table_of(ClubMembership):
            continue
        if column.nullable:
            await session.exec(update(table).where(column == donor_id).values({column.name: None}))
        else:
            await session.exec(delete(table).where(column == donor_id))
    await session.delete(donor)
    if telegram_id is not None:
        await session.exec(delete(TelegramUser).where(col(TelegramUser.telegram_id) == telegram_id))
        await session.exec(delete(FsmRecord).where(col(FsmRecord.key).like(f"%:{telegram_id}:%")))
    audit(session, actor, "donor.forget", f"donor:{donor_id}", at=now)
    await session.commit()
    await _wipe_freed_pages(session)


_UNSENT = ("pending", "sending")


async def _scrub_outbox(session: AsyncSession, telegram_id: int | None, marks: set[str]) -> None:
    """Messages to her, and messages naming her (a lead's call list, a nurse's nudge), sent or
    waiting, lose what is hers; a waiting one left with nothing to say is dropped."""
    O = OutboxMessage
    if telegram_id is not None:
        to_her = (col(O.chat_id) == telegram_id, col(O.channel) == Channel.telegram.value)
        await session.exec(update(O).where(*to_her, col(O.state).in_(_UNSENT)).values(state="cancelled"))
        await session.exec(update(O).where(*to_her).values(params={}))
    # Matched in the stored JSON text (json.dumps escapes non-ASCII the same way), then checked exactly.
    needles = [json.dumps(m)[1:-1] for m in marks if m]
    if not needles:
        return
    as_text = cast(O.params, String)
    rows = (await session.exec(select(O).where(or_(*[as_text.contains(n, autoescape=True) for n in needles])))).all()
    for row in rows:
        kept = _without(row.params, marks)
        if kept == row.params:
            continue
        values: dict[str, Any] = {"params": kept or {}}
        if not kept and row.state in _UNSENT:
            values["state"] = "cancelled"
        await session.exec(update(O).where(col(O.id) == row.id).values(values))


async def _scrub_channel_outbox(session: AsyncSession, donor_id: int) -> None:
    """Messages to her other channels (SMS: her phone is the row's address) lose the address and what
    they said; her channels themselves go with the donor (they point at her record)."""
    O = OutboxMessage
    ids = list((await session.exec(select(DonorChannel.id).where(DonorChannel.donor_id == donor_id))).all())
    if not ids:
        return
    to_her = (col(O.channel) != Channel.telegram.value, col(O.chat_id).in_(ids))
    await session.exec(update(O).where(*to_her, col(O.state).in_(_UNSENT)).values(state="cancelled"))
    await session.exec(update(O).where(*to_her).values(params={}, address=None))


def _without(value: Any, marks: set[str]) -> Any:
    """``value`` with every mapping that holds one of ``marks`` (her phone, her name) left out."""
    if isinstance(value, dict):
        if any(isinstance(v, str) and v in marks for v in value.values()):
            return None
        return {k: w for k, v in value.items() if (w := _without(v, marks)) is not None or v is None}
    if isinstance(value, list):
        return [w for v in value if (w := _without(v, marks)) is not None]
    return value


async def _wipe_freed_pages(session: AsyncSession) -> None:
    """SQLite: secure_delete (models.engine) zeroes the deleted rows in the file, but the WAL still
    holds the pages as they were until a checkpoint; a truncating one leaves no copy behind."""
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    await session.commit()
