"""Input Telegram really sends, through the real bot (issue 10, "Crashes on real inputs"):
presses on messages Telegram no longer shows the bot, taps that change nothing, commands
in photo captions or in capitals, odd digits and huge numbers, answers as long as a message.
Each was a crash that left the person unanswered; the harness fails a test whose handler
raises, even when the last-line error handler answered."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.callbacks import AnswerCb, BoardCb, DonorCb, LangCb
from models.dispatch_tables import BloodRequest
from models.directory import create_club
from models.tables import ClubMembership, Donor, TelegramUser
from tests.harness import ADMIN_ID, start_bot, stop_bot
from tests.test_journey_dispatch import calls, post, seed
from tests.test_journey_donor import seed_donor

TELEGRAM_MAX = 4096
HUGE = "99999999999999999999"  # 20 digits: more than SQLite's INTEGER holds


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def english(env, user_id=None, first_name="Quân"):
    user = env.user(user_id, first_name=first_name, language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=user.id, first_name=first_name, locale="en"))
        await s.commit()
    return user


def answered(user) -> int:
    return len(user.sim.callback_answers(user_id=user.id))


# ------------------------------------------------------------------ inaccessible messages, repeated taps

async def test_a_press_on_a_message_telegram_no_longer_shows_still_does_its_work(env):
    lan = await english(env)
    await lan.send("/language")
    menu = lan.last()
    await lan.tap("English", inaccessible=True)
    assert answered(lan) == 1
    assert [m["text"] for m in lan.bot_messages() if m["message_id"] == menu["message_id"]] == ["Language set: English"]


async def test_forgetting_from_an_old_message_deletes_and_says_so(env):
    lan = env.user(first_name="Lan", language_code="en")
    donor_id = await seed_donor(env, lan)
    await lan.send("/forget")
    await lan.tap("Yes, delete my data", inaccessible=True)
    assert "Your data has been deleted" in lan.last_text()
    async with env.sessionmaker() as s:
        donor = await s.get(Donor, donor_id)
        assert donor is None or donor.full_name != "Nguyễn Thị Lan"


async def test_an_old_invite_menu_still_leads_the_admin_on(env):
    admin = await english(env, ADMIN_ID)
    async with env.sessionmaker() as s:
        await create_club(s, "CLB Lê Chân", 20.8449, 106.6881, actor="cli")
    await admin.send("/invite")
    await admin.tap("Club lead", inaccessible=True)
    await admin.tap("CLB Lê Chân", inaccessible=True)
    assert "How many people may use it?" in admin.last_text()
    await admin.tap("1", inaccessible=True)
    assert "Code:" in admin.last_text()


async def test_registration_consent_from_an_old_message_is_recorded(env):
    newcomer = env.user(first_name="Hoa", language_code="en")
    await newcomer.send("/start")
    await newcomer.tap("English")
    await newcomer.tap("Keep my profile", inaccessible=True)
    assert answered(newcomer) == 2


async def test_a_second_tap_that_changes_nothing_is_answered_quietly(env):
    lan = await english(env)
    await lan.send("/language")
    menu = lan.last()
    await lan.press(menu["message_id"], LangCb(code="en").pack())
    await lan.press(menu["message_id"], LangCb(code="en").pack())  # the same again: "message is not modified"
    assert answered(lan) == 2
    admin = await english(env, ADMIN_ID)
    async with env.sessionmaker() as s:
        await create_club(s, "CLB Lê Chân", 20.8449, 106.6881, actor="cli")
    await admin.send("/invite")
    msg, lead = admin.find_button("Club lead")
    await admin.press(msg["message_id"], lead["callback_data"])
    await admin.press(msg["message_id"], lead["callback_data"])  # the club list again, unchanged
    assert answered(admin) == 2


# ------------------------------------------------------------------ commands in captions and capitals

async def test_a_command_in_a_photo_caption_is_a_command(env):
    staff, donors = await seed(env, [("O", "-", 2)])
    replies = await donors[0].send_photo("/me")
    assert "Người hiến" in replies[-1]["text"]
    replies = await donors[0].send_photo("/roster")  # someone else's command, captioned
    assert "This command is for club leads" in replies[-1]["text"]
    replies = await staff.send_photo("/urgent O- 1")
    assert "Send?" in replies[-1]["text"]


async def test_commands_are_understood_in_any_case(env):
    newcomer = env.user(first_name="Hoa", language_code="en")
    replies = await newcomer.send("/START")
    assert "Chọn ngôn ngữ" in replies[-1]["text"] or "language" in replies[-1]["text"].lower()
    lan = env.user(first_name="Lan", language_code="en")
    await seed_donor(env, lan)
    replies = await lan.send("/Help")
    assert "What you can do here" in replies[-1]["text"]
    replies = await lan.send("/ME")
    assert "Nguyễn Thị Lan" in replies[-1]["text"]


# ------------------------------------------------------------------ numbers: odd digits, huge values

async def test_odd_digits_and_huge_numbers_are_refused_with_an_answer(env):
    staff, donors = await seed(env, [("O", "-", 2), ("O", "-", 3)])
    await post(env, staff, "O- 1")
    for arg in ("¹", HUGE, "②"):
        replies = await staff.send(f"/board {arg}")
        assert "Give the request number" in replies[-1]["text"]
    replies = await staff.send("/urgent O- ¹")
    assert "How many units?" in replies[-1]["text"]
    replies = await staff.send(f"/urgent O- {HUGE}")
    assert "Units must be from 1 to" in replies[-1]["text"]

    board = [m for m in staff.bot_messages() if m.get("text", "").startswith("🩸 Request #")][-1]
    before = answered(staff)
    for data in (f"bd:refresh:{HUGE}:0:", "bd:refresh:①:0:", "bd:refresh:-1:0:", f"bd:pick:1:{HUGE}:"):
        await staff.press(board["message_id"], data)
    assert answered(staff) == before + 4
    assert staff.alerts()[-1] == "This button is no longer active."
    await staff.press(board["message_id"], BoardCb(a="addu", r=1, v=1, x="①").pack())
    await staff.press(board["message_id"], BoardCb(a="mark", r=1, v=1, x="donated③⑤⓪").pack())
    assert answered(staff) == before + 6

    donor = next(u for u in donors if calls(u))
    call = calls(donor)[0]
    for data in (f"ans:{HUGE}:x:y", "ans:¹:x:y"):
        await donor.press(call["message_id"], data)
    assert donor.alerts()[-2:] == ["This button is no longer active."] * 2
    async with env.sessionmaker() as s:
        assert (await s.get(BloodRequest, 1)).units == 1
    assert AnswerCb.__name__  # the factory the forged data imitates


async def test_a_pause_with_odd_digits_is_explained(env):
    lan = env.user(first_name="Lan", language_code="en")
    await seed_donor(env, lan)
    await lan.send("/pause")
    pause_menu = lan.last()
    replies = await lan.send("¹")
    assert "number of days from 1 to 365" in replies[-1]["text"]
    replies = await lan.send(HUGE)
    assert "number of days from 1 to 365" in replies[-1]["text"]
    await lan.press(pause_menu["message_id"], DonorCb(action="pause", value="①").pack())
    assert lan.alerts()[-1] == "This button is no longer active."
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).one().status != "paused"


# ------------------------------------------------------------------ long answers

async def test_a_message_long_answer_is_not_quoted_back_whole(env):
    lan = env.user(first_name="Lan", language_code="en")
    await seed_donor(env, lan)
    await lan.send("/donated")
    await lan.tap("Whole blood")  # the kind first (issue 9), then the date
    replies = await lan.send("x" * TELEGRAM_MAX)
    assert "is not a date" in replies[-1]["text"] and len(replies[-1]["text"]) < 400
    await lan.send("/cancel")
    await lan.send("/me")
    await lan.tap("Weight")
    replies = await lan.send("9" * TELEGRAM_MAX)
    assert "not a plausible weight" in replies[-1]["text"] and len(replies[-1]["text"]) < 400
    lead = env.user(first_name="Minh", language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=lead.id, first_name="Minh", locale="en"))
        s.add(ClubMembership(club_id=1, telegram_id=lead.id, role="lead"))
        await s.commit()
    replies = await lead.send_photo("/find " + "x" * 1000)  # a caption holds 1,024 characters
    assert "is not a blood type" in replies[-1]["text"] and len(replies[-1]["text"]) < 400


# ------------------------------------------------------------------ the last line

async def test_an_unforeseen_failure_is_logged_and_the_person_told_to_try_again(env, caplog):
    lan = await english(env)
    env.sim.fail_next("sendMessage", 400, "Bad Request: something nobody foresaw")
    with pytest.raises(AssertionError, match="something nobody foresaw"):
        await lan.send("/help")
    env.tracker.errors.clear()
    assert lan.last_text() == "Sorry, something went wrong on my side. Please try again."
    assert any("failed" in r.getMessage() and '"/help"' in r.getMessage() for r in caplog.records)

    # A press answered before the failure: the apology comes as a message instead.
    await lan.send("/language")
    env.sim.fail_next("editMessageText", 400, "Bad Request: something else nobody foresaw")
    with pytest.raises(AssertionError, match="something else nobody foresaw"):
        await lan.tap("English")
    env.tracker.errors.clear()
    assert lan.last_text() == "Sorry, something went wrong on my side. Please try again."
