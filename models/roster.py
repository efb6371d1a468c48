"""Roster import and export: the database side of :mod:`ground.roster_file`.

Import upserts donors by phone (E.164) and puts them on the club's roster.
It works in batches with SQLAlchemy Core — one ``IN`` query to find who exists,
one multi-row INSERT, one executemany UPDATE — because the ORM's unit of work
costs more per row than all the rest together, and a club may send 100,000 rows.

Rules an import keeps:
- An empty cell never erases what is known (a donor's own Telegram edits survive
  an old spreadsheet); a value that differs replaces the stored one.
- An older file never rolls donation history back: a later last donation or a
  higher count already recorded stays.
- A file touches only the importing club's own members: a phone that belongs to a donor
  of another club, or to one who registered herself, is refused on its row (she joins a
  club herself, with an invite). A club's data is its own (DOMAIN.md §7).
- A ``telegram_id`` column never links anyone: an account is linked only when it shares
  the donor's own phone with the bot (registration), and consents there.
- Each batch is one transaction and each row goes in whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from models.audit import audit
from models.geo import for_export, placed, same_as_exported
from models.tables import (
    Club,
    ClubMembership,
    Donor,
    DonorStatus,
    MemberRole,
    table_of,
    utcnow,
)
from ground.i18n import N_, Np_, Text
from ground.parsing import format_date
from ground.roster_file import RosterRow, RowError, RowResult, RowWarning

__all__ = ["BATCH_SIZE", "ImportReport", "export_roster", "import_roster"]

UNUSED_TELEGRAM_IDS = Text(N_("The Telegram ID column was not used: a member's Telegram account is linked only "
                                "when she shares this same phone number with the bot herself."))
BATCH_SIZE = 5000  # 5,000 phones in one IN list stay well below SQLite's and asyncpg's 32,766-parameter limits
MAX_DETAILS = 1000  # refusals and warnings kept word for word; the rest are counted

_donor = table_of(Donor)
_member = table_of(ClubMembership)
_c = _donor.c
_EXISTING_COLUMNS = (
    _c.id, _c.phone, _c.full_name, _c.telegram_id, _c.abo, _c.rh, _c.sex, _c.birth_date, _c.weight_kg,
    _c.lat, _c.lon, _c.location_approx, _c.geo_cell, _c.area, _c.last_donation_date,
    _c.last_donation_component, _c.donation_count, _c.note,
)
_UPDATABLE = tuple(c.name for c in _EXISTING_COLUMNS if c.name not in ("id", "phone"))


@dataclass
class ImportReport:
    """What an import did, or with ``dry_run``, would do. Counts rows of the file."""

    club_id: int
    dry_run: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    warned: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_DETAILS
    warnings: list[RowWarning] = field(default_factory=list)  # the first MAX_DETAILS
    notices: list[Text] = field(default_factory=list)  # about the whole file

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.refused

    def _refuse(self, errors: list[RowError]) -> None:
        self.refused += 1
        room = MAX_DETAILS - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])

    def _warn(self, warnings: list[RowWarning]) -> None:
        self.warned += 1
        room = MAX_DETAILS - len(self.warnings)
        if room > 0:
            self.warnings.extend(warnings[:room])

    def summary(self, limit: int = 20) -> list[Text]:
        """Lines for a person: the counts, then up to ``limit`` refusals and warnings."""
        lines: list[Text] = []
        if self.dry_run:
            lines.append(Text(N_("Trial run: nothing was saved. Importing this file would give:")))
        lines.append(Text(N_("{created}, {updated}, {unchanged}, {refused}."), {
            "created": Text.count(Np_("{n} new donor", "{n} new donors"), self.created),
            "updated": Text(N_("{n} updated"), {"n": self.updated}),
            "unchanged": Text(N_("{n} unchanged"), {"n": self.unchanged}),
            "refused": Text.count(Np_("{n} row refused", "{n} rows refused"), self.refused)}))
        lines.extend(self.notices)
        if self.refused:
            lines.append(Text(N_("Rows left out:")))
            lines.extend(e.as_text() for e in self.errors[:limit])
            more = self.refused - len({e.row_number for e in self.errors[:limit]})
            if more > 0:
                lines.append(Text(N_("… and {count} more."), {"count": more}))
        if self.warned:
            lines.append(Text(N_("Rows kept, to check:")))
            lines.extend(w.as_text() for w in self.warnings[:limit])
            more = self.warned - len({w.row_number for w in self.warnings[:limit]})
            if more > 0:
                lines.append(Text(N_("… and {count} more."), {"count": more}))
        return lines


@dataclass
class _Plan:
    """One batch's writes, worked out from the database before anything is written."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refusals: list[list[RowError]] = field(default_factory=list)
    warnings: list[list[RowWarning]] = field(default_factory=list)
    unused_telegram_ids: bool = False  # some row names a Telegram account: not used for linking

    def record(self, report: ImportReport) -> None:
        report.created += self.created
        report.updated += self.updated
        report.unchanged += self.unchanged
        for errors in self.refusals:
            report._refuse(errors)
        for warnings in self.warnings:
            report._warn(warnings)
        if self.unused_telegram_ids and UNUSED_TELEGRAM_IDS not in report.notices:
            report.notices.append(UNUSED_TELEGRAM_IDS)


