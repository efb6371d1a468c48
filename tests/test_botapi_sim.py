"""The Bot API simulator, driven by the real aiogram Bot over HTTP.

Every test talks to the simulator the way production talks to Telegram, so a
mismatch in response shapes shows up as an aiogram parsing error, and a wrong
status code as the wrong exception class.
"""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import pytest
from aiogram import Dispatcher
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from redreserve.botapi_sim import BotAPISimulator
from redreserve.botapi_sim.entities import parse_html

USER = 100_200_300
OTHER = 100_200_301
GROUP = -100_123_456


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in buttons]
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim():
    async with BotAPISimulator() as simulator:
        yield simulator
    assert simulator.internal_errors == []  # no request hit a simulator bug


@pytest.fixture
async def bot(sim):
    bot = sim.create_bot()
    yield bot
    await bot.session.close()


# --------------------------------------------------------------------------- basics


async def test_get_me_matches_token_identity(sim, bot):
    me = await bot.get_me()
    assert me.is_bot and me.username == "redreserve_bot"
    assert me.id == bot.id  # aiogram reads bot.id from the token


async def test_explicit_identity():
    async with BotAPISimulator(bot_id=42, bot_username="x_bot", bot_first_name="X") as sim:
        bot = sim.create_bot(token="999:abc")
        try:
            me = await bot.get_me()
        finally:
            await bot.session.close()
    assert (me.id, me.username, me.first_name) == (42, "x_bot", "X")


