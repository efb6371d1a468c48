"""A nurse posts a request step by step with /request, in a private chat or the hospital's staff group."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlmodel import select

from bot.commands import commands_for
from models.directory import Roles
from models.dispatch_tables import BloodRequest
from models.tables import Hospital, HospitalStaff, TelegramUser
from tests.harness import start_bot, stop_bot
from tests.test_journey_dispatch import calls, seed

GROUP = -100_555_000_111
NOTE = "Khoa Hồi sức tích cực, sau mổ, mất máu nhiều"


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def requests(env) -> list[BloodRequest]:
    async with env.sessionmaker() as s:
        return list((await s.exec(select(BloodRequest).order_by(BloodRequest.id))).all())


def form(user) -> dict:
    """The newest bot message with buttons: the form as the nurse sees it."""
    return next(m for m in reversed(user.bot_messages()) if (m.get("reply_markup") or {}).get("inline_keyboard"))


def now(user, message: dict) -> dict:
    """``message`` as it looks in the chat now, edits applied."""
    return next(m for m in user.bot_messages() if m["message_id"] == message["message_id"])


async def test_a_nurse_posts_an_rh_negative_request_step_by_step_in_english(env):
    staff, donors = await seed(env, [("O", "-", 2), ("O", "-", 4), ("O", "+", 3)])
    await staff.send("/request")
    first = staff.last()
    assert "Which blood type" in first["text"] and len(staff.buttons()) == 9  # 8 types and Cancel
    await staff.tap("O−")
    await staff.tap("Red cells")
    assert "Blood type: O−" in staff.last_text() and "How many units" in staff.last_text()
    assert staff.buttons()[:5] == ["1", "2", "3", "4", "6"]
    await staff.tap("2")
    assert staff.last()["message_id"] == first["message_id"]  # one form, edited in place
    await staff.tap("Set a deadline")
    assert "HH:MM" in staff.last_text()
    replies = await staff.send("14:30")  # 10:00 now in Hà Nội
    assert "Needed by: 14:30 22/11/2026" in replies[-1]["text"] and "How urgent" in replies[-1]["text"]
    assert not staff.buttons(now(staff, first))  # the form moved below the typed answer; no stale buttons above
    await staff.tap("Urgent")
    assert "Rh+ donors be asked" in staff.last_text() and "doctor" in staff.last_text()
    assert staff.buttons()[0].startswith("No")  # the default answer comes first
    await staff.tap("Yes — the doctor approved")
    assert "do not write the patient's name" in staff.last_text()
    replies = await staff.send(NOTE)
    confirm = replies[-1]["text"]
    for line in ("Hospital: Bệnh viện Việt Tiệp", "Blood type: O−", "Component: red cells", "Units: 2",
                 "Urgency: urgent", "Needed by: 14:30 22/11/2026", "asked only if no Rh− donor comes",
                 f"Note: {NOTE}"):
        assert line in confirm
    assert staff.buttons() == ["📣 Send to donors", "✏️ Start over", "Cancel"]
    confirm = staff.last()
    await staff.tap("Send to donors")
    await env.drain()
    assert "Request #1" in now(staff, confirm)["text"]  # the confirmation became the live board

    (req,) = await requests(env)
    assert (req.abo, req.rh, req.component, req.units, req.urgency) == ("O", "-", "red_cells", 2, "urgent")
    deadline = req.deadline if req.deadline.tzinfo else req.deadline.replace(tzinfo=timezone.utc)
    assert deadline == datetime(2026, 11, 22, 7, 30, tzinfo=timezone.utc)
    assert (req.note, req.rh_positive_ok, req.chat_id, req.posted_by) == (NOTE, True, staff.id, staff.id)
    call = calls(donors[0])[0]["text"]
    assert NOTE in call and "O−" in call


async def test_a_vietnamese_nurse_posts_with_buttons_only_and_the_defaults(env):
    staff, donors = await seed(env, [("B", "+", 1 + i) for i in range(6)], locale="vi")
    await staff.send("/request")
    assert "Bệnh nhân cần nhóm máu nào" in staff.last_text()
    await staff.tap("B+")
    await staff.tap("Tiểu cầu")
    assert "Nhóm máu: <b>" not in staff.last_text() and "Nhóm máu: B+" in staff.last_text()
    await staff.tap("3")
    await staff.tap("Cấp cứu")  # an Rh+ patient: no Rh question
    assert "ghi chú" in staff.last_text() and "không ghi tên bệnh nhân" in staff.last_text()
    await staff.tap("Bỏ qua")
    confirm = staff.last_text()
    assert "Số đơn vị: 3" in confirm and "tiểu cầu" in confirm and "mặc định" in confirm
    assert "Rh+" not in confirm.replace("B+", "")
    sent = form(staff)
    await staff.tap("Gửi cho người hiến máu")
    await env.drain()
    assert "Yêu cầu #1" in now(staff, sent)["text"]  # the live board, in Vietnamese
    (req,) = await requests(env)
    assert (req.abo, req.rh, req.component, req.units, req.urgency) == ("B", "+", "platelets", 3, "critical")
    assert (req.note, req.rh_positive_ok, req.chat_id) == ("", False, staff.id)
    assert any("Cần máu khẩn cấp" in m["text"] for d in donors for m in d.bot_messages())


async def test_bad_answers_at_each_step_are_explained_and_nothing_is_posted_half(env):
    staff, _donors = await seed(env, [("A", "+", 1)])
    await staff.send("/request")
    await staff.tap("A+")
    await staff.tap("Whole blood")
    for typed, says in (("0", "from 1 to 20"), ("999", "from 1 to 20"), ("abc", "not a number of units")):
        replies = await staff.send(typed)
        assert says in replies[-1]["text"] and "/cancel" in replies[-1]["text"]
    replies = await staff.send("4")
    assert "Units: 4" in replies[-1]["text"]
    await staff.tap("Set a deadline")
    for typed, says in (("08:00 21/11", "already passed"), ("10:00 30/11", "more than 72 hours"),
                        ("25:99", "not a time")):
        replies = await staff.send(typed)
        assert says in replies[-1]["text"]
    await staff.tap("Back")  # changed their mind: no deadline after all
    assert "How urgent" in form(staff)["text"] and "Needed by" not in form(staff)["text"]
    await staff.tap("Planned")
    replies = await staff.send("x" * 201)
    assert "201 of at most 200 characters" in replies[-1]["text"] and "200" in replies[-1]["text"]
    await staff.send("/help")  # a command in the middle of a step is a command
    replies = await staff.send("Khoa Nhi")
    assert "Note: Khoa Nhi" in replies[-1]["text"] and "Needed by" in replies[-1]["text"]
    assert await requests(env) == []


async def test_forged_stale_and_repeated_presses_post_at_most_once(env):
    staff, _donors = await seed(env, [("O", "+", 1)])
    async with env.sessionmaker() as s:
        other = Hospital(name="Bệnh viện Kiến An", lat=20.8, lon=106.6)
        s.add(other)
        await s.commit()
        other_id = other.id

    # A button of a flow left with /cancel does nothing.
    await staff.send("/request")
    old = staff.last()
    await staff.send("/cancel")
    assert not staff.buttons(now(staff, old))  # /cancel took the form's buttons away
    await staff.press(old["message_id"], "rq:bt:O+:0")
    assert "closed" in staff.alerts()[-1]
    # …nor after a new /request has started.
    await staff.send("/request")
    await staff.press(old["message_id"], "rq:bt:O+:0")
    assert "closed" in staff.alerts()[-1]
    # A step's button on another step, and a value no button carries.
    current = staff.last()
    await staff.press(current["message_id"], "rq:send::1")
    assert "already sent" in staff.alerts()[-1] or "no longer active" in staff.alerts()[-1]
    await staff.press(current["message_id"], "rq:bt:C+:0")
    assert "no longer active" in staff.alerts()[-1]

    await staff.tap("O+")
    await staff.tap("Red cells")
    await staff.tap("1")
    await staff.tap("Critical")
    await staff.tap("Skip")
    confirm = staff.last()
    # Another hospital's id in the callback data: refused, and the form stays ready.
    await staff.press(confirm["message_id"], f"rq:send::{other_id}")
    assert "Only staff of that hospital" in staff.alerts()[-1]
    assert await requests(env) == []
    _msg, send = staff.find_button("Send to donors", confirm)
    await staff.press(confirm["message_id"], send["callback_data"])
    await staff.press(confirm["message_id"], send["callback_data"])  # a second tap
    await env.drain()
    assert len(await requests(env)) == 1
    assert "already sent" in staff.alerts()[-1]


async def test_staff_of_two_hospitals_choose_on_the_confirmation(env):
    staff, _donors = await seed(env, [("O", "+", 1)])
    async with env.sessionmaker() as s:
        other = Hospital(name="Bệnh viện Kiến An", lat=20.8, lon=106.6)
        s.add(other)
        await s.flush()
        s.add(HospitalStaff(hospital_id=other.id, telegram_id=staff.id))
        await s.commit()
        other_id = other.id
    await staff.send("/request")
    for label in ("O+", "Plasma", "2", "Urgent", "Skip"):
        await staff.tap(label)
    assert "Hospital:" not in staff.last_text()
    assert staff.buttons()[:2] == ["📣 Bệnh viện Việt Tiệp", "📣 Bệnh viện Kiến An"]
    await staff.tap("Kiến An")
    await env.drain()
    (req,) = await requests(env)
    assert (req.hospital_id, req.component) == (other_id, "plasma")


async def test_staff_post_from_their_group_with_buttons_and_replies(env):
    """Privacy mode (the simulator's default): the bot hears only commands and replies to it."""
    staff, donors = await seed(env, [("AB", "-", 1), ("AB", "-", 2)])
    nurse = staff.in_group(GROUP)
    colleague = env.user(first_name="Bác sĩ Minh", language_code="en").in_group(GROUP)
    assert await nurse.send("Ai trực tối nay?") == []  # group chatter never reaches the bot

    await nurse.send("/request@redreserve_bot")
    form_msg = nurse.last()
    assert form_msg["reply_to_message"]["text"] == "/request@redreserve_bot"
    await nurse.tap("AB−")
    await nurse.tap("Red cells")
    assert "Other number" in " ".join(nurse.buttons())
    await nurse.tap("Other number")
    prompt = nurse.last()
    assert prompt["reply_markup"]["force_reply"] and prompt["reply_markup"]["selective"]
    assert f"tg://user?id={staff.id}" in str(prompt.get("entities")) or "Y tá Hạnh" in prompt["text"]
    # Someone else answering the prompt, and the nurse typing without replying, are not taken.
    await colleague.send("5", reply_to=prompt["message_id"])
    assert await nurse.send("5") == []
    replies = await nurse.send("0", reply_to=prompt["message_id"])
    retry = replies[-1]
    assert "from 1 to 20" in retry["text"] and retry["reply_markup"]["force_reply"]
    replies = await nurse.send("5", reply_to=retry["message_id"])
    assert "Units: 5" in replies[-1]["text"] and "How urgent" in replies[-1]["text"]
    await nurse.tap("Set a deadline")
    replies = await nurse.send("16:00", reply_to=nurse.last()["message_id"])
    assert "Needed by: 16:00 22/11/2026" in replies[-1]["text"]
    await nurse.tap("Critical")
    await nurse.tap("No — Rh− donors only")
    await nurse.tap("Write a note")
    replies = await nurse.send("Khoa Sản, băng huyết", reply_to=nurse.last()["message_id"])
    assert "Note: Khoa Sản, băng huyết" in replies[-1]["text"]
    # A colleague's tap on the nurse's form is not theirs to press.
    await colleague.tap("Send to donors")
    assert "someone else's" in colleague.alerts()[-1]
    assert await requests(env) == []
    await nurse.tap("Send to donors")
    await env.drain()
    assert "Request #1" in nurse.last_text() and "Asking donors" in nurse.last_text()  # the group's board

    (req,) = await requests(env)
    assert (req.chat_id, req.posted_by, req.abo, req.rh, req.units, req.urgency) == (GROUP, staff.id, "AB", "-", 5,
                                                                                      "critical")
    assert (req.note, req.rh_positive_ok) == ("Khoa Sản, băng huyết", False)
    await donors[0].tap("Available")
    await env.drain()
    # Phones go to the staff privately, never to the group; no ForceReply prompt is left behind.
    group_texts = [m.get("text", "") for m in nurse.bot_messages()]
    assert not any("091" in t for t in group_texts)
    assert not any((m.get("reply_markup") or {}).get("force_reply") for m in nurse.bot_messages())
    assert not any("091" in t for t in [m.get("text", "") for m in nurse.bot_messages()])  # the board too
    # The poster's private chat was told, and a board there shows the phone.
    assert any("/board 1" in m.get("text", "") for m in staff.bot_messages())
    replies = await staff.send("/board 1")
    assert "091" in replies[-1]["text"]


async def test_the_quick_form_works_in_the_group_too(env):
    staff, _donors = await seed(env, [("O", "+", 1)])
    nurse = staff.in_group(GROUP)
    await nurse.send("/urgent@redreserve_bot O+ 1")
    colleague = env.user(first_name="Minh", language_code="en").in_group(GROUP)
    await colleague.tap("Cancel")  # not theirs to cancel (and Telegram told us only their app's language: vi)
    assert "đã được gửi hoặc đã hủy" in colleague.alerts()[-1]
    await nurse.tap("Send to donors")
    await env.drain()
    (req,) = await requests(env)
    assert req.chat_id == GROUP and "Request #1" in nurse.last_text()


async def test_others_are_refused_in_the_group_and_nothing_is_created(env):
    staff, donors = await seed(env, [("O", "+", 1)])
    stranger = env.user(first_name="Khách", language_code="en").in_group(GROUP)
    for command in ("/request", "/urgent O- 2", "/request@redreserve_bot"):
        replies = await stranger.send(command)
        assert len(replies) == 1 and "only the hospital's staff" in replies[0]["text"]
        assert "+84" not in replies[0]["text"]
    vietnamese = env.user(first_name="Lan").in_group(GROUP)
    replies = await vietnamese.send("/request")
    assert "chỉ nhân viên bệnh viện" in replies[0]["text"]
    replies = await donors[0].in_group(GROUP).send("/urgent O+ 1")
    assert "only the hospital's staff" in replies[0]["text"]
    assert await stranger.send("/request@some_other_bot") == []
    assert await requests(env) == []


async def test_in_a_group_chatter_gets_no_reply_and_start_or_help_one_short_note(env):
    """A bot that can read everything (a group admin, or privacy off) still only speaks when spoken to."""
    env.sim.group_privacy = False
    staff, donors = await seed(env, [("O", "+", 1)])
    nurse, donor = staff.in_group(GROUP), donors[0].in_group(GROUP)
    stranger = env.user(first_name="Khách", language_code="en").in_group(GROUP)
    for who, text in ((nurse, "Ca trực tối nay ai nhận?"), (donor, "hello"), (stranger, "0912345678"),
                      (donor, "/me"), (donor, "/pause"), (stranger, "/language"), (stranger, "/roster"),
                      (nurse, "O- 2")):
        assert await who.send(text) == [], text
    replies = await stranger.send("/start")
    assert len(replies) == 1 and "/request" in replies[0]["text"] and "private chat" in replies[0]["text"]
    replies = await nurse.send("/help@redreserve_bot")
    assert len(replies) == 1 and "/request" in replies[0]["text"]
    # Buttons of private journeys, forged in the group, are answered and change nothing.
    for data in ("lang:en", "dn:calls_off:", "cons:profile"):
        await stranger.press(replies[0]["message_id"], data)
        assert "no longer active" in stranger.alerts()[-1]
    # Writing in a group does not open a private chat with the bot (DOMAIN.md §8).
    async with env.sessionmaker() as s:
        assert await s.get(TelegramUser, stranger.id) is None
    # Mid-flow, the nurse's ordinary messages are not taken as answers.
    await nurse.send("/request")
    for label in ("O+", "Red cells", "1", "Urgent"):
        await nurse.tap(label)
    assert await nurse.send("đang chờ bác sĩ ký") == []
    assert "Skip" in " ".join(nurse.buttons())
    # A reply to the form itself is meant for the bot: it is the note.
    replies = await nurse.send("Khoa Nhi", reply_to=form(nurse)["message_id"])
    assert "Note: Khoa Nhi" in replies[-1]["text"] and "Send to donors" in " ".join(nurse.buttons())


async def test_two_nurses_in_one_group_fill_in_their_own_forms(env):
    staff, _donors = await seed(env, [("O", "+", 1)])
    second = env.user(first_name="Y tá Lan")
    async with env.sessionmaker() as s:
        hospital = (await s.exec(select(Hospital))).one()
        s.add(HospitalStaff(hospital_id=hospital.id, telegram_id=second.id))
        s.add(TelegramUser(telegram_id=second.id, first_name=second.first_name, locale="en"))
        await s.commit()
    a, b = staff.in_group(GROUP), second.in_group(GROUP)
    await a.send("/request")
    form_a = a.last()
    await b.send("/request")
    form_b = b.last()
    await a.tap("O+", form_a)
    await b.tap("A−", form_b)
    await b.tap("Red cells", now(a, form_a))  # a's form: not b's to fill in
    assert "someone else's" in b.alerts()[-1]
    assert "Blood type: O+" in now(a, form_a)["text"]
    assert "Blood type: A−" in now(b, form_b)["text"]
    await b.send("/cancel")
    await a.tap("Whole blood", now(a, form_a))  # a's form carries on
    assert "How many units" in now(a, form_a)["text"]


def test_staff_menus_offer_the_guided_request():
    menu = [c for c, _d in commands_for(Roles(donor_id=None, staff_hospital_ids=[1]), False)]
    assert menu[:2] == ["request", "urgent"]


async def test_a_deadline_that_lapses_while_the_form_waits_is_asked_again(env):
    staff, _donors = await seed(env, [("O", "+", 1)])
    await staff.send("/request")
    for label in ("O+", "Red cells", "1", "Set a deadline"):
        await staff.tap(label)
    await staff.send("10:30")  # half an hour from now
    for label in ("Urgent", "Skip"):
        await staff.tap(label)
    env.clock.advance(minutes=45)  # the form was left open
    await staff.tap("Send to donors")
    assert "deadline has passed" in staff.alerts()[-1]
    assert "How urgent" in form(staff)["text"] and "Needed by" not in form(staff)["text"]
    assert await requests(env) == []
    await staff.tap("Urgent")
    await staff.tap("Skip")
    await staff.tap("Send to donors")
    await env.drain()
    assert len(await requests(env)) == 1


async def test_a_repeated_press_of_the_same_step_is_harmless(env):
    staff, _donors = await seed(env, [("O", "+", 1)])
    await staff.send("/request")
    first = staff.last()
    await staff.tap("O+")
    await staff.press(first["message_id"], "rq:restart::0")  # back to the first screen…
    await staff.press(first["message_id"], "rq:restart::0")  # …twice: the same screen again, no error
    assert "Which blood type" in now(staff, first)["text"] and "Blood type:" not in now(staff, first)["text"]


async def test_group_chats_get_the_staff_commands_in_their_menu(env):
    from bot.commands import set_default_commands

    await set_default_commands(env.bot, env.dp["i18n_instance"])
    group_menu = env.sim.commands({"type": "all_group_chats"}, "vi")
    assert [c["command"] for c in group_menu] == ["request", "urgent", "board", "report", "stats", "export", "help", "cancel"]
    assert group_menu[0]["description"] == "Gửi yêu cầu máu, từng bước"
    assert "request" not in [c["command"] for c in env.sim.commands(None, "en")]  # donors' default menu


async def test_new_staff_learn_about_request_and_see_it_in_their_menu(env):
    from models.directory import create_invite

    async with env.sessionmaker() as s:
        hospital = Hospital(name="Bệnh viện Kiến An", lat=20.8, lon=106.6)
        s.add(hospital)
        await s.commit()
        invite = await create_invite(s, "staff", hospital_id=hospital.id, now=env.clock(), actor="test")
        code = invite.code
    nurse = env.user(first_name="Y tá Mai", language_code="en")
    replies = await nurse.send(f"/start {code}")
    assert "staff of Bệnh viện Kiến An" in replies[-1]["text"] and "/request" in replies[-1]["text"]
    menu = [c["command"] for c in env.sim.commands({"type": "chat", "chat_id": nurse.id})]
    assert menu[:2] == ["request", "urgent"]
    await nurse.send("/request")
    assert "Which blood type" in nurse.last_text()


async def test_the_guided_form_warns_before_sending_when_the_deadline_is_too_short(env):
    # Issue 9, point 7, as /urgent does it: the nearest O+ donors are ~60 km away (≈ 3 h to get ready and come).
    staff, donors = await seed(env, [("O", "+", 60 + k) for k in range(4)], locale="vi")
    await staff.send("/request")
    await staff.tap("O+")
    await staff.tap("Khối hồng cầu")
    await staff.tap("1")
    await staff.tap("Cấp cứu")  # the critical default: 3 h
    await staff.tap("Bỏ qua")
    confirm = staff.last_text()
    assert "⚠️ Hạn" in confirm and "2 người hiến gần nhất có khả năng hiến được cần tới" in confirm, confirm
    assert "lấy khối hồng cầu mất khoảng 60 phút" in confirm
    assert "cân nhắc đặt hạn muộn hơn, hoặc lấy máu từ ngân hàng máu" in confirm
    assert confirm.index("⚠️") < confirm.index("Vui lòng kiểm tra lại")  # read before the Send button
    assert await requests(env) == []  # the warning posts nothing

    # Start over with a deadline the same donors can meet (the urgent default, 12 h): no warning.
    await staff.tap("Làm lại")
    await staff.tap("O+")
    await staff.tap("Khối hồng cầu")
    await staff.tap("1")
    await staff.tap("Gấp")
    await staff.tap("Bỏ qua")
    assert "⚠️" not in staff.last_text(), staff.last_text()


async def test_a_typed_deadline_too_short_for_platelets_is_warned_about_with_the_collection_time(env):
    staff, donors = await seed(env, [("A", "+", 1 + k) for k in range(8)])
    await staff.send("/request")
    await staff.tap("A+")
    await staff.tap("Platelets")
    await staff.tap("1")
    await staff.tap("Set a deadline")
    await staff.send("11:00")  # 10:00 now: an hour, and apheresis takes up to two (DOMAIN.md §6)
    await staff.tap("Urgent")
    replies = await staff.send("ICU bed 4")
    confirm = replies[-1]["text"]
    assert "⚠️ The deadline 11:00" in confirm and "collecting platelets takes about 120 min" in confirm, confirm
    assert "Consider a later deadline, or the blood bank" in confirm
    await staff.tap("Send to donors")  # a warning, not a refusal: staff may still send
    await env.drain()
    assert len(await requests(env)) == 1