class _Importer:
    def __init__(self, session: AsyncSession, club_id: int, club_lat: float, club_lon: float,
                 headers: dict[str, str], today: date, now: datetime, dry_run: bool) -> None:
        self.session = session
        self.club_id = club_id
        self.club_location = placed(club_lat, club_lon, approx=True)
        self.headers = headers
        self.today = today
        self.now = now
        self.dry_run = dry_run
        self.seen_phones: dict[str, int] = {}

    def header(self, fld: str) -> str:
        return self.headers.get(fld, fld)

    # -- rows that cannot go in whatever the database holds --------------------------

    def precheck(self, result: RowResult) -> list[RowError]:
        """The reader checks all this already; rows may come from elsewhere (a bot form)."""
        row, number = result.row, result.row_number
        assert row is not None
        errors: list[RowError] = []
        if row.phone in self.seen_phones:
            errors.append(RowError(number, self.header("phone"), Text(
                N_("{phone} is already on row {row} of this file; this row is left out."),
                {"phone": row.phone, "row": self.seen_phones[row.phone]})))
        else:
            self.seen_phones[row.phone] = number
        if row.last_donation_date is not None and row.last_donation_date > self.today:
            errors.append(RowError(number, self.header("last_donation"), Text(
                N_("{date} is in the future: a last donation must be today or earlier."),
                {"date": format_date(row.last_donation_date)})))
        if row.birth_date is not None and row.birth_date > self.today:
            errors.append(RowError(number, self.header("birth_date"), Text(
                N_("The birth date {date} is in the future."), {"date": format_date(row.birth_date)})))
        return errors

    # -- planning -------------------------------------------------------------------

    async def plan(self, conn: AsyncConnection, batch: list[RowResult]) -> _Plan:
        plan = _Plan()
        phones = [r.row.phone for r in batch if r.row is not None]  # every row of a batch is checked
        existing = {row.phone: row for row in
                    (await conn.execute(select(*_EXISTING_COLUMNS).where(_c.phone.in_(phones)))).all()}
        on_roster: set[int] = set()
        elsewhere: set[int] = set()
        if existing:
            ids = [d.id for d in existing.values()]
            rows = (await conn.execute(select(_member.c.donor_id, _member.c.club_id).where(
                _member.c.donor_id.in_(ids), _member.c.role == MemberRole.member.value))).all()
            on_roster = {donor_id for donor_id, club_id in rows if club_id == self.club_id}
            elsewhere = {donor_id for donor_id, club_id in rows if club_id != self.club_id}

        for result in batch:
            row = result.row
            assert row is not None
            warnings = list(result.warnings)
            donor = existing.get(row.phone)
            if donor is None:
                plan.inserts.append(self._new_donor(row))
                plan.created += 1
            elif donor.id not in on_roster:
                plan.refusals.append([self._not_ours(result, donor.id in elsewhere)])
                continue
            else:
                changes = self._changes(donor, row)
                if changes:
                    plan.updates.append(self._updated(donor, changes))
                    plan.updated += 1
                else:
                    plan.unchanged += 1
            if row.telegram_id is not None and (donor is None or donor.telegram_id != row.telegram_id):
                plan.unused_telegram_ids = True
            if warnings:
                plan.warnings.append(warnings)
        return plan

    def _not_ours(self, result: RowResult, other_club: bool) -> RowError:
        """Another club's donor, or one who registered herself: her record is not this club's to write."""
        if other_club:
            text = N_("{phone} belongs to another club — ask the donor to join your club with an invite "
                      "(/invitelink). This row is left out.")
        else:
            text = N_("{phone} is registered with RedReserve by the donor herself — ask her to join your club "
                      "with an invite (/invitelink). This row is left out.")
        assert result.row is not None  # only a row that was read can belong to someone
        return RowError(result.row_number, self.header("phone"), Text(text, {"phone": result.row.phone}))

    def _new_donor(self, row: RosterRow) -> dict[str, Any]:
        where = placed(row.lat, row.lon, approx=False) if row.lat is not None and row.lon is not None \
            else self.club_location
        return {
            "full_name": row.full_name, "phone": row.phone, "telegram_id": None,
            "abo": row.abo, "rh": row.rh if row.abo is not None else None, "sex": row.sex,
            "birth_date": row.birth_date, "weight_kg": row.weight_kg,
            **where, "area": row.area,
            "last_donation_date": row.last_donation_date, "donation_count": row.donation_count or 0,
            "status": DonorStatus.active.value, "note": row.note,
            "created_at": self.now, "updated_at": self.now,
            # Left out, so NULL: last_donation_component (unknown: the longer whole-blood wait
            # applies), status_until, deferral_reason, locale (the donor picks it), and every
            # consent column — consent is the donor's to give, in the bot, when they link.
            # telegram_id stays NULL whatever the file says: only the account that shares
            # this phone with the bot is linked to it (registration).
        }

    def _changes(self, donor: Any, row: RosterRow) -> dict[str, Any]:
        new: dict[str, Any] = {}
        if row.full_name != donor.full_name:
            new["full_name"] = row.full_name
        if row.abo is not None and (row.abo, row.rh) != (donor.abo, donor.rh):
            new["abo"], new["rh"] = row.abo, row.rh
        if row.sex is not None and row.sex != donor.sex:
            new["sex"] = row.sex
        if row.birth_date is not None and row.birth_date != donor.birth_date:
            new["birth_date"] = row.birth_date
        if row.weight_kg is not None and row.weight_kg != donor.weight_kg:
            new["weight_kg"] = row.weight_kg
        if row.last_donation_date is not None and (
                donor.last_donation_date is None or row.last_donation_date > donor.last_donation_date):
            # The file does not say which kind; no kind means the longer whole-blood wait.
            new["last_donation_date"], new["last_donation_component"] = row.last_donation_date, None
        if row.donation_count is not None and row.donation_count > donor.donation_count:
            new["donation_count"] = row.donation_count
        if row.lat is not None and row.lon is not None and (
                donor.location_approx or not same_as_exported(row.lat, row.lon, donor.lat, donor.lon)):
            new.update(placed(row.lat, row.lon, approx=False))
        if row.area and row.area != donor.area:
            new["area"] = row.area
        if row.note and row.note != donor.note:
            new["note"] = row.note
        return new

    def _updated(self, donor: Any, changes: dict[str, Any]) -> dict[str, Any]:
        # executemany needs one shape for every row: all columns, the changed ones replaced.
        values = {name: changes.get(name, getattr(donor, name)) for name in _UPDATABLE}
        values["updated_at"] = self.now
        values["b_id"] = donor.id
        return values

    # -- writing --------------------------------------------------------------------

    async def apply(self, conn: AsyncConnection, plan: _Plan) -> None:
        join_ids: list[int] = []
        if plan.inserts:
            if conn.dialect.insert_executemany_returning:
                result = await conn.execute(insert(_donor).returning(_c.id), plan.inserts)
                join_ids.extend(result.scalars())
            else:  # pragma: no cover - every supported driver returns ids
                await conn.execute(insert(_donor), plan.inserts)
                phones = [d["phone"] for d in plan.inserts]
                join_ids.extend((await conn.execute(select(_c.id).where(_c.phone.in_(phones)))).scalars())
        if plan.updates:
            stmt = update(_donor).where(_c.id == bindparam("b_id"))
            await conn.execute(stmt, plan.updates)
        if join_ids:
            await conn.execute(insert(_member), [
                {"club_id": self.club_id, "role": MemberRole.member.value, "donor_id": donor_id,
                 "telegram_id": None, "created_at": self.now} for donor_id in join_ids])

    async def run_batch(self, batch: list[RowResult], report: ImportReport) -> None:
        conn = await self.session.connection()
        plan = await self.plan(conn, batch)
        if self.dry_run:
            plan.record(report)
            return
        try:
            await self.apply(conn, plan)
            await self.session.commit()
        except IntegrityError:
            # Someone else wrote a phone between our check and our write.
            await self.session.rollback()
            await self._one_by_one(batch, report)
            return
        plan.record(report)

    async def _one_by_one(self, batch: list[RowResult], report: ImportReport) -> None:
        for result in batch:
            conn = await self.session.connection()
            plan = await self.plan(conn, [result])
            try:
                await self.apply(conn, plan)
                await self.session.commit()
            except IntegrityError:
                await self.session.rollback()
                report._refuse([RowError(result.row_number, self.header("phone"), Text(
                    N_("could not be saved: another donor took this phone number or Telegram id "
                       "during the import. Import the file again to retry this row.")))])
                continue
            plan.record(report)


