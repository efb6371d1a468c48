"""Importing a club's roster into the database, and exporting it back."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func
from sqlmodel import select

import models.roster as roster_module
from models.geo import geo_cell
from models.roster import export_roster, import_roster
from models.tables import AuditLog, Club, ClubMembership, Donor
from redreserve.roster_file import RosterRow, RowResult, open_roster, write_roster

TODAY = date(2026, 5, 9)
NOW = datetime(2026, 5, 9, 3, 0, tzinfo=UTC)
LATER = datetime(2026, 5, 10, 3, 0, tzinfo=UTC)
HEADER = "name,phone,blood_type,sex,birth_date,weight_kg,last_donation,donations,lat,lon,area,telegram_id,note\n"
ROSTER = HEADER + (
    "Nguyễn Thị Lan,0912 345 678,O−,F,25/12/1990,50,01/03/2026,4,21.03,105.85,Ba Đình,111111111,\n"
    "Trần Văn Nam,0987654321,B+,M,01/02/1985,65,,,,,,,\n"
    "Lê Văn Cường,0912000001,A+,M,1980,70,15/01/2026,10,,,Hoàn Kiếm,,trưởng nhóm\n"
    "Minh,0912000002,O+,M,15/08/2009,55,,,,,,,\n"
)


def rows_of(text: str, **kwargs):
    return open_roster(io.BytesIO(text.encode("utf-8")), filename="roster.csv", today=TODAY, **kwargs)


async def make_club(sm, name="CLB Hà Nội", lat=21.0, lon=105.8) -> int:
    async with sm() as s:
        club = Club(name=name, lat=lat, lon=lon)
        s.add(club)
        await s.commit()
        return club.id


async def run(sm, club_id, text, *, dry_run=False, now=NOW, **kwargs):
    with rows_of(text) as rows:
        async with sm() as s:
            return await import_roster(s, club_id, rows, dry_run=dry_run, today=TODAY, actor="cli",
                                       now=now, **kwargs)


async def donors(sm) -> dict[str, Donor]:
    async with sm() as s:
        return {d.phone: d for d in (await s.exec(select(Donor))).all()}


async def count(sm, table) -> int:
    async with sm() as s:
        return (await s.exec(select(func.count()).select_from(table))).one()


async def test_a_new_roster_creates_donors_on_the_club_roster(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    report = await run(sm, club_id, ROSTER)
    assert (report.created, report.updated, report.unchanged, report.refused) == (4, 0, 0, 0)
    assert report.warned == 1  # Minh is 16: kept, not asked until 18

    by_phone = await donors(sm)
    lan = by_phone["+84912345678"]
    assert (lan.full_name, lan.abo, lan.rh, lan.sex, lan.weight_kg) == ("Nguyễn Thị Lan", "O", "-", "F", 50.0)
    assert (lan.lat, lan.lon, lan.location_approx) == (21.03, 105.85, False)
    assert lan.geo_cell == geo_cell(21.03, 105.85)
    assert lan.telegram_id == 111111111
    assert lan.status == "active" and lan.locale is None
    assert lan.consent_profile_at is None and lan.consent_contact_at is None and lan.consent_location_at is None

    nam = by_phone["+84987654321"]
    # No location in the file: the club's stands in, marked approximate.
    assert (nam.lat, nam.lon, nam.location_approx, nam.geo_cell) == (21.0, 105.8, True, geo_cell(21.0, 105.8))
    assert nam.donation_count == 0 and nam.last_donation_date is None

    async with sm() as s:
        members = (await s.exec(select(ClubMembership))).all()
    assert {(m.club_id, m.role, m.donor_id) for m in members} == {(club_id, "member", d.id) for d in by_phone.values()}


async def test_importing_the_same_file_again_changes_nothing(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    await run(sm, club_id, ROSTER)
    before = await donors(sm)
    report = await run(sm, club_id, ROSTER, now=LATER)
    assert (report.created, report.updated, report.unchanged, report.refused) == (0, 0, 4, 0)
    after = await donors(sm)
    assert {p: d.model_dump() for p, d in after.items()} == {p: d.model_dump() for p, d in before.items()}
    assert await count(sm, ClubMembership.__table__) == 4


async def test_a_trial_run_writes_nothing_and_says_what_would_happen(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    trial = await run(sm, club_id, ROSTER, dry_run=True)
    assert trial.dry_run and (trial.created, trial.refused) == (4, 0)
    assert "nothing was saved" in str(trial.summary()[0])
    assert await count(sm, Donor.__table__) == 0
    assert await count(sm, ClubMembership.__table__) == 0
    assert await count(sm, AuditLog.__table__) == 0

    await run(sm, club_id, ROSTER)
    changed = ROSTER.replace("Trần Văn Nam,0987654321,B+,M,01/02/1985,65", "Trần Văn Nam,0987654321,B+,M,01/02/1985,67")
    trial = await run(sm, club_id, changed + "Hoa,0912000003,AB+,F,,,,,,,,,\n", dry_run=True)
    assert (trial.created, trial.updated, trial.unchanged) == (1, 1, 3)
    assert (await donors(sm))["+84987654321"].weight_kg == 65.0


async def test_a_changed_field_is_updated_and_only_that(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    await run(sm, club_id, ROSTER)
    before = (await donors(sm))["+84987654321"]
    changed = ROSTER.replace("Trần Văn Nam,0987654321,B+,M,01/02/1985,65,,,,,,,",
                             "Trần Văn Nam,0987654321,B+,M,01/02/1985,67,,,21.5,105.5,Sóc Sơn,,")
    report = await run(sm, club_id, changed, now=LATER)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 3)
    after = (await donors(sm))["+84987654321"]
    assert (after.weight_kg, after.lat, after.lon, after.location_approx) == (67.0, 21.5, 105.5, False)
    assert after.geo_cell == geo_cell(21.5, 105.5) and after.area == "Sóc Sơn"
    assert after.updated_at == LATER and after.created_at == before.created_at
    assert (after.full_name, after.birth_date, after.abo) == (before.full_name, before.birth_date, before.abo)


async def test_empty_cells_and_older_donations_never_erase_what_is_known(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    await run(sm, club_id, ROSTER)
    older = HEADER + "Nguyễn Thị Lan,0912345678,,,,,01/01/2025,2,,,,,\n"
    report = await run(sm, club_id, older)
    assert report.unchanged == 1
    lan = (await donors(sm))["+84912345678"]
    assert (lan.abo, lan.weight_kg, lan.last_donation_date, lan.donation_count) == ("O", 50.0, date(2026, 3, 1), 4)
    assert (lan.lat, lan.location_approx, lan.telegram_id) == (21.03, False, 111111111)


async def test_a_telegram_id_of_another_donor_refuses_the_row_without_writing_any_of_it(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    await run(sm, club_id, ROSTER)
    text = HEADER + (
        "Hoa,0912000003,AB+,F,,,,,,,,,\n"
        "Kẻ mạo danh,0912000004,O+,M,,,,,,,,111111111,\n"  # Lan's Telegram id
        "Trần Văn Nam,0987654321,B+,M,01/02/1985,66,,,,,,111111111,\n"  # Nam is not linked: same problem
        "Đào,0912000005,A+,F,,,,,,,,,\n"
    )
    report = await run(sm, club_id, text, batch_size=2)
    assert (report.created, report.updated, report.unchanged, report.refused) == (2, 0, 0, 2)
    assert {(e.row_number, e.column) for e in report.errors} == {(3, "telegram_id"), (4, "telegram_id")}
    by_phone = await donors(sm)
    assert "+84912000004" not in by_phone
    assert by_phone["+84987654321"].weight_kg == 65.0 and by_phone["+84987654321"].telegram_id is None
    assert {"+84912000003", "+84912000005"} <= set(by_phone)
    lines = [str(t) for t in report.summary()]
    assert any(line.startswith("row 3, telegram_id: Telegram id 111111111 already belongs") for line in lines)


async def test_a_linked_donor_keeps_their_telegram_account(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    await run(sm, club_id, ROSTER)
    text = HEADER + "Nguyễn Thị Lan,0912345678,O−,F,25/12/1990,51,,,,,,222222222,\n"
    report = await run(sm, club_id, text)
    assert report.updated == 1
    assert any("already linked" in str(w.text) for w in report.warnings)
    lan = (await donors(sm))["+84912345678"]
    assert (lan.telegram_id, lan.weight_kg) == (111111111, 51.0)


async def test_a_row_the_database_refuses_goes_out_alone(db_sessionmaker, monkeypatch):
    """When another writer takes a Telegram id between the check and the write."""
    sm = db_sessionmaker
    club_id = await make_club(sm)
    await run(sm, club_id, ROSTER)
    monkeypatch.setattr(roster_module._Importer, "_telegram_refusal", lambda *args: None)
    text = HEADER + (
        "Hoa,0912000003,AB+,F,,,,,,,,,\n"
        "Kẻ mạo danh,0912000004,O+,M,,,,,,,,111111111,\n"
        "Đào,0912000005,A+,F,,,,,,,,,\n"
    )
    report = await run(sm, club_id, text)
    assert (report.created, report.refused) == (2, 1)
    assert report.errors[0].row_number == 3
    by_phone = await donors(sm)
    assert "+84912000004" not in by_phone and {"+84912000003", "+84912000005"} <= set(by_phone)
    assert await count(sm, ClubMembership.__table__) == 6  # no membership for the refused row


async def test_a_donor_already_known_elsewhere_joins_this_clubs_roster(db_sessionmaker):
    sm = db_sessionmaker
    first = await make_club(sm)
    second = await make_club(sm, "CLB Lào Cai", 22.48, 103.97)
    await run(sm, first, ROSTER)
    report = await run(sm, second, HEADER + "Trần Văn Nam,0987654321,B+,M,01/02/1985,65,,,,,,,\n")
    assert (report.created, report.updated, report.added_to_club) == (0, 1, 1)
    async with sm() as s:
        clubs = (await s.exec(select(ClubMembership.club_id).join(Donor, Donor.id == ClubMembership.donor_id)
                              .where(Donor.phone == "+84987654321"))).all()
    assert sorted(clubs) == sorted([first, second])
    # Still located at the first club: a second club's roster does not move anyone.
    assert (await donors(sm))["+84987654321"].lat == 21.0


async def test_refused_rows_are_reported_by_row_and_column(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    text = HEADER + (
        "Hoa,0912000003,AB+,F,,,,,,,,,\n"
        "Mai,not a phone,AB+,F,,,,,,,,,\n"
        "Hoa again,0912000003,AB+,F,,,,,,,,,\n"
        "Cúc,0912000006,B+,F,,,10/05/2026,,,,,,\n"
    )
    report = await run(sm, club_id, text)
    assert (report.created, report.refused) == (1, 3)
    lines = [str(t) for t in report.summary()]
    assert "1 new donors, 0 updated, 0 unchanged, 3 rows refused." in lines
    assert any(line.startswith("row 3, phone:") for line in lines)
    assert any(line.startswith("row 4, phone:") and "row 2" in line for line in lines)
    assert any(line.startswith("row 5, last_donation:") for line in lines)


async def test_rows_from_elsewhere_are_checked_again(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    rows = [RowResult(1, RosterRow("Lan", "+84912345678", last_donation_date=date(2026, 6, 1))),
            RowResult(2, RosterRow("Mai", "+84912345679")),
            RowResult(3, RosterRow("Mai bis", "+84912345679"))]
    async with sm() as s:
        report = await import_roster(s, club_id, rows, today=TODAY, actor=42)
    assert (report.created, report.refused) == (1, 2)
    async with sm() as s:
        audit = (await s.exec(select(AuditLog))).one()
    assert audit.actor_telegram_id == 42 and audit.actor == ""


async def test_export_then_import_changes_nothing_and_both_are_audited_without_personal_data(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    await run(sm, club_id, ROSTER)
    async with sm() as s:
        exported = await export_roster(s, club_id, actor="cli")
    assert [r.phone for r in exported] == ["+84912345678", "+84987654321", "+84912000001", "+84912000002"]
    nam = exported[1]
    assert nam.lat is None and nam.lon is None  # the club's location is not the donor's

    for fmt in ("csv", "xlsx"):
        buf = io.BytesIO()
        write_roster(buf, fmt, exported, lang="vi")
        buf.seek(0)
        with open_roster(buf, filename=f"export.{fmt}", today=TODAY) as rows:
            async with sm() as s:
                report = await import_roster(s, club_id, rows, today=TODAY, actor="cli", now=LATER)
        assert (report.created, report.updated, report.unchanged, report.refused) == (0, 0, 4, 0)

    async with sm() as s:
        audits = (await s.exec(select(AuditLog).order_by(AuditLog.id))).all()
    assert [a.action for a in audits] == ["roster.import", "roster.export", "roster.import", "roster.import"]
    assert audits[1].subject == f"club:{club_id}" and audits[1].detail == "rows=4"
    for audit in audits:
        assert "+84" not in audit.detail and "Lan" not in audit.detail


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
async def test_batch_size_does_not_change_the_outcome(db_sessionmaker, batch_size):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    report = await run(sm, club_id, ROSTER + ROSTER.split("\n", 1)[1], batch_size=batch_size)
    assert (report.created, report.refused) == (4, 4)
    assert await count(sm, ClubMembership.__table__) == 4


async def test_an_unknown_club_is_an_error(db_sessionmaker):
    with pytest.raises(LookupError):
        await run(db_sessionmaker, 999, ROSTER)


async def test_one_telegram_id_on_two_rows_is_refused_the_second_time_even_across_batches(db_sessionmaker):
    sm = db_sessionmaker
    club_id = await make_club(sm)
    rows = [RowResult(2, RosterRow("Lan", "+84912345678", telegram_id=5)),
            RowResult(3, RosterRow("Mai", "+84912345679", telegram_id=5))]
    for dry_run in (True, False):
        async with sm() as s:
            report = await import_roster(s, club_id, rows, today=TODAY, actor="cli", batch_size=1, dry_run=dry_run)
        assert (report.created, report.refused) == (1, 1)
        assert report.errors[0].row_number == 3
