"""Clubs, hospitals, invites and roles, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from models.directory import (
    DirectoryError, Roles, create_club, create_hospital, create_invite, deep_link, find_club, find_hospital,
    list_clubs, nearest_clubs, redeem_invite, revoke_lead, revoke_staff, roles_of,
)
from models.tables import AuditLog, ClubMembership, Donor, HospitalStaff, Invite
from ground.clock import VIETNAM

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
LEAD, NURSE, DONOR, OTHER = 7_000_000_001, 7_000_000_002, 7_000_000_003, 7_000_000_004
NO_ROLES = Roles(donor_id=None, lead_club_ids=[], staff_hospital_ids=[])


async def _club(sm, name="CLB Hải Phòng", lat=20.86, lon=106.68):
    async with sm() as s:
        return await create_club(s, name, lat, lon, area="Lê Chân", actor="cli")


async def _hospital(sm):
    async with sm() as s:
        return await create_hospital(s, "Bệnh viện Việt Tiệp", 20.85, 106.68, phone="0225 3700 436", actor="cli")


async def _invite(sm, kind="lead", **kw):
    async with sm() as s:
        return await create_invite(s, kind, now=NOW, actor="cli", **kw)


async def _redeem(sm, code, who, now=NOW):
    async with sm() as s:
        return await redeem_invite(s, code, who, now=now, tz=VIETNAM)


async def test_a_club_is_found_by_its_name_whatever_the_case_spacing_or_unicode_form(db_sessionmaker):
    club = await _club(db_sessionmaker, name="  CLB   Hải Phòng ")
    assert club.name == "CLB Hải Phòng"
    async with db_sessionmaker() as s:
        decomposed = unicodedata.normalize("NFD", "clb hải phòng")  # as some keyboards type it
        assert (await find_club(s, decomposed)).id == club.id
        assert (await find_club(s, "CLB HẢI PHÒNG")).id == club.id
        assert await find_club(s, "CLB Hà Nội") is None
        assert [c.name for c in await list_clubs(s)] == ["CLB Hải Phòng"]


async def test_a_second_club_with_the_same_name_is_refused(db_sessionmaker):
    await _club(db_sessionmaker)
    with pytest.raises(DirectoryError) as err:
        await _club(db_sessionmaker, name="clb hải phòng")
    assert "already exists" in str(err.value.text)


@pytest.mark.parametrize("lat, lon, word", [(91, 106, "latitude"), (-90.5, 0, "latitude"),
                                            (21, 181, "longitude"), (float("nan"), 106, "latitude")])
async def test_coordinates_outside_the_globe_are_refused(db_sessionmaker, lat, lon, word):
    with pytest.raises(DirectoryError, match=word):
        await _club(db_sessionmaker, lat=lat, lon=lon)


async def test_the_nearest_clubs_come_first_with_their_distance(db_sessionmaker):
    await _club(db_sessionmaker, "CLB Hà Nội", 21.03, 105.85)
    await _club(db_sessionmaker, "CLB Hải Phòng", 20.86, 106.68)
    await _club(db_sessionmaker, "CLB Sài Gòn", 10.78, 106.70)
    async with db_sessionmaker() as s:
        near = await nearest_clubs(s, 20.85, 106.69, limit=2)
    assert [c.name for c, _ in near] == ["CLB Hải Phòng", "CLB Hà Nội"]
    assert near[0][1] < 2 and 80 < near[1][1] < 100  # km


async def test_a_hospital_landline_is_stored_in_e164(db_sessionmaker):
    hospital = await _hospital(db_sessionmaker)
    assert hospital.phone == "+842253700436"
    async with db_sessionmaker() as s:
        assert (await find_hospital(s, "bệnh viện việt tiệp")).id == hospital.id
        with pytest.raises(DirectoryError, match="not a valid phone number"):
            await create_hospital(s, "BV Kiến An", 20.8, 106.6, phone="12345", actor="cli")


async def test_an_invite_needs_the_right_target_and_sane_limits(db_sessionmaker):
    club = await _club(db_sessionmaker)
    hospital = await _hospital(db_sessionmaker)
    for kind, kw, message in [
        ("lead", {"hospital_id": hospital.id}, "for a club"),
        ("donor", {}, "for a club"),
        ("staff", {"club_id": club.id}, "for a hospital"),
        ("staff", {"hospital_id": 999}, "no hospital with id 999"),
        ("admin", {"club_id": club.id}, "Unknown invite kind"),
        ("lead", {"club_id": club.id, "uses": 0}, "1 to 1000 times"),
        ("lead", {"club_id": club.id, "expires_hours": 8761}, "1 to 8760 hours"),
    ]:
        with pytest.raises(DirectoryError, match=message):
            await _invite(db_sessionmaker, kind, **kw)


async def test_a_lead_invite_makes_its_redeemer_lead_once_and_only_once(db_sessionmaker):
    club = await _club(db_sessionmaker)
    invite = await _invite(db_sessionmaker, "lead", club_id=club.id)
    assert len(invite.code) == 16 and invite.code.replace("-", "").replace("_", "").isalnum()
    assert deep_link("@rr_bot", invite.code) == f"https://t.me/rr_bot?start={invite.code}"

    got = await _redeem(db_sessionmaker, invite.code, LEAD)
    assert (got.kind, got.club.name, got.hospital, got.already) == ("lead", "CLB Hải Phòng", None, False)
    again = await _redeem(db_sessionmaker, invite.code, LEAD, now=NOW + timedelta(days=30))
    assert again.already and again.club.id == club.id  # a repeated /start, even after expiry
    with pytest.raises(DirectoryError, match="already been used"):
        await _redeem(db_sessionmaker, invite.code, OTHER)

    async with db_sessionmaker() as s:
        assert (await s.exec(select(Invite))).one().uses == 1
        assert (await roles_of(s, LEAD)).lead_club_ids == [club.id]
        assert (await roles_of(s, OTHER)).lead_club_ids == []


async def test_a_multi_use_staff_invite_serves_each_nurse_until_it_runs_out(db_sessionmaker):
    hospital = await _hospital(db_sessionmaker)
    invite = await _invite(db_sessionmaker, "staff", hospital_id=hospital.id, uses=2)
    assert (await _redeem(db_sessionmaker, invite.code, NURSE)).hospital.id == hospital.id
    assert (await _redeem(db_sessionmaker, invite.code, NURSE)).already
    assert not (await _redeem(db_sessionmaker, invite.code, OTHER)).already
    with pytest.raises(DirectoryError, match="already been used"):
        await _redeem(db_sessionmaker, invite.code, LEAD)
    async with db_sessionmaker() as s:
        staff = (await s.exec(select(HospitalStaff.telegram_id).order_by(HospitalStaff.telegram_id))).all()
    assert staff == [NURSE, OTHER]


async def test_an_expired_invite_says_when_and_whom_to_ask(db_sessionmaker):
    club = await _club(db_sessionmaker)
    invite = await _invite(db_sessionmaker, "lead", club_id=club.id, expires_hours=2)
    with pytest.raises(DirectoryError) as err:
        await _redeem(db_sessionmaker, invite.code, LEAD, now=NOW + timedelta(hours=2))
    # 10:00 UTC is 17:00 in Vietnam
    assert str(err.value.text) == ("This invite expired on 01/03/2026 17:00. "
                                   "Ask the person who sent it for a new one.")


async def test_an_unknown_code_is_refused(db_sessionmaker):
    for code in ("nope", "", "x" * 65, "bad code!"):
        with pytest.raises(DirectoryError, match="not valid"):
            await _redeem(db_sessionmaker, code, LEAD)


async def test_two_people_racing_for_the_last_use_cannot_both_win(db_sessionmaker):
    club = await _club(db_sessionmaker)
    invite = await _invite(db_sessionmaker, "lead", club_id=club.id)
    results = await asyncio.gather(_redeem(db_sessionmaker, invite.code, LEAD),
                                   _redeem(db_sessionmaker, invite.code, OTHER), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, DirectoryError)]
    assert len(winners) == 1 and len(losers) == 1, results
    async with db_sessionmaker() as s:
        assert (await s.exec(select(Invite))).one().uses == 1
        assert len((await s.exec(select(ClubMembership))).all()) == 1


async def test_a_duplicate_start_racing_itself_grants_once_and_uses_once(db_sessionmaker):
    club = await _club(db_sessionmaker)
    invite = await _invite(db_sessionmaker, "lead", club_id=club.id, uses=5)
    results = await asyncio.gather(_redeem(db_sessionmaker, invite.code, LEAD),
                                   _redeem(db_sessionmaker, invite.code, LEAD))
    assert sorted(r.already for r in results) == [False, True]
    async with db_sessionmaker() as s:
        assert (await s.exec(select(Invite))).one().uses == 1


async def test_a_donor_invite_grants_no_role_and_is_idempotent_per_person(db_sessionmaker):
    club = await _club(db_sessionmaker)
    invite = await _invite(db_sessionmaker, "donor", club_id=club.id, uses=10)
    first = await _redeem(db_sessionmaker, invite.code, DONOR)
    assert (first.kind, first.club.id, first.already) == ("donor", club.id, False)
    assert (await _redeem(db_sessionmaker, invite.code, DONOR)).already
    async with db_sessionmaker() as s:
        assert (await s.exec(select(Invite))).one().uses == 1
        assert (await s.exec(select(ClubMembership))).all() == []
        assert await roles_of(s, DONOR) == NO_ROLES


async def test_roles_of_a_person_who_donates_leads_and_works_at_a_hospital(db_sessionmaker):
    club = await _club(db_sessionmaker)
    hospital = await _hospital(db_sessionmaker)
    async with db_sessionmaker() as s:
        # Registered herself: the consent question answered in the bot.
        donor = Donor(full_name="Trần Thị B", phone="+84912345679", telegram_id=LEAD,
                      consent_profile_at=datetime(2026, 5, 1, tzinfo=timezone.utc))
        s.add(donor)
        await s.commit()
    await _redeem(db_sessionmaker, (await _invite(db_sessionmaker, "lead", club_id=club.id)).code, LEAD)
    await _redeem(db_sessionmaker, (await _invite(db_sessionmaker, "staff", hospital_id=hospital.id)).code, LEAD)
    async with db_sessionmaker() as s:
        roles = await roles_of(s, LEAD)
    assert (roles.donor_id, roles.lead_club_ids, roles.staff_hospital_ids) == (donor.id, [club.id], [hospital.id])


async def test_a_link_the_donor_never_confirmed_gives_the_account_no_donor_role(db_sessionmaker):
    async with db_sessionmaker() as s:
        s.add(Donor(full_name="Nhập từ file", phone="+84912345670", telegram_id=LEAD))  # an old file's link
        await s.commit()
        assert (await roles_of(s, LEAD)).donor_id is None


async def test_revoking_removes_the_role_and_a_second_revoke_says_so(db_sessionmaker):
    club = await _club(db_sessionmaker)
    hospital = await _hospital(db_sessionmaker)
    await _redeem(db_sessionmaker, (await _invite(db_sessionmaker, "lead", club_id=club.id)).code, LEAD)
    await _redeem(db_sessionmaker, (await _invite(db_sessionmaker, "staff", hospital_id=hospital.id)).code, NURSE)
    async with db_sessionmaker() as s:
        await revoke_lead(s, club.id, LEAD, actor=OTHER)
        await revoke_staff(s, hospital.id, NURSE, actor="cli")
        assert await roles_of(s, LEAD) == NO_ROLES
        assert await roles_of(s, NURSE) == NO_ROLES
        with pytest.raises(DirectoryError, match="does not lead"):
            await revoke_lead(s, club.id, LEAD, actor=OTHER)
        with pytest.raises(DirectoryError, match="not staff"):
            await revoke_staff(s, hospital.id, NURSE, actor=OTHER)


async def test_every_access_change_is_audited_by_id_without_personal_data(db_sessionmaker):
    club = await _club(db_sessionmaker)
    hospital = await _hospital(db_sessionmaker)
    invite = await _invite(db_sessionmaker, "lead", club_id=club.id)
    await _redeem(db_sessionmaker, invite.code, LEAD)
    async with db_sessionmaker() as s:
        await revoke_lead(s, club.id, LEAD, actor=OTHER)
        rows = (await s.exec(select(AuditLog).order_by(AuditLog.id))).all()
    assert [(r.action, r.actor, r.actor_telegram_id, r.subject) for r in rows] == [
        ("club.create", "cli", None, f"club:{club.id}"),
        ("hospital.create", "cli", None, f"hospital:{hospital.id}"),
        ("invite.create", "cli", None, f"invite:{invite.id}"),
        ("role.grant", "", LEAD, f"club:{club.id}"),
        ("invite.redeem", "", LEAD, f"invite:{invite.id}"),
        ("role.revoke", "", OTHER, f"club:{club.id}"),
    ]
    everything = " ".join(f"{r.subject} {r.detail}" for r in rows)
    for secret in (invite.code, "Hải Phòng", "Việt Tiệp", "+842253700436", "Lê Chân"):
        assert secret not in everything
