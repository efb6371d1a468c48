"""Donor registration, end to end through the Bot API simulator."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from models.directory import create_club, create_invite
from models.tables import AuditLog, ClubMembership, Donor
from tests.harness import START, start_bot, stop_bot


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def make_club(env, name="CLB Hiến máu dự bị Lê Chân", lat=20.8449, lon=106.6881):
    async with env.sessionmaker() as s:
        return await create_club(s, name, lat, lon, "Lê Chân, Hải Phòng", actor="cli")


async def register(user, *, phone="+84912345678", blood="O−", lang="English", birth="15/05/1990", weight="58",
                   location=(20.85, 106.69), last="never", consents=("Keep my profile", "Contact me", "Use my location")):
    await user.send("/start")
    await user.tap(lang)
    for label in consents:
        await user.tap(label)
    await user.tap("Continue")
    await user.share_contact(phone)
    await user.send("Nguyễn Thị Lan")
    await user.tap(blood)
    await user.tap("Female" if lang == "English" else "Nữ")
    await user.send(birth)
    await user.send(weight)
    if location:
        await user.share_location(*location)
    else:
        await user.send("Lê Chân, Hải Phòng")
    if last == "never":
        await user.tap("never" if lang == "English" else "chưa")
    else:
        await user.send(last)


async def answer_until_birth_date(user):
    """In English, keeping the profile only: the bot now asks for the date of birth."""
    await user.send("/start")
    await user.tap("English")
    await user.tap("Keep my profile")
    await user.tap("Continue")
    await user.share_contact("+84912345678")
    await user.send("Nguyễn Thị Lan")
    await user.tap("A+")
    await user.tap("Female")


async def test_a_new_donor_registers_in_english_and_is_stored_once(env):
    club = await make_club(env)
    lan = env.user(first_name="Lan")
    await register(lan)
    replies = await lan.tap(club.name)
    summary = replies[-1]["text"]
    assert "Nguyễn Thị Lan" in summary and "0912 345 678" in summary and "O−" in summary
    assert "15/05/1990" in summary and club.name in summary
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).all() == []  # nothing written before the confirmation
    replies = await lan.tap("Confirm")
    assert "Thank you, Nguyễn Thị Lan" in replies[-1]["text"]
    assert "Likely able to give today" in replies[-1]["text"]
    menu = [c["command"] for c in env.sim.commands(scope={"type": "chat", "chat_id": lan.id})]
    assert "me" in menu and "forget" in menu and "roster" not in menu  # a donor's own menu
    async with env.sessionmaker() as s:
        donor = (await s.exec(select(Donor))).one()
        assert (donor.abo, donor.rh, donor.sex) == ("O", "-", "F")
        assert donor.telegram_id == lan.id and donor.phone == "+84912345678"
        assert donor.birth_date == date(1990, 5, 15) and donor.weight_kg == 58
        assert (donor.lat, donor.lon, donor.location_approx) == (20.85, 106.69, False)
        assert donor.geo_cell is not None
        assert donor.consent_profile_at and donor.consent_contact_at and donor.consent_location_at
        assert donor.consent_policy_version == env.settings.bot.policy_version
        assert donor.locale == "en"
        member = (await s.exec(select(ClubMembership))).one()
        assert (member.club_id, member.donor_id, member.role) == (club.id, donor.id, "member")
        assert (await s.exec(select(AuditLog).where(AuditLog.action == "donor.register"))).one()


async def test_registration_speaks_vietnamese_by_default(env):
    club = await make_club(env)
    hoa = env.user(first_name="Hoa")
    replies = await hoa.send("/start")
    assert "Chọn ngôn ngữ" in replies[-1]["text"]
    replies = await hoa.tap("Tiếng Việt")
    consent = hoa.last_text()
    assert "Lưu hồ sơ" in consent or "hồ sơ" in consent
    await hoa.tap("Lưu hồ sơ")
    await hoa.tap("Tiếp tục")
    replies = await hoa.share_contact("0912 345 679")
    assert "họ và tên" in hoa.last_text().lower()
    await hoa.send("Trần Thị Hoa")
    await hoa.tap("B+")
    await hoa.tap("Nữ")
    await hoa.send("01/02/1995")
    await hoa.send("50")
    # No location consent: only a typed area is asked for, and the club stands in.
    assert "vị trí" not in (hoa.last().get("reply_markup") or {}).get("keyboard", [[{}]])[0][0].get("text", "").lower()
    await hoa.send("Ngô Quyền, Hải Phòng")
    await hoa.tap("chưa")
    await hoa.tap(club.name)
    replies = await hoa.tap("Xác nhận")
    assert "Cảm ơn" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        donor = (await s.exec(select(Donor))).one()
        assert donor.location_approx and (donor.lat, donor.lon) == (club.lat, club.lon)
        assert donor.consent_location_at is None and donor.consent_contact_at is None
        assert donor.locale == "vi"


async def test_someone_elses_contact_card_is_refused(env):
    await make_club(env)
    lan = env.user()
    await lan.send("/start")
    await lan.tap("English")
    await lan.tap("Keep my profile")
    await lan.tap("Continue")
    replies = await lan.share_contact("+84912345678", contact_user_id=lan.id + 1)
    assert "someone else" in replies[-1]["text"]
    replies = await lan.send("0912345678")
    assert "button" in replies[-1]["text"]


async def test_consent_to_keep_the_profile_is_required(env):
    lan = env.user()
    await lan.send("/start")
    await lan.tap("English")
    await lan.tap("Continue")
    assert any("Keep my profile" in a for a in lan.alerts())


@pytest.mark.parametrize(
    "step_input, expected",
    [
        ({"birth": "31/12/2099"}, "future"),
        ({"birth": "hôm qua"}, "date"),
        ({"weight": "five"}, "weight"),
    ],
)
async def test_bad_answers_are_explained_and_the_step_is_asked_again(env, step_input, expected):
    await make_club(env)
    lan = env.user()
    await answer_until_birth_date(lan)
    replies = await lan.send(step_input.get("birth", "15/05/1990"))
    if "weight" in step_input:
        replies = await lan.send(step_input["weight"])
    assert expected in replies[-1]["text"].lower()
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).all() == []


async def test_an_under_18_donor_is_kept_but_told_when_they_may_be_called(env):
    club = await make_club(env)
    lan = env.user()
    await register(lan, birth="01/01/2010")
    await lan.tap(club.name)
    replies = await lan.tap("Confirm")
    assert "under 18" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).one().birth_date == date(2010, 1, 1)


async def test_a_future_last_donation_is_refused(env):
    await make_club(env)
    lan = env.user()
    await register(lan, last="01/01/2027")
    assert "future" in lan.last_text().lower()


async def test_markup_typed_as_a_birth_date_is_quoted_back_as_typed(env):
    # The bot sends HTML and the parser quotes the answer: "<b>" must come back as text,
    # not make Telegram refuse the message and leave the donor with no answer.
    await make_club(env)
    lan = env.user()
    await answer_until_birth_date(lan)
    replies = await lan.send("<b>")
    assert replies, "the bot must answer"
    assert "“<b>” is not a date" in replies[-1]["text"]
    assert not replies[-1].get("entities")  # shown as typed, not as bold


async def test_an_imported_donor_is_linked_not_duplicated(env):
    club = await make_club(env)
    async with env.sessionmaker() as s:
        donor = Donor(full_name="Phạm Văn Nam", phone="+84987654321", abo="AB", rh="-", sex="M",
                      birth_date=date(1985, 3, 3), weight_kg=70, lat=club.lat, lon=club.lon, location_approx=True)
        s.add(donor)
        await s.flush()
        s.add(ClubMembership(club_id=club.id, donor_id=donor.id))
        await s.commit()
    nam = env.user(first_name="Nam")
    await nam.send("/start")
    await nam.tap("English")
    await nam.tap("Keep my profile")
    await nam.tap("Contact me")
    await nam.tap("Continue")
    replies = await nam.share_contact("0987 654 321")
    assert "found you" in replies[0]["text"]
    assert "Phạm Văn Nam" in replies[-1]["text"] and "AB−" in replies[-1]["text"]
    await nam.tap("Confirm")
    async with env.sessionmaker() as s:
        donors = (await s.exec(select(Donor))).all()
        assert len(donors) == 1 and donors[0].telegram_id == nam.id
        assert (await s.exec(select(AuditLog).where(AuditLog.action == "donor.link"))).one()


async def test_a_donor_invite_puts_the_donor_in_that_club(env):
    await make_club(env, "CLB Lào Cai", 22.48, 103.97)
    club = await make_club(env)
    async with env.sessionmaker() as s:
        invite = await create_invite(s, "donor", club_id=club.id, now=START, actor="cli")
    lan = env.user()
    await lan.send(f"/start {invite.code}")
    await lan.tap("English")
    await lan.tap("Keep my profile")
    await lan.tap("Continue")
    await lan.share_contact("+84912345678")
    await lan.send("Nguyễn Thị Lan")
    await lan.tap("O+")
    await lan.tap("Female")
    await lan.send("15/05/1990")
    await lan.send("58")
    await lan.send("Lê Chân")
    replies = await lan.tap("never")
    assert club.name in replies[-1]["text"]  # straight to the summary: no club question
    await lan.tap("Confirm")
    async with env.sessionmaker() as s:
        assert (await s.exec(select(ClubMembership))).one().club_id == club.id


async def test_an_expired_invite_says_so(env):
    club = await make_club(env)
    async with env.sessionmaker() as s:
        invite = await create_invite(s, "lead", club_id=club.id, expires_hours=1, now=START, actor="cli")
    env.clock.advance(hours=2)
    lead = env.user()
    replies = await lead.send(f"/start {invite.code}")
    assert "11:00 22/11/2026" in replies[-1]["text"].replace("22/11/2026 11:00", "11:00 22/11/2026")  # when it expired
    async with env.sessionmaker() as s:
        assert (await s.exec(select(ClubMembership))).all() == []


async def test_cancel_leaves_nothing_behind(env):
    await make_club(env)
    lan = env.user()
    await lan.send("/start")
    await lan.tap("English")
    await lan.tap("Keep my profile")
    await lan.tap("Continue")
    await lan.share_contact("+84912345678")
    replies = await lan.send("/cancel")
    assert "Nothing was saved" in replies[-1]["text"]
    replies = await lan.send("Nguyễn Thị Lan")
    assert "didn't understand" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).all() == []


async def test_editing_one_field_from_the_summary_asks_only_that_again(env):
    club = await make_club(env)
    lan = env.user()
    await register(lan)
    await lan.tap(club.name)
    await lan.tap("Weight")
    replies = await lan.send("61")
    assert "Please check your details" in replies[-1]["text"] and "61 kg" in replies[-1]["text"]