def _batches(rows: Iterable[RowResult], size: int) -> Iterator[list[RowResult]]:
    batch: list[RowResult] = []
    for result in rows:
        batch.append(result)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_roster(session: AsyncSession, club_id: int, rows: Iterable[RowResult], *,
                        dry_run: bool = False, today: date, actor: int | str,
                        now: datetime | None = None, batch_size: int = BATCH_SIZE,
                        progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Upsert the file's donors by phone and put them on club ``club_id``'s roster.

    ``rows`` is usually an open :class:`~ground.roster_file.RosterFile` (its
    notices and column headers then appear in the report). ``actor`` is the
    Telegram id of the club lead, or "cli". The session is committed after each
    batch; with ``dry_run`` nothing is written and the report says what would be.
    """
    now = now or utcnow()
    conn = await session.connection()
    club = (await conn.execute(select(col(Club.lat), col(Club.lon)).where(col(Club.id) == club_id))).one_or_none()
    if club is None:
        raise LookupError(f"no club with id {club_id}")
    report = ImportReport(club_id=club_id, dry_run=dry_run)
    importer = _Importer(session, club_id, club.lat, club.lon, getattr(rows, "columns", {}) or {},
                         today, now, dry_run)
    batches = _batches(rows, batch_size)
    loop = asyncio.get_running_loop()
    # Reading and checking rows is plain Python; done in a worker thread, the next batch is
    # read while this one is written, and a bot's event loop is never stalled by a big file.
    pending: asyncio.Future[list[RowResult] | None] = loop.run_in_executor(None, next, batches, None)
    try:
        while (batch := await pending) is not None:
            pending = loop.run_in_executor(None, next, batches, None)
            valid: list[RowResult] = []
            for result in batch:
                if result.row is None:
                    report._refuse(result.errors)
                    continue
                errors = importer.precheck(result)
                if errors:
                    report._refuse(errors)
                else:
                    valid.append(result)
            if valid:
                await importer.run_batch(valid, report)
            if progress is not None:
                progress(report)  # after each batch: the CLI's line on a terminal
    except BaseException:
        if not pending.done():
            with contextlib.suppress(BaseException):
                await pending  # the file must not be read on after the caller closes it
        await session.rollback()
        if not dry_run and report.created + report.updated:
            # Earlier batches are in: the audit must say so even when the file broke off.
            audit(session, actor, "roster.import", f"club:{club_id}", _counts(report) + " aborted=1", at=now)
            await session.commit()
        raise
    report.notices.extend(getattr(rows, "notices", ()))
    if dry_run:
        await session.rollback()
    else:
        audit(session, actor, "roster.import", f"club:{club_id}", _counts(report), at=now)
        await session.commit()
    return report


def _counts(report: ImportReport) -> str:
    return (f"created={report.created} updated={report.updated} unchanged={report.unchanged} "
            f"refused={report.refused}")


def _exported(d: Any) -> RosterRow:
    # The club's location stands in for an unknown home: it is not the donor's, so it is not written.
    lat, lon = (None, None) if d.location_approx else for_export(d.lat, d.lon)
    return RosterRow(
        full_name=d.full_name, phone=d.phone, abo=d.abo, rh=d.rh if d.abo else None, sex=d.sex,
        birth_date=d.birth_date, weight_kg=d.weight_kg, last_donation_date=d.last_donation_date,
        donation_count=d.donation_count, lat=lat, lon=lon, area=d.area, telegram_id=d.telegram_id, note=d.note)


async def export_roster(session: AsyncSession, club_id: int, *, actor: int | str,
                        now: datetime | None = None) -> list[RosterRow]:
    """The club's members as roster rows, in the order they joined; the export is audited.

    A location that only stands in for the club's (``location_approx``) is left
    blank, so the file does not claim to know where the donor lives, and
    importing it back changes nothing.
    """
    stmt = (select(*_EXISTING_COLUMNS)
            .join(_member, _member.c.donor_id == _c.id)
            .where(_member.c.club_id == club_id, _member.c.role == MemberRole.member.value)
            .order_by(_member.c.id))
    conn = await session.connection()
    # Streamed, so a 100,000-member club holds the roster rows only, not the driver's rows too.
    result = await conn.stream(stmt.execution_options(yield_per=BATCH_SIZE))
    rows = [_exported(d) async for d in result]
    audit(session, actor, "roster.export", f"club:{club_id}", f"rows={len(rows)}", at=now or utcnow())
    await session.commit()
    return rows
