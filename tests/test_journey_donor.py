"""A registered donor looks after their own record: /me, /pause, /resume, /donated, /mydata, /forget."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlmodel import select

from models.tables import AuditLog, Club, ClubMembership, Donation, Donor, TelegramUser
from tests.harness import start_bot, stop_bot


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def seed_donor(env, user, *, last=date(2026, 6, 1), **fields) -> int:
    """A donor as registration leaves one, linked to ``user`` and speaking English."""
    async with env.sessionmaker() as s:
        club = Club(name="CLB Lê Chân", lat=20.84, lon=106.69)
        s.add(club)
        s.add(TelegramUser(telegram_id=user.id, first_name=user.first_name, locale="en"))
        donor = Donor(full_name="Nguyễn Thị Lan", phone="+84912345678", telegram_id=user.id, abo="O", rh="-",
                      sex="F", birth_date=date(1990, 5, 15), weight_kg=55, last_donation_date=last,
                      last_donation_component="whole_blood" if last else None, donation_count=3 if last else 0,
                      locale="en", **{"consent_profile_at": env.clock(), **fields})
        s.add(donor)
        await s.flush()
        s.add(ClubMembership(club_id=club.id, donor_id=donor.id))
        s.add(Donation(donor_id=donor.id, club_id=club.id, donated_on=date(2026, 6, 1), volume_ml=350))
        await s.commit()
        return donor.id


async def test_me_shows_the_profile_and_the_next_possible_date(env):
    lan = env.user()
    await seed_donor(env, lan)
    replies = await lan.send("/me")
    text = replies[-1]["text"]
    assert "Nguyễn Thị Lan" in text and "O−" in text and "CLB Lê Chân" in text
    assert "Donations recorded: 3" in text
    # 01/06/2026 + 84 days = 24/08/2026, already past on 22/11/2026.
    assert "Next possible donation: 24/08/2026" in text and "Likely able to give today" in text


async def test_a_donor_who_gave_83_days_ago_is_told_to_wait_one_more_day(env):
    lan = env.user()
    await seed_donor(env, lan, last=date(2026, 8, 31))  # 83 days before 22/11/2026
    text = (await lan.send("/me"))[-1]["text"]
    assert "may give again from 23/11/2026" in text


async def test_pause_and_resume(env):
    lan = env.user()
    donor_id = await seed_donor(env, lan)
    await lan.send("/pause")
    await lan.tap("14 days")
    assert "06/12/2026" in lan.last_text()  # the question is edited into the answer
    async with env.sessionmaker() as s:
        donor = await s.get(Donor, donor_id)
        assert (donor.status, donor.status_until) == ("paused", date(2026, 12, 6))
    replies = await lan.send("/resume")
    assert "Welcome back" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        assert (await s.get(Donor, donor_id)).status == "active"


async def test_a_pause_counts_days_in_the_bots_own_time_zone(db_sessionmaker, db_url):
    # 03:00 UTC on 22/11 is still 21/11 in Los Angeles: a bot set to that zone pauses until 05/12,
    # where a hard-coded Vietnamese "today" would say 06/12.
    env = await start_bot(db_sessionmaker, db_url, timezone="America/Los_Angeles")
    try:
        lan = env.user()
        donor_id = await seed_donor(env, lan)
        await lan.send("/pause")
        await lan.tap("14 days")
        assert "05/12/2026" in lan.last_text()
        async with env.sessionmaker() as s:
            assert (await s.get(Donor, donor_id)).status_until == date(2026, 12, 5)
    finally:
        await stop_bot(env)


async def test_pause_refuses_a_silly_number_of_days(env):
    lan = env.user()
    await seed_donor(env, lan)
    await lan.send("/pause")
    replies = await lan.send("9999")
    assert "1 to 365" in replies[-1]["text"]


async def test_donated_elsewhere_updates_the_record_once(env):
    lan = env.user()
    donor_id = await seed_donor(env, lan)
    await lan.send("/donated")
    await lan.tap("Whole blood")
    replies = await lan.send("20/11/2026")
    assert "4 donations" in replies[-1]["text"] and "12/02/2027" in replies[-1]["text"]
    await lan.send("/donated")
    await lan.tap("Whole blood")
    replies = await lan.send("20/11/2026")
    assert "already recorded" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        donor = await s.get(Donor, donor_id)
        assert donor.donation_count == 4 and donor.last_donation_date == date(2026, 11, 20)


async def test_donated_in_the_future_is_refused(env):
    lan = env.user()
    donor_id = await seed_donor(env, lan)
    await lan.send("/donated")
    await lan.tap("Whole blood")
    replies = await lan.send("01/12/2026")
    assert "future" in replies[-1]["text"].lower()
    async with env.sessionmaker() as s:
        assert (await s.get(Donor, donor_id)).donation_count == 3


async def test_donated_asks_the_kind_and_its_interval_applies(env):
    """DOMAIN.md §2: after platelets or plasma two weeks' rest, after whole blood or red cells twelve; the
    most recent donation's kind sets the wait (Art. 6.4)."""
    lan = env.user()
    donor_id = await seed_donor(env, lan)  # whole blood on 01/06/2026; today is 22/11/2026
    await lan.send("/donated")
    await lan.tap("Platelets")
    replies = await lan.send("20/11/2026")
    assert "4 donations" in replies[-1]["text"] and "04/12/2026" in replies[-1]["text"]  # 14 days, not 84
    async with env.sessionmaker() as s:
        donor = await s.get(Donor, donor_id)
        assert (donor.last_donation_date, donor.last_donation_component) == (date(2026, 11, 20), "platelets")
        assert (await s.exec(select(Donation.component).where(Donation.donated_on == date(2026, 11, 20)))).one() \
            == "platelets"
    # Two days after platelets is too soon for anything: refused, nothing written, and the date may be retyped.
    await lan.send("/donated")
    await lan.tap("Whole blood")
    replies = await lan.send("22/11/2026")
    assert "Not recorded" in replies[-1]["text"] and "04/12/2026" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        donor = await s.get(Donor, donor_id)
        assert (donor.donation_count, donor.last_donation_component) == (4, "platelets")
    # A date in the future, in the same flow: refused too.
    replies = await lan.send("30/11/2026")
    assert "future" in replies[-1]["text"].lower()
    replies = await lan.send("/cancel")
    async with env.sessionmaker() as s:
        assert (await s.get(Donor, donor_id)).donation_count == 4


