"""The hospital desk through the real bot: the live board, arrivals and donations, closing, reports (issue 4)."""

from __future__ import annotations

import io

from datetime import date, timedelta

import pytest
from sqlmodel import select

from bot.callbacks import BoardCb
from dispatcher.engine import InvalidRequest
from models.dispatch_tables import BloodRequest, RequestContact
from models.geo import geo_cell
from models.tables import (
    AuditLog,
    Club,
    ClubMembership,
    Donation,
    Donor,
    Hospital,
    HospitalStaff,
    TelegramUser,
)
from tests.harness import start_bot, stop_bot
from tests.test_journey_dispatch import calls, post, seed
from ground.parsing import format_phone


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


def board_of(staff) -> dict:
    boards = [m for m in staff.bot_messages() if m.get("text", "").startswith("🩸 Request #")]
    assert boards, "no board in the chat"
    return boards[-1]


def board_edits(env, chat_id: int, message_id: int) -> int:
    return sum(1 for c in env.sim.sent(chat_id=chat_id, method="editMessageText")
               if c.params.get("message_id") == message_id)


async def contacts(env) -> list[RequestContact]:
    async with env.sessionmaker() as s:
        return list((await s.exec(select(RequestContact).order_by(RequestContact.id))).all())


async def request(env, rid: int = 1) -> BloodRequest:
    async with env.sessionmaker() as s:
        return await s.get(BloodRequest, rid)


async def press_board(env, user, board: dict, **data) -> list[dict]:
    return await user.press(board["message_id"], BoardCb(**data).pack())


async def test_the_board_fills_in_place_names_only_those_who_accepted_and_does_not_flood(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(12)])
    await post(env, staff, "O+ 2")
    board = board_of(staff)
    messages_before = len(staff.bot_messages())
    asked = [u for u in donors if calls(u)]
    assert len(asked) >= 4
    yes, no = asked[:2], asked[2:4]
    for u in no:
        await u.tap("Not this time")
    for u in yes:
        await u.tap("Available")
    await env.drain()
    board = [m for m in staff.bot_messages() if m["message_id"] == board["message_id"]][0]
    text = board["text"]
    async with env.sessionmaker() as s:
        names = {d.telegram_id: (d.full_name, d.phone) for d in (await s.exec(select(Donor))).all()}
    for u in yes:
        assert names[u.id][0] in text and format_phone(names[u.id][1]) in text
    for u in no:
        assert names[u.id][0] not in text and format_phone(names[u.id][1]) not in text  # counted, never named
    assert "declined 2" in text and "Coming: " in text and "2/" in text
    # Edited in place: at most one edit per change (answers, and the top-ups after the declines),
    # and no new message (tests/test_dispatch_board.py shows a burst becoming one edit).
    edits = board_edits(env, staff.id, board["message_id"])
    assert 1 <= edits <= 8
    assert len(staff.bot_messages()) == messages_before


async def test_a_donor_travels_arrives_donates_and_is_not_asked_again_before_the_interval(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(6)])
    await post(env, staff, "O+ 1")
    donor = [u for u in donors if calls(u)][0]
    await donor.tap("Available")
    await env.drain()
    await donor.tap("On my way")
    assert [b["text"] for row in donor.find_button("I've arrived")[0]["reply_markup"]["inline_keyboard"]
            for b in row] == ["🏥 I've arrived", "↩️ I can't come after all"]
    await donor.tap("I've arrived")
    await env.drain()
    (mine,) = [c for c in await contacts(env) if c.state == "arrived"]
    assert mine.en_route_at is not None and mine.arrived_at is not None
    assert "🏥 arrived" in board_of(staff)["text"]

    board = board_of(staff)
    await staff.tap("Arrivals & donations", board)
    board = board_of(staff)
    await press_board(env, staff, board, a="pick", r=1, v=mine.id)
    labels = [b["text"] for row in board_of(staff)["reply_markup"]["inline_keyboard"] for b in row]
    assert "🩸 350 ml" in labels and "🩸 450 ml" in labels  # 65 kg: up to 450 ml
    await staff.tap("350 ml", board_of(staff))
    await env.drain()

    async with env.sessionmaker() as s:
        d = (await s.exec(select(Donor).where(Donor.telegram_id == donor.id))).one()
        donation = (await s.exec(select(Donation))).one()
        req = await s.get(BloodRequest, 1)
    today = env.clock().date()
    assert (donation.donor_id, donation.volume_ml, donation.donated_on, donation.hospital_id) == (d.id, 350, today, 1)
    assert d.last_donation_date == today and d.donation_count == 1
    assert req.state == "fulfilled" and req.close_reason == "donations"
    thanks = donor.last_text()
    assert "350 ml" in thanks and "donation number 1" in thanks
    next_date = today + timedelta(days=84)  # red cells from whole blood: 12 weeks (DOMAIN.md §2)
    assert next_date.strftime("%d/%m/%Y") in thanks
    assert "Fulfilled" in board_of(staff)["text"]

    # The next request does not call her: she gave today.
    env.clock.advance(days=1)
    await post(env, staff, "O+ 1")
    asked_again = [c for c in await contacts(env) if c.request_id == 2 and c.donor_id == d.id]
    assert asked_again == []


