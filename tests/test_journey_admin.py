"""Admins, end to end through the Bot API simulator: clubs, hospitals and invites."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot.callbacks import InviteCb
from models.directory import create_club
from models.tables import AuditLog, Club, ClubMembership, Hospital, Invite, TelegramUser
from tests.harness import ADMIN_ID, start_bot, stop_bot


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def english_user(env, user_id=None, first_name="Quân"):
    user = env.user(user_id, first_name=first_name, language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=user.id, first_name=first_name, locale="en"))
        await s.commit()
    return user


@pytest.fixture
async def admin(env):
    return await english_user(env, ADMIN_ID)


async def audit(env, action: str) -> list[AuditLog]:
    async with env.sessionmaker() as s:
        return list((await s.exec(select(AuditLog).where(AuditLog.action == action))).all())


async def test_an_admin_adds_a_club_step_by_step(env, admin):
    replies = await admin.send("/addclub")
    assert "/addclub Name; 20.8449; 106.6881; Area" in replies[-1]["text"]
    await admin.send("CLB Hiến máu Ngô Quyền")
    replies = await admin.send("somewhere")
    assert "lat, lon" in replies[-1]["text"]
    replies = await admin.send("95, 106")
    assert "latitude" in replies[-1]["text"]
    await admin.send("20.8610, 106.6980")
    replies = await admin.send("Ngô Quyền, Hải Phòng")
    assert "Club CLB Hiến máu Ngô Quyền added" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        club = (await s.exec(select(Club))).one()
        assert (club.name, club.lat, club.lon, club.area) == ("CLB Hiến máu Ngô Quyền", 20.861, 106.698,
                                                               "Ngô Quyền, Hải Phòng")
    assert [a.actor_telegram_id for a in await audit(env, "club.create")] == [ADMIN_ID]


async def test_an_admin_adds_a_club_in_one_line_and_a_duplicate_is_refused(env, admin):
    replies = await admin.send("/addclub CLB Lê Chân; 20,8449; 106,6881; Lê Chân")
    assert "added" in replies[-1]["text"]
    replies = await admin.send("/addclub clb lê chân; 20.1; 106.1")
    assert "already exists" in replies[-1]["text"]
    replies = await admin.send("/addclub Only a name")
    assert "Usage: /addclub" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        assert len((await s.exec(select(Club))).all()) == 1


async def test_a_name_or_address_too_long_is_refused_and_nothing_is_added(env, admin):
    long_name, long_area = "Bệnh viện " + "Đa khoa " * 40, "Phố " * 80
    replies = await admin.send(f"/addclub {long_name}; 20.84; 106.68; Lê Chân")
    assert "too long (at most 120 characters)" in replies[-1]["text"]
    replies = await admin.send(f"/addhospital BV Việt Tiệp; 20.86; 106.68; {long_area}")
    assert "too long (at most 200 characters)" in replies[-1]["text"]
    await admin.send("/addclub")
    replies = await admin.send(long_name)
    assert "too long" in replies[-1]["text"] and "another name" in replies[-1]["text"]
    await admin.send("CLB Ngô Quyền")
    await admin.send("20.86, 106.69")
    replies = await admin.send(long_area)
    assert "too long" in replies[-1]["text"]
    replies = await admin.send("Ngô Quyền")
    assert "added" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        assert [c.name for c in (await s.exec(select(Club))).all()] == ["CLB Ngô Quyền"]
        assert not (await s.exec(select(Hospital))).all()


async def test_an_admin_adds_a_hospital_with_a_pin_and_a_phone(env, admin):
    await admin.send("/addhospital")
    await admin.send("Bệnh viện Việt Tiệp")
    await admin.share_location(20.8530, 106.6830)
    await admin.tap("Skip")  # no address
    replies = await admin.send("12")
    assert "not a valid phone number" in replies[-2]["text"]
    replies = await admin.send("0225 3846 550")
    assert "Bệnh viện Việt Tiệp" in replies[-1]["text"] and "0225 3846 550" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        hospital = (await s.exec(select(Hospital))).one()
        assert (hospital.lat, hospital.lon, hospital.address, hospital.phone) == (20.853, 106.683, "",
                                                                                  "+842253846550")


async def test_a_lead_invite_from_an_admin_makes_a_lead(env, admin):
    async with env.sessionmaker() as s:
        club = await create_club(s, "CLB Lê Chân", 20.8449, 106.6881, actor="cli")
    await admin.send("/invite")
    await admin.tap("Club lead")
    await admin.tap("CLB Lê Chân")
    await admin.tap("1")
    text = admin.last_text()
    assert "1 use" in text and "CLB Lê Chân" in text
    code = re.search(r"https://t\.me/\w+\?start=([\w-]+)", text).group(1)
    assert f"Code: {code}" in text
    async with env.sessionmaker() as s:
        invite = (await s.exec(select(Invite))).one()
        assert (invite.code, invite.kind, invite.club_id, invite.max_uses) == (code, "lead", club.id, 1)
    assert len(await audit(env, "invite.create")) == 1

    minh = await english_user(env, first_name="Minh")
    replies = await minh.send(f"/start {code}")
    assert "You are now a lead of" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        lead = (await s.exec(select(ClubMembership).where(ClubMembership.telegram_id == minh.id))).one()
        assert (lead.club_id, lead.role) == (club.id, "lead")
    replies = await minh.send("/roster")
    assert "CLB Lê Chân" in replies[-1]["text"] and "Total" in replies[-1]["text"]


async def test_a_staff_invite_lists_hospitals(env, admin):
    async with env.sessionmaker() as s:
        hospital = Hospital(name="Bệnh viện Kiến An", lat=20.81, lon=106.63)
        s.add(hospital)
        await s.commit()
    await admin.send("/invite")
    await admin.tap("Hospital staff")
    await admin.tap("Bệnh viện Kiến An")
    await admin.tap("5")
    assert "5 uses" in admin.last_text()
    async with env.sessionmaker() as s:
        invite = (await s.exec(select(Invite))).one()
        assert (invite.kind, invite.hospital_id, invite.club_id) == ("staff", hospital.id, None)


async def test_a_non_admin_is_refused_by_command_and_by_forged_button(env, admin):
    other = await english_user(env, first_name="Tú")
    for command in ("/addclub CLB X; 20; 106", "/addhospital", "/invite"):
        replies = await other.send(command)
        assert "for administrators" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        club = await create_club(s, "CLB Lê Chân", 20.8449, 106.6881, actor="cli")
    forged = InviteCb(kind="lead", target=club.id, uses=1).pack()
    await other.press(other.last()["message_id"], forged)
    assert "for administrators" in other.alerts()[-1]
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Invite))).all() == []