async def test_mydata_sends_everything_as_a_file(env):
    lan = env.user()
    await seed_donor(env, lan)
    await lan.send("/mydata")
    docs = env.sim.documents(lan.id)
    assert docs, "no file was sent"
    data = json.loads(docs[-1].data)
    assert data["profile"]["phone"] == "+84912345678" and data["clubs"] == ["CLB Lê Chân"]
    assert data["donation"][0]["volume_ml"] == 350


async def test_forget_deletes_personal_data_but_keeps_anonymous_counts(env):
    lan = env.user(language_code="en")  # the language choice goes with the data; the app's stays
    donor_id = await seed_donor(env, lan)
    await lan.send("/forget")
    await lan.tap("Yes, delete my data")
    async with env.sessionmaker() as s:
        assert await s.get(Donor, donor_id) is None
        assert (await s.exec(select(ClubMembership))).all() == []
        donation = (await s.exec(select(Donation))).one()
        assert donation.donor_id is None  # the count stays, the person is gone
        audit = (await s.exec(select(AuditLog).where(AuditLog.action == "donor.forget"))).one()
        assert "+84" not in audit.detail and "Lan" not in audit.detail
    replies = await lan.send("/me")
    assert "not registered" in replies[-1]["text"]


async def test_forget_can_be_declined(env):
    lan = env.user()
    donor_id = await seed_donor(env, lan)
    await lan.send("/forget")
    await lan.tap("Keep my data")
    async with env.sessionmaker() as s:
        assert await s.get(Donor, donor_id) is not None


async def test_emergency_calls_can_be_switched_off_and_it_is_audited(env):
    lan = env.user()
    donor_id = await seed_donor(env, lan, consent_contact_at=env.clock())
    await lan.send("/me")
    await lan.tap("Stop emergency calls")
    async with env.sessionmaker() as s:
        assert (await s.get(Donor, donor_id)).consent_contact_at is None
        assert (await s.exec(select(AuditLog).where(AuditLog.action == "consent.contact.withdraw"))).one()
    assert "Emergency calls: off" in lan.last_text()


async def test_donor_commands_from_someone_not_registered(env):
    stranger = env.user()
    replies = await stranger.send("/pause")
    assert "not registered" in replies[-1]["text"] or "chưa" in replies[-1]["text"]


async def test_a_lead_command_from_a_donor_is_refused(env):
    lan = env.user()
    await seed_donor(env, lan)
    replies = await lan.send("/roster")
    assert "for club leads" in replies[-1]["text"]


async def test_the_same_update_delivered_twice_is_handled_once(env):
    lan = env.user()
    await seed_donor(env, lan)
    await lan.send("/donated")
    await lan.tap("Whole blood")
    update = env.sim.push_message(lan.id, "20/11/2026", first_name=lan.first_name)
    await env.handled(update)
    before = len(lan.bot_messages())
    again = env.sim.push_raw(update)
    await env.handled(again)
    assert len(lan.bot_messages()) == before