async def test_the_report_tells_the_story_of_a_request(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(6)])
    await post(env, staff, "O+ 1")
    asked = [u for u in donors if calls(u)]
    env.clock.advance(minutes=4)
    await asked[0].tap("Available")
    env.clock.advance(minutes=3)
    await asked[1].tap("Available")  # covers it (target 2)
    await env.drain()
    (first, *_rest) = [c for c in await contacts(env) if c.state == "available"]
    env.clock.advance(minutes=30)
    async with env.sessionmaker() as s:
        hid = (await s.exec(select(Hospital.id))).one()
    assert hid == 1
    await env.engine.desk.mark(1, first.id, "donated", by=staff.id, volume_ml=350)
    await env.drain()
    assert (await request(env)).state == "fulfilled"
    replies = await staff.send("/report 1")
    text = next(r["text"] for r in reversed(replies) if "text" in r)  # the summary, then its picture
    assert "Report for request #1" in text
    assert "wave 1" in text and "first donor available" in text and "covered" in text
    assert "asked " in text and "→ available 2 → arrived 1 → passed screening 1 → donated 1" in text
    # One function computes the headline times (dispatcher.headline), for the board and the report alike.
    assert "first available 4 min · covered 7 min · first donation 37 min · fulfilled 37 min" in text
    assert "closed: the donations cover the units" in text
    # And its timeline as a picture for the hospital's records (issue 16).
    from PIL import Image
    (picture,) = env.sim.photos(staff.id)
    image = Image.open(io.BytesIO(picture.data))
    assert image.format == "PNG" and image.size[0] >= 1000
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50  # curves, labels: not blank


async def test_staff_add_units_once_per_tap_and_cancel_with_a_reason(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(15)])
    await post(env, staff, "O+ 1")
    board = board_of(staff)
    await staff.tap("Add units", board)
    plus_one = staff.find_button("+1", board_of(staff))[1]["callback_data"]
    await staff.press(board["message_id"], plus_one)
    await staff.press(board["message_id"], plus_one)  # pressed twice: counts once
    await env.drain()
    req = await request(env)
    assert req.units == 2 and req.target_available >= 3
    assert "Already done" in staff.alerts()[-1]

    await staff.tap("Cancel", board_of(staff))
    await staff.tap("Posted by mistake", board_of(staff))
    await env.drain()
    req = await request(env)
    assert (req.state, req.close_reason) == ("cancelled", "mistake")
    assert "Cancelled (posted by mistake)" in board_of(staff)["text"]
    for u in donors:
        for m in calls(u):
            pytest.fail(f"a call was left standing: {m['text']}")
    async with env.sessionmaker() as s:
        actions = [a.action for a in (await s.exec(select(AuditLog))).all()]
    assert "request_units_added" in actions and "dispatch_request_cancelled" in actions
    # A board button after closing: answered, nothing changes.
    await press_board(env, staff, board_of(staff), a="covered_yes", r=1)
    assert "closed" in staff.alerts()[-1]
    assert (await request(env)).state == "cancelled"


