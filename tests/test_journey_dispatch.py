"""A hospital asks, donors answer: the dispatcher through the real bot and the simulator."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from models.dispatch_tables import BloodRequest, RequestContact
from models.geo import geo_cell
from models.tables import AuditLog, Club, ClubMembership, Donor, Hospital, HospitalStaff, TelegramUser
from tests.harness import start_bot, stop_bot

HOSPITAL = (20.8561, 106.6822)  # Việt Tiệp, Hải Phòng


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def seed(env, donors: list[tuple[str, str, float]], *, locale="en"):
    """A hospital with one staff member, a club, and donors (type, rh, km north of the hospital)
    who have all started the bot. Returns (staff user, donor users in the given order)."""
    staff = env.user(first_name="Y tá Hạnh")
    users = [env.user(first_name=f"Donor {i}") for i in range(len(donors))]
    async with env.sessionmaker() as s:
        hospital = Hospital(name="Bệnh viện Việt Tiệp", lat=HOSPITAL[0], lon=HOSPITAL[1], address="1 Nhà Thương")
        club = Club(name="CLB Lê Chân", lat=HOSPITAL[0], lon=HOSPITAL[1])
        s.add_all([hospital, club])
        await s.flush()
        s.add(HospitalStaff(hospital_id=hospital.id, telegram_id=staff.id))
        s.add(TelegramUser(telegram_id=staff.id, first_name=staff.first_name, locale=locale))
        for user, (abo, rh, km) in zip(users, donors):
            lat = HOSPITAL[0] + km / 111.0
            donor = Donor(full_name=f"Người hiến {user.id % 1000}", phone=f"+8491{user.id % 10_000_000:07d}",
                          telegram_id=user.id, abo=abo, rh=rh, sex="M", birth_date=date(1990, 1, 1),
                          weight_kg=65, lat=lat, lon=HOSPITAL[1], geo_cell=geo_cell(lat, HOSPITAL[1]),
                          consent_contact_at=env.clock(), consent_profile_at=env.clock(), locale=locale)
            s.add(donor)
            s.add(TelegramUser(telegram_id=user.id, first_name=user.first_name, locale=locale))
            await s.flush()
            s.add(ClubMembership(club_id=club.id, donor_id=donor.id))
        await s.commit()
    for user in [staff, *users]:
        await user.send("/help")  # they have written to the bot, so it may write to them (DOMAIN.md §8)
    return staff, users


def calls(user):
    return [m for m in user.bot_messages() if "Urgent blood request" in m.get("text", "")]


async def post(env, staff, form="O+ 1"):
    await staff.send(f"/urgent {form}")
    replies = await staff.tap("Send to donors")
    await env.drain()
    return replies


async def test_a_request_goes_out_and_is_covered_by_one_tap(env):
    staff, donors = await seed(env, [("O", "+", 2), ("O", "+", 5), ("O", "+", 9)] + [("O", "+", 12)] * 5)
    await staff.send("/urgent O+ 1")
    assert "Send?" in staff.last_text()
    confirmation = staff.last()
    await staff.tap("Send to donors")
    await env.drain()
    board = staff.last()  # the confirmation became the live board
    assert board["message_id"] == confirmation["message_id"]
    assert "Request #1" in board["text"] and "Asking donors: wave 1" in board["text"]
    asked = [u for u in donors if calls(u)]
    assert donors[0] in asked and len(asked) >= 2
    call = calls(donors[0])[0]
    assert "Bệnh viện Việt Tiệp" in call["text"] and "O+" in call["text"] and "2 km" in call["text"]

    await donors[0].tap("Available")
    await env.drain()
    edited = [m for m in donors[0].bot_messages() if m["message_id"] == call["message_id"]][0]
    assert "expects you" in edited["text"]
    assert [b["text"] for row in edited["reply_markup"]["inline_keyboard"] for b in row] == [
        "🚗 On my way", "🏥 I've arrived", "↩️ I can't come after all"]
    board = [m for m in staff.bot_messages() if m["message_id"] == board["message_id"]][0]
    assert "Said available" in board["text"] and "091" in board["text"]  # her name and phone, once she accepted
    assert len(staff.bot_messages()) == 2  # the board was edited, not re-sent
    venue = env.sim.sent(chat_id=donors[0].id, method="sendVenue")
    assert len(venue) == 1 and (venue[0].params["latitude"], venue[0].params["longitude"]) == HOSPITAL
    assert venue[0].params["title"] == "Bệnh viện Việt Tiệp"


async def test_when_covered_the_others_calls_are_edited_to_stand_down(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(10)])
    await post(env, staff, "O+ 1")
    async with env.sessionmaker() as s:
        req = (await s.exec(select(BloodRequest))).one()
        target = req.target_available
    asked = [u for u in donors if calls(u)]
    assert len(asked) >= target
    for u in asked[:target]:
        await u.tap("Available")
    await env.drain()
    async with env.sessionmaker() as s:
        assert (await s.exec(select(BloodRequest))).one().state == "covered"
    for u in asked[target:]:
        msgs = u.bot_messages()
        assert len(calls(u)) == 0  # the call itself now says "no longer needed"…
        assert any("No longer needed" in m["text"] for m in msgs)
        sent_to = [c for c in env.sim.sent(chat_id=u.id) if c.method == "sendMessage"]
        assert len([c for c in sent_to if "Urgent" in c.params.get("text", "")]) == 1  # …by an edit, not anew
    assert any("is covered" in m["text"] for m in staff.bot_messages())


async def test_a_double_press_counts_once(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(8)])
    await post(env, staff, "O+ 2")
    call = calls(donors[0])[0]
    _msg, button = donors[0].find_button("Available", call)
    await donors[0].press(call["message_id"], button["callback_data"])
    await donors[0].press(call["message_id"], button["callback_data"])
    await env.drain()
    async with env.sessionmaker() as s:
        contact = (await s.exec(select(RequestContact).where(RequestContact.state == "available"))).all()
        assert len(contact) == 1
    assert "already recorded" in donors[0].alerts()[-1]
    assert sum(m["text"].count("091") for m in staff.bot_messages()) == 1  # listed once on the board


async def test_a_forged_answer_is_refused_and_logged(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(8)])
    await post(env, staff, "O+ 1")
    victim, forger = donors[0], donors[-1]
    call = calls(victim)[0]
    _msg, button = victim.find_button("Available", call)
    # Another person sends the victim's exact callback data, then tampered tokens and requests.
    for data in (button["callback_data"], "ans:1:000000000000:y", "ans:999:abc:y", "ans:1:zz:maybe"):
        await forger.press(call["message_id"], data)
    assert all(a for a in forger.alerts())
    async with env.sessionmaker() as s:
        assert (await s.exec(select(RequestContact).where(RequestContact.state == "available"))).all() == []
        refused = (await s.exec(select(AuditLog).where(AuditLog.action == "dispatch_answer_refused"))).all()
        assert len(refused) >= 2


async def test_only_staff_may_post_and_bad_forms_create_nothing(env):
    staff, donors = await seed(env, [("O", "+", 1)])
    replies = await donors[0].send("/urgent O- 2")
    assert "for hospital staff" in replies[-1]["text"]
    for form, says in (("C- 2", "blood type"), ("O- 0", "1 to"), ("O- 2 tomorrow", "tomorrow")):
        replies = await staff.send(f"/urgent {form}")
        assert says in replies[-1]["text"]
    async with env.sessionmaker() as s:
        assert (await s.exec(select(BloodRequest))).all() == []


async def test_a_forged_send_for_another_hospital_is_refused(env):
    staff, _donors = await seed(env, [("O", "+", 1)])
    await staff.send("/urgent O+ 1")
    msg, button = staff.find_button("Send to donors")
    await staff.press(msg["message_id"], "urg:send:999")
    assert "Only staff of that hospital" in staff.alerts()[-1]
    async with env.sessionmaker() as s:
        assert (await s.exec(select(BloodRequest))).all() == []


async def test_a_donor_who_blocked_the_bot_is_replaced(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(15)])
    env.sim.block(donors[0].id)
    await post(env, staff, "O+ 1")
    await env.drain()
    async with env.sessionmaker() as s:
        states = dict((await s.exec(select(RequestContact.donor_id, RequestContact.state))).all())
        blocked = (await s.exec(select(Donor).where(Donor.telegram_id == donors[0].id))).one()
        assert states[blocked.id] == "unreachable"
        assert (await s.exec(select(BloodRequest))).one().state == "dispatching"
    reached = [u for u in donors if calls(u)]
    # Everyone asked but the blocked donor got the call, and the wave is as large as without her.
    assert len(reached) == len(states) - 1


async def test_a_429_storm_delays_but_loses_nothing(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(10)])
    await staff.send("/urgent O+ 1")
    env.sim.fail_next("sendMessage", 429, retry_after=1, count=3)  # hits the calls, all sent by the outbox
    await staff.tap("Send to donors")
    await env.drain()
    async with env.sessionmaker() as s:
        asked = len((await s.exec(select(RequestContact))).all())
    assert sum(len(calls(u)) for u in donors) == asked  # each call delivered exactly once


async def test_a_vietnamese_donor_gets_the_call_in_vietnamese_and_answers_it(env):
    staff, donors = await seed(env, [("B", "+", 1 + i) for i in range(8)], locale="vi")
    await staff.send("/urgent B+ 1 cấp cứu")
    await staff.tap("Gửi cho người hiến máu")
    await env.drain()
    call = [m for m in donors[0].bot_messages() if "Cần máu khẩn cấp" in m.get("text", "")]
    assert call and "B+" in call[0]["text"] and "Bệnh viện Việt Tiệp" in call[0]["text"]
    await donors[0].tap("Tôi sẽ đến")
    await env.drain()
    async with env.sessionmaker() as s:
        assert (await s.exec(select(RequestContact).where(RequestContact.state == "available"))).one()
    board = staff.last()["text"]  # the staff's board, in Vietnamese, with the donor who accepted
    assert "Yêu cầu #1" in board and "Đã nhận lời" in board and "sẽ đến" in board and "091" in board


async def test_at_night_an_urgent_request_waits_for_the_morning_and_says_so(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(5)])
    env.clock.now = env.clock.now.replace(hour=17)  # 00:00 in Hà Nội
    await staff.send("/urgent O+ 1 urgent")
    await staff.tap("Send to donors")
    await env.drain()
    assert "06:30" in staff.last_text() and "critical" in staff.last_text()
    assert not any(calls(u) for u in donors)
    await staff.send("/urgent O+ 1 critical")
    await staff.tap("Send to donors")
    await env.drain()
    assert any(calls(u) for u in donors)  # critical requests are never held