async def test_unknown_method_and_raw_encodings(sim):
    """JSON bodies and query strings work too (curl, the playground); unknown methods are 404."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.base_url}/bot1:x/frobnicate") as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False, "error_code": 404, "description": "Not Found: method not found"
            }
        sim.push_message(USER, "hi")
        async with http.post(
            f"{sim.base_url}/bot1:x/sendMessage",
            json={"chat_id": USER, "text": "json", "reply_markup": keyboard(("A", "a")).model_dump(
                exclude_none=True)},
        ) as resp:
            body = await resp.json()
            assert body["ok"] and body["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"
        query = {"chat_id": USER, "text": "q"}
        async with http.get(f"{sim.base_url}/bot1:x/sendmessage", params=query) as resp:
            assert (await resp.json())["result"]["text"] == "q"
    assert [c.method for c in sim.sent(USER)] == ["sendMessage", "sendMessage"]


# --------------------------------------------------------------------------- who may be messaged


async def test_bot_cannot_initiate_conversation(sim, bot):
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation with a user"):
        await bot.send_message(USER, "hello")
    sim.push_message(USER, "/start")
    message = await bot.send_message(USER, "hello")
    assert message.chat.id == USER and message.from_user.id == bot.id
    assert sim.is_started(USER)
    failed, sent = sim.sent(USER, "sendMessage")
    assert (failed.ok, failed.error_code, sent.ok) == (False, 403, True)


async def test_group_message_does_not_open_private_chat(sim, bot):
    sim.push_message(USER, "hi all", chat_id=GROUP, chat_type="supergroup", chat_title="Club")
    group_reply = await bot.send_message(GROUP, "hello club")
    assert group_reply.chat.type == "supergroup" and group_reply.chat.title == "Club"
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(USER, "psst")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(-100_999, "nobody here")


async def test_blocked_user(sim, bot):
    sim.push_message(USER, "/start")
    sim.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "are you there?")
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_chat_action(USER, "typing")
    sim.unblock(USER)
    await bot.send_message(USER, "welcome back")
    assert [m["text"] for m in sim.messages(USER)] == ["/start", "welcome back"]


# --------------------------------------------------------------------------- messages and edits


async def test_messages_show_current_state(sim, bot):
    sim.push_message(USER, "/start")
    first = await bot.send_message(USER, "Choose", reply_markup=keyboard(("Yes", "y"), ("No", "n")))
    second = await bot.send_message(USER, "temp")
    assert (first.message_id, second.message_id) == (2, 3)  # ids are per chat, shared with the user

    edited = await bot.edit_message_text("Chosen: yes", chat_id=USER, message_id=first.message_id)
    assert edited.text == "Chosen: yes" and edited.edit_date is not None
    # An edit without reply_markup drops the inline keyboard, as on Telegram.
    assert edited.reply_markup is None
    assert await bot.delete_message(USER, second.message_id)

    texts = [(m["text"], m.get("reply_markup")) for m in sim.messages(USER)]
    assert texts == [("/start", None), ("Chosen: yes", None)]
    assert sim.last_message(USER)["text"] == "Chosen: yes"
    assert sim.last_message(USER, from_bot=False)["text"] == "/start"


async def test_edit_not_modified_and_missing_messages(sim, bot):
    sim.push_message(USER, "/start")
    markup = keyboard(("Yes", "y"))
    message = await bot.send_message(USER, "Question", reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified: specified new message content"):
        await bot.edit_message_text("Question", chat_id=USER, message_id=message.message_id,
                                    reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=message.message_id,
                                            reply_markup=markup)
    # Same text but a different keyboard is a real change.
    await bot.edit_message_text("Question", chat_id=USER, message_id=message.message_id,
                                reply_markup=keyboard(("No", "n")))
    await bot.edit_message_reply_markup(chat_id=USER, message_id=message.message_id)
    assert "reply_markup" not in sim.last_message(USER)

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=99)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, 99)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=USER, message_id=1)  # the user's own message


async def test_html_parse_mode_is_applied_and_validated(sim, bot):
    sim.push_message(USER, "/start")
    message = await bot.send_message(USER, "  <b>Chào</b> 👋 <i>Lan</i> &amp; co  ", parse_mode="HTML")
    assert message.text == "Chào 👋 Lan & co"
    bold, italic = message.entities
    assert (bold.type, bold.offset, bold.length) == ("bold", 0, 4)
    assert (italic.type, italic.offset, italic.length) == ("italic", 8, 3)  # the emoji is 2 UTF-16 units

    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "" at byte offset 7'):
        await bot.send_message(USER, "Hồng < 9", parse_mode="HTML")  # offsets count UTF-8 bytes
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "x" * 4097)
    assert len(sim.messages(USER)) == 2  # rejected messages never appear


def test_html_parser_follows_telegram_rules():
    assert parse_html('<a href="https://t.me/x">link</a>') == (
        "link", [{"type": "text_link", "offset": 0, "length": 4, "url": "https://t.me/x"}])
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]
    assert parse_html("&lt;3 &unknown; &#128308;")[0] == "<3 &unknown; 🔴"
    for bad, error in [
        ("<b>bold", "Can't find end tag corresponding to start tag b"),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler"'),
    ]:
        with pytest.raises(Exception, match=error):
            parse_html(bad)


async def test_reply_keyboard_is_chat_state(sim, bot):
    sim.push_message(USER, "/start")
    share = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Share phone", request_contact=True)]])
    message = await bot.send_message(USER, "Your phone?", reply_markup=share)
    assert message.reply_markup is None  # Telegram echoes inline keyboards only
    assert sim.reply_keyboard(USER)["keyboard"][0][0]["request_contact"] is True
    assert sim.last_message(USER)["reply_markup"]["keyboard"]  # tests can still see it
    sim.push_contact(USER, "84901234567")
    contact = sim.last_message(USER, from_bot=False)["contact"]
    assert contact == {"phone_number": "84901234567", "first_name": "User 100200300", "user_id": USER}
    await bot.send_message(USER, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert sim.reply_keyboard(USER) is None


async def test_location_venue_contact_and_commands(sim, bot):
    sim.push_location(USER, 21.0285, 105.8542)
    assert sim.last_message(USER, from_bot=False)["location"] == {"latitude": 21.0285, "longitude": 105.8542}
    venue = await bot.send_venue(USER, 21.03, 105.85, "Viện Huyết học", "14 Trần Thái Tông")
    assert venue.venue.title == "Viện Huyết học" and venue.location.latitude == 21.03
    location = await bot.send_location(USER, 21.0, 105.8)
    assert location.location.longitude == 105.8
    contact = await bot.send_contact(USER, "+84900000000", "Hotline")
    assert contact.contact.phone_number == "+84900000000"

    await bot.set_my_commands([BotCommand(command="start", description="Bắt đầu")], language_code="vi")
    assert [c.command for c in await bot.get_my_commands(language_code="vi")] == ["start"]
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start-Now", description="x")])
    assert await bot.delete_my_commands(language_code="vi")
    assert sim.commands(language_code="vi") == []
    assert await bot.set_chat_menu_button()


# --------------------------------------------------------------------------- callbacks


async def test_callbacks(sim, bot):
    sim.push_message(USER, "/start")
    message = await bot.send_message(USER, "Can you donate?", reply_markup=keyboard(("Yes", "yes:1")))
    first = sim.press_button(USER, "Yes")
    forged = sim.push_callback(USER, message.message_id, "admin:delete_all")
    updates = await bot.get_updates(timeout=0)
    queries = [u.callback_query for u in updates if u.callback_query]
    assert [q.data for q in queries] == ["yes:1", "admin:delete_all"]
    assert queries[0].message.text == "Can you donate?" and queries[0].from_user.id == USER

    assert await bot.answer_callback_query(first["callback_query"]["id"], text="Thanks!")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(first["callback_query"]["id"])  # only one answer allowed
    await bot.answer_callback_query(forged["callback_query"]["id"], text="Nope", show_alert=True)
    answers = sim.callback_answers(user_id=USER)
    assert [(a["data"], a["text"]) for a in answers] == [("yes:1", "Thanks!"), ("admin:delete_all", "Nope")]
    assert answers[1]["show_alert"] is True

    with pytest.raises(ValueError):
        sim.push_callback(USER, 1, "x")  # message 1 is the user's, it has no buttons
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=keyboard(("Long", "đ" * 33)))  # 66 bytes


# --------------------------------------------------------------------------- flood limits and injected errors


async def test_rate_limits_with_sliding_windows():
    clock = FakeClock()
    async with BotAPISimulator(clock=clock) as sim:
        bot = sim.create_bot()
        try:
            sim.push_message(USER, "/start")
            sim.push_message(OTHER, "/start")
            sim.set_limits(global_per_second=3, per_chat_per_second=1, group_per_minute=None)
            await bot.send_message(USER, "1")
            clock.now += 0.3
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(USER, "2")
            assert caught.value.retry_after == 1  # 0.7 s left, rounded up
            assert "Too Many Requests: retry after 1" in caught.value.message
            await bot.send_message(OTHER, "other chats are not held back")
            with pytest.raises(TelegramRetryAfter):  # edits count too
                await bot.edit_message_text("1!", chat_id=USER, message_id=2)
            await bot.send_chat_action(USER, "typing")  # chat actions do not
            clock.now += 0.7  # exactly one second after the first send: it left the window
            await bot.send_message(USER, "2")
            sim.push_message(OTHER + 1, "/start")
            sim.push_message(OTHER + 2, "/start")
            await bot.send_message(OTHER + 1, "third send within the global second")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(OTHER + 2, "fourth")
            assert caught.value.retry_after == 1
            assert sim.violations == 3

            sim.set_limits(global_per_second=None, per_chat_per_second=None, group_per_minute=2,
                           retry_after=17)
            sim.push_message(USER, "hi", chat_id=GROUP, chat_type="group")
            await bot.send_message(GROUP, "a")
            clock.now += 59
            await bot.send_message(GROUP, "b")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(GROUP, "c")
            assert caught.value.retry_after == 17
            clock.now += 1  # "a" leaves the minute window
            await bot.send_message(GROUP, "c")
            assert sim.violations == 4

            sim.clear_limits()
            for n in range(5):
                await bot.send_message(USER, f"burst {n}")
            assert sim.violations == 4
        finally:
            await bot.session.close()


async def test_fail_next(sim, bot):
    sim.push_message(USER, "/start")
    sim.fail_next("sendMessage", 429, retry_after=3, count=2)
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(USER, "storm")
        assert caught.value.retry_after == 3
    await bot.send_message(USER, "through")
    assert sim.violations == 0  # injected errors are not flood violations

    sim.fail_next("*", 500, "Internal Server Error")
    assert await bot.get_updates(timeout=0) is not None  # wildcards spare polling
    with pytest.raises(TelegramServerError):
        await bot.send_chat_action(USER, "typing")

    sim.push_message(OTHER, "/start")
    sim.fail_next("sendMessage", 403, "Forbidden: user is deactivated", chat_id=OTHER)
    await bot.send_message(USER, "unaffected")
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(OTHER, "x")
    assert [m["text"] for m in sim.messages(USER) if m["from"]["is_bot"]] == ["through", "unaffected"]


# --------------------------------------------------------------------------- getUpdates


async def test_long_poll_returns_as_soon_as_an_update_arrives(sim, bot):
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await sim.wait_for(lambda: sim.polls_waiting == 1, timeout=2)
    started = time.monotonic()
    sim.push_message(USER, "hello")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 0.5
    assert [u.message.text for u in updates] == ["hello"]


async def test_long_poll_times_out_empty(sim, bot):
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 2


async def test_offset_confirms_updates(sim, bot):
    for n in range(3):
        sim.push_message(USER, f"m{n}")
    first = await bot.get_updates(timeout=0, limit=2)
    assert [u.message.text for u in first] == ["m0", "m1"]
    again = await bot.get_updates(timeout=0)  # delivering is not confirming
    assert [u.update_id for u in again] == [u.update_id for u in first] + [first[-1].update_id + 1]
    rest = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in rest] == ["m2"]
    assert await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0) == []
    assert sim.pending_updates == []
    assert (await bot.get_webhook_info()).pending_update_count == 0


async def test_duplicate_update_is_redelivered(sim, bot):
    update = sim.push_message(USER, "once")
    [delivered] = await bot.get_updates(timeout=0)
    assert await bot.get_updates(offset=delivered.update_id + 1, timeout=0) == []
    sim.push_raw(update)
    [again] = await bot.get_updates(offset=delivered.update_id + 1, timeout=0)
    assert again.update_id == update["update_id"] and again.message.text == "once"
    assert await bot.get_updates(offset=again.update_id + 1, timeout=0) == []


async def test_allowed_updates_are_sticky_and_filter(sim, bot):
    sim.push_message(USER, "/start")
    message = await bot.send_message(USER, "q", reply_markup=keyboard(("A", "a")))
    await bot.get_updates(offset=-1, timeout=0, allowed_updates=["message"])
    sim.press_button(USER, "A")
    sim.push_message(USER, "text")
    updates = await bot.get_updates(timeout=0)  # allowed_updates omitted: still ["message"]
    assert [u.message.text for u in updates if u.message] == ["/start", "text"]
    assert all(u.callback_query is None for u in updates)
    assert sim.dropped_updates[0]["callback_query"]["message"]["message_id"] == message.message_id


async def test_second_poller_terminates_the_first(sim, bot):
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await sim.wait_for(lambda: sim.polls_waiting == 1, timeout=2)
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)
    sim.push_message(USER, "for the survivor")
    assert [u.message.text for u in await asyncio.wait_for(second, 2)] == ["for the survivor"]


async def test_stop_releases_pending_long_polls():
    sim = BotAPISimulator()
    await sim.start()
    bot = sim.create_bot()
    try:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await sim.wait_for(lambda: sim.polls_waiting == 1, timeout=2)
        started = time.monotonic()
        await sim.stop()
        assert await asyncio.wait_for(poll, 2) == []
        assert time.monotonic() - started < 1.5
    finally:
        await bot.session.close()


# --------------------------------------------------------------------------- files


async def test_send_document_multipart_roundtrip(sim, bot):
    sim.push_message(USER, "/export")
    payload = "Họ tên,SĐT\nLan,0901\n".encode()
    message = await bot.send_document(
        USER, BufferedInputFile(payload, filename="donors.csv"), caption="<b>Export</b>", parse_mode="HTML"
    )
    assert message.document.file_name == "donors.csv" and message.document.mime_type == "text/csv"
    assert message.caption == "Export" and message.document.file_size == len(payload)
    [document] = sim.documents(USER)
    assert (document.data, document.file_name, document.message_id) == (payload, "donors.csv", 2)
    call = sim.sent(USER, "sendDocument")[0]
    assert call.params["document"] == {"upload": "donors.csv", "size": len(payload),
                                       "content_type": "application/octet-stream"}
    # Re-sending by file_id reuses the stored file.
    await bot.send_document(USER, message.document.file_id)
    assert [d.data for d in sim.documents(USER)] == [payload, payload]
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(USER, "no-such-file")


async def test_push_document_and_download(sim, bot):
    data = bytes(range(256)) * 10
    update = sim.push_document(USER, "roster.xlsx", data, caption="roster")
    document = update["message"]["document"]
    assert document["mime_type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    file = await bot.get_file(document["file_id"])
    assert file.file_size == len(data) and file.file_path.endswith(".xlsx")
    buffer = await bot.download(document["file_id"], destination=io.BytesIO())
    assert buffer.getvalue() == data
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


# --------------------------------------------------------------------------- waiting helpers


async def test_wait_for_call_times_out_with_context(sim, bot):
    sim.push_message(USER, "/start")
    await bot.send_message(USER, "earlier")
    sim.push_message(USER, "again")
    # "since the last push" by default: the earlier reply does not count.
    with pytest.raises(AssertionError) as caught:
        await sim.wait_for_call("sendMessage", chat_id=USER, timeout=0.2)
    report = str(caught.value)
    assert "1 x sendMessage to chat 100200300" in report and "#1 sendMessage" in report
    assert len(await sim.wait_for_call("sendMessage", chat_id=USER, since=0)) == 1


async def test_wait_idle_requires_delivery(sim, bot):
    await sim.wait_idle(quiet=0.05, timeout=1)
    sim.push_message(USER, "nobody polls")
    with pytest.raises(AssertionError, match="1 updates undelivered"):
        await sim.wait_idle(quiet=0.05, timeout=0.3)
    await bot.get_updates(timeout=0)
    await sim.wait_idle(quiet=0.05, timeout=1)


# --------------------------------------------------------------------------- a real polling bot


async def test_dispatcher_polling_end_to_end(sim, bot):
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"Xin chào, {message.from_user.first_name}!",
                             reply_markup=keyboard(("Đăng ký", "register")))

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=5)
    )
    try:
        sim.push_message(USER, "/start", first_name="Lan")
        [call] = await sim.wait_for_call("sendMessage", chat_id=USER, timeout=5)
        assert call.ok and call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "register"
        await sim.wait_idle(quiet=0.1, timeout=5)
        assert [m["text"] for m in sim.messages(USER)] == ["/start", "Xin chào, Lan!"]
        await sim.wait_for(lambda: not sim.pending_updates, timeout=2)  # confirmed by the next poll
    finally:
        started = time.monotonic()
        await dp.stop_polling()
        await asyncio.wait_for(polling, 2)
    assert time.monotonic() - started < 2
    await sim.wait_for(lambda: sim.polls_waiting == 0, timeout=1)  # the server let go of the poll


async def test_group_privacy_mode_delivers_only_commands_and_replies_to_the_bot(sim, bot):
    """A new bot's privacy mode: in a group it hears commands meant for it and replies to its messages."""
    me = await bot.get_me()
    assert me.can_read_all_group_messages is False
    chatter = sim.push_message(USER, "good morning, ward 3", chat_id=GROUP, chat_type="supergroup")
    other_bot = sim.push_message(USER, "/request@some_other_bot", chat_id=GROUP, chat_type="supergroup")
    assert "update_id" not in chatter and "update_id" not in other_bot
    assert [u["message"]["text"] for u in sim.withheld] == ["good morning, ward 3", "/request@some_other_bot"]
    assert [m["text"] for m in sim.messages(GROUP)] == ["good morning, ward 3", "/request@some_other_bot"]

    plain = sim.push_message(USER, "/request", chat_id=GROUP, chat_type="supergroup")
    mentioned = sim.push_message(USER, "/request@RedReserve_bot", chat_id=GROUP, chat_type="supergroup")
    asked = await bot.send_message(GROUP, "Note?", reply_to_message_id=plain["message"]["message_id"],
                                   reply_markup=ForceReply(force_reply=True, selective=True))
    reply = sim.push_message(USER, "ward 3", chat_id=GROUP, chat_type="supergroup",
                             reply_to_message_id=asked.message_id)
    not_to_bot = sim.push_message(OTHER, "me too", chat_id=GROUP, chat_type="supergroup",
                                  reply_to_message_id=reply["message"]["message_id"])
    assert "update_id" not in not_to_bot
    delivered = await bot.get_updates(timeout=0)
    assert [u.update_id for u in delivered] == [plain["update_id"], mentioned["update_id"], reply["update_id"]]
    quoted = delivered[2].message.reply_to_message  # as the Bot API quotes it: no ForceReply, one level
    assert quoted.message_id == asked.message_id and quoted.reply_markup is None and quoted.reply_to_message is None


async def test_group_privacy_off_delivers_all_group_messages():
    async with BotAPISimulator(group_privacy=False) as sim:
        bot = sim.create_bot()
        try:
            assert (await bot.get_me()).can_read_all_group_messages is True
            chatter = sim.push_message(USER, "good morning", chat_id=GROUP, chat_type="group")
            delivered = await bot.get_updates(timeout=0)
            assert [u.update_id for u in delivered] == [chatter["update_id"]]
            assert delivered[0].message.chat.type == "group" and delivered[0].message.from_user.id == USER
        finally:
            await bot.session.close()