async def test_a_milestone_donation_is_celebrated(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(4)])
    async with env.sessionmaker() as s:
        for d in (await s.exec(select(Donor))).all():
            d.donation_count = 4
            d.last_donation_date = date(2025, 1, 1)
            s.add(d)
        await s.commit()
    await post(env, staff, "O+ 1")
    donor = [u for u in donors if calls(u)][0]
    await donor.tap("Available")
    await env.drain()
    (c,) = [c for c in await contacts(env) if c.state == "available"]
    assert (await env.engine.desk.mark(1, c.id, "donated", by=staff.id, volume_ml=450)).ok
    await env.drain()
    assert "5 donations — a milestone" in donor.last_text() and "donation number 5" in donor.last_text()


async def test_bad_desk_input_is_answered_and_changes_nothing(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(8)])
    # Staff of another hospital, and a donor, pressing this hospital's board.
    other = env.user(first_name="Other nurse")
    async with env.sessionmaker() as s:
        h2 = Hospital(name="BV Kiến An", lat=20.8, lon=106.6)
        s.add(h2)
        s.add(TelegramUser(telegram_id=other.id, locale="en"))
        await s.flush()
        s.add(HospitalStaff(hospital_id=h2.id, telegram_id=other.id))
        await s.commit()
    await other.send("/help")
    await post(env, staff, "O+ 1")
    asked = [u for u in donors if calls(u)]
    await asked[0].tap("Not this time")
    await asked[1].tap("Available")
    await env.drain()
    board = board_of(staff)
    declined = [c for c in await contacts(env) if c.state == "declined"][0]
    accepted = [c for c in await contacts(env) if c.state == "available"][0]

    # Someone else's hospital: the engine refuses and audits even a well-formed action.
    result = await env.engine.desk.mark(1, accepted.id, "donated", by=other.id, volume_ml=350)
    assert result.outcome == "not_staff"
    assert (await env.engine.desk.close(1, by=asked[1].id)).outcome == "not_staff"
    # …and in chat, a forged press by a donor is refused with a clear alert.
    donor_chat_msg = asked[1].bot_messages()[-1]
    await asked[1].press(donor_chat_msg["message_id"], BoardCb(a="close_yes", r=1).pack())
    assert "Only staff of Bệnh viện Việt Tiệp" in asked[1].alerts()[-1]

    # A donor who never accepted cannot be marked donated; a volume outside the rules is refused.
    await press_board(env, staff, board, a="mark", r=1, v=declined.id, x="donated350")
    assert "has not said they are coming" in staff.alerts()[-1]
    await press_board(env, staff, board, a="mark", r=1, v=accepted.id, x="donated500")
    assert "450 ml is the most" in staff.alerts()[-1]
    async with env.sessionmaker() as s:
        d = await s.get(Donor, accepted.donor_id)
        d.weight_kg = 47
        s.add(d)
        await s.commit()
    await press_board(env, staff, board, a="mark", r=1, v=accepted.id, x="donated450")
    assert "350 ml is the most" in staff.alerts()[-1]
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donation))).all() == []
        refused = (await s.exec(select(AuditLog).where(AuditLog.action == "desk_refused"))).all()
    assert len(refused) == 2
    assert (await request(env)).state == "dispatching"

    # Closing twice: the second is answered, not applied twice.
    await staff.tap("Close", board_of(staff))
    await staff.tap("Yes, close the request", board_of(staff))
    await press_board(env, staff, board_of(staff), a="close_yes", r=1)
    assert "closed" in staff.alerts()[-1]
    assert (await request(env)).state == "fulfilled"
    # The donor who was coming is thanked and released.
    assert any("No longer needed" in m["text"] for m in asked[1].bot_messages())


async def test_a_deleted_board_is_posted_anew_once_and_kept_up_to_date_there(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(10)])
    await post(env, staff, "O+ 2")
    board = board_of(staff)
    env.sim.world.delete_message(staff.id, board["message_id"])
    asked = [u for u in donors if calls(u)]
    await asked[0].tap("Available")
    await env.drain()
    new_board = board_of(staff)
    assert new_board["message_id"] != board["message_id"] and "Said available" in new_board["text"]
    await asked[1].tap("Available")
    await env.drain()
    boards = [m for m in staff.bot_messages() if m.get("text", "").startswith("🩸 Request #")]
    assert len(boards) == 1 and boards[0]["message_id"] == new_board["message_id"]
    assert boards[0]["text"].count("091") == 2


async def test_the_call_list_goes_to_staff_privately(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(3)])
    async with env.sessionmaker() as s:
        club_id = (await s.exec(select(Club.id))).one()
        d = Donor(full_name="Bà Tư không dùng Telegram", phone="+84911222333", abo="O", rh="+", sex="F",
                  birth_date=date(1980, 1, 1), weight_kg=55, lat=20.86, lon=106.68, geo_cell=geo_cell(20.86, 106.68))
        s.add(d)
        await s.flush()
        s.add(ClubMembership(club_id=club_id, donor_id=d.id))
        await s.commit()
        s.add(TelegramUser(telegram_id=555_000, first_name="Quang", username="quang_lead"))
        s.add(ClubMembership(club_id=club_id, role="lead", telegram_id=555_000))
        await s.commit()
    await post(env, staff, "O+ 1")
    await staff.tap("Call list", board_of(staff))
    text = staff.last_text()
    # Staff ring the club's lead; the member's own name and phone stay with her club (DOMAIN.md §7).
    assert "Request #1" in text and "Quang @quang_lead" in text and "1 member to phone" in text
    assert "Bà Tư không dùng Telegram" not in text and "0911 222 333" not in text
    async with env.sessionmaker() as s:
        assert (await s.exec(select(AuditLog).where(AuditLog.action == "call_list_viewed"))).first()


async def test_a_group_board_names_without_phones_and_only_its_staff_may_press(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(6)])
    nurse = staff.in_group(-1001234567)
    stranger = env.user(first_name="Khách", language_code="en").in_group(-1001234567)
    await nurse.send("/urgent O+ 1")
    await nurse.tap("Send to donors")
    await env.drain()
    asked = [u for u in donors if calls(u)]
    await asked[0].tap("Available")
    await env.drain()
    board = board_of(nurse)
    assert "Said available" in board["text"] and "091" not in board["text"]
    assert "Phone numbers are shown only in staff's private chats" in board["text"]
    await stranger.tap("Enough now", board)
    assert "Bệnh viện Việt Tiệp" in stranger.alerts()[-1]  # only its staff (in the language we know of them)
    assert (await request(env)).state == "dispatching"
    # The call list never goes into the group: it goes to the presser's private chat.
    await nurse.tap("Call list", board)
    assert not any("Call list for request" in m.get("text", "") for m in nurse.bot_messages())


async def test_a_board_in_a_group_never_shows_phone_numbers(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(6)])
    await post(env, staff, "O+ 1")
    asked = [u for u in donors if calls(u)]
    await asked[0].tap("Available")
    await env.drain()
    private = await env.engine.board_params(1, staff.id)
    group = await env.engine.board_params(1, -1001234567)
    assert private["donors"][0]["phone"] and group["donors"][0]["phone"] is None
    assert group["donors"][0]["name"] == private["donors"][0]["name"]


async def test_a_staff_group_belongs_to_the_hospital_that_first_posted_there(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(6)])
    group = -1009876543
    other = env.user(first_name="Other nurse", language_code="en")
    async with env.sessionmaker() as s:
        h2 = Hospital(name="BV Kiến An", lat=20.8, lon=106.6)
        s.add(h2)
        s.add(TelegramUser(telegram_id=other.id, locale="en"))
        await s.flush()
        s.add(HospitalStaff(hospital_id=h2.id, telegram_id=other.id))
        h2_id = h2.id
        await s.commit()
    nurse = staff.in_group(group)
    await nurse.send("/urgent O+ 1")
    await nurse.tap("Send to donors")
    await env.drain()
    # Staff of another hospital are refused in this group, politely, and nothing is created.
    replies = await other.in_group(group).send("/urgent O+ 1")
    assert "only the hospital's staff" in replies[-1]["text"]
    # Even a forged send for the other hospital in this group creates nothing.
    with pytest.raises(InvalidRequest) as err:
        await env.engine.create_request(hospital_id=h2_id, abo="O", rh="+", component="red_cells", units=1,
                                        urgency="urgent", posted_by=other.id, chat_id=group)
    assert err.value.code == "group" and err.value.text.params["hospital"] == "Bệnh viện Việt Tiệp"
    async with env.sessionmaker() as s:
        assert len((await s.exec(select(BloodRequest))).all()) == 1
        assert (await s.exec(select(AuditLog).where(AuditLog.action == "group.bind"))).first()
