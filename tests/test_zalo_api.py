"""The Zalo adapter (bot.zalo_api) over real HTTP against the Zalo Bot API simulator, the Zalo sender's
failures (a blocked user moves the call on), and the webhook's secret on the bot's own server."""

from __future__ import annotations

import asyncio
from functools import partial

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from bot.i18n import make_i18n
from bot.ops_server import Health, OpsServer, UpdateActivity
from bot.zalo_api import ZaloBotApi, parse_update
from bot.zalo_channel import ZALO_WEBHOOK_PATH, ZaloChannel, ZaloTransport
from bot.zalo_inbox import ZaloInbox
from dispatcher.keyword_answers import KeywordAnswers
from dispatcher.channels import next_channel
from dispatcher.metrics import Metrics
from dispatcher.sender import PermanentError, RateLimiter, RetryAfter, Sender, TransientError, Unreachable
from ground.config import Settings, SmsConfig
from models.dispatch_tables import OutboxMessage
from models.tables import DonorChannel
from redreserve.zalo_sim import ZaloBotSimulator
from tests.dispatch_helpers import START, contacts, make, post, tg_of, timedelta, town
from tests.test_channels import with_sms

I18N = make_i18n("vi")


@pytest.fixture
async def zalo():
    async with ZaloBotSimulator(token="99:tok") as sim:
        async with aiohttp.ClientSession() as http:
            yield sim, ZaloBotApi(http, sim.base_url, sim.token)


async def test_get_me_send_and_the_errors_the_sender_understands(zalo):
    sim, api = zalo
    assert (await api.get_me())["display_name"] == "Bot RedReserve"
    with pytest.raises(Unreachable):  # never wrote to the bot: Zalo does not know the chat
        await api.send_message("u1", "xin chào")
    await sim.user_says("u1", "hi")
    assert await api.send_message("u1", "Xin chào, Lan!")
    assert sim.texts_to("u1") == ["Xin chào, Lan!"]
    sim.blocked.add("u1")
    with pytest.raises(Unreachable):
        await api.send_message("u1", "again")
    sim.blocked.clear()
    sim.fail_next(500)
    with pytest.raises(TransientError):
        await api.send_message("u1", "x")
    sim.fail_next(400, "Bad Request: text too long")
    with pytest.raises(PermanentError):
        await api.send_message("u1", "x")
    sim.per_second = 2
    await api.send_message("u1", "a")
    await api.send_message("u1", "b")
    with pytest.raises(RetryAfter) as waited:
        await api.send_message("u1", "c")
    assert waited.value.seconds == 1.0
    with pytest.raises(TransientError):  # a wrong token: retried, someone may fix it
        await ZaloBotApi(api.session, sim.base_url, "99:wrong").get_me()


async def test_get_updates_long_polls_and_a_webhook_excludes_it(zalo):
    sim, api = zalo
    assert await api.get_updates(1) == []  # nothing came: Zalo's 408 is not an error
    waiting = asyncio.create_task(api.get_updates(5))
    await asyncio.sleep(0.1)
    await sim.user_says("u2", "CO 12")
    [update] = await asyncio.wait_for(waiting, 2)
    msg = parse_update(update)
    assert msg is not None and (msg.event, msg.user_id, msg.chat_id, msg.text) == \
        ("message.text.received", "u2", "u2", "CO 12")
    await api.set_webhook("http://127.0.0.1:1/zalo/webhook", "s3cret-token")
    with pytest.raises(PermanentError):  # 409: one way of getting updates at a time
        await api.get_updates(1)
    await api.delete_webhook()
    assert await api.get_updates(1) == []


def test_updates_that_are_not_messages_are_read_as_none():
    assert parse_update({"event_name": "message.text.received"}) is None
    assert parse_update([1, 2]) is None
    assert parse_update({"ok": True, "result": {"event_name": "x", "message": {"from": {"id": "7"}}}}).user_id == "7"


async def test_a_blocked_zalo_user_moves_the_call_to_her_next_channel(db_sessionmaker, zalo):
    """Telegram 403 -> Zalo; Zalo says she blocked the bot -> SMS, within its budget."""
    sim, api = zalo
    sm = db_sessionmaker
    hid, donors = await town(sm, n=1, abo="O", rh="-")
    cfg = SmsConfig(enabled=True)
    async with sm() as s:
        s.add(DonorChannel(donor_id=donors[0], channel="zalo", address="zu", rank=1, consent_at=START))
        await s.commit()
    await with_sms(sm, donors)  # rank 1 too: after Zalo by id
    d, tg_sender, tg, clock = make(sm, reroute=partial(next_channel, sms=cfg, zalo=True))
    tg.blocked = {tg_of(0)}
    zalo_sender = Sender(sm, ZaloTransport(api, I18N, "vi"), Settings().zalo.send_config(), clock=clock,
                         channel="zalo", limiter=RateLimiter(10_000, 10_000, 10_000, 0),
                         on_unreachable=tg_sender.on_unreachable, reroute=partial(next_channel, sms=cfg, zalo=True))
    sim.known.add("zu")
    sim.blocked.add("zu")
    rid = await post(d, hid, abo="O", rh="-", urgency="critical")
    for _ in range(4):
        await tg_sender.run_until_idle()
        await zalo_sender.run_until_idle()
    async with sm() as s:
        rows = {r.channel: r.state for r in (await s.exec(select(OutboxMessage).where(
            OutboxMessage.kind == "call"))).all()}
        zch = (await s.exec(select(DonorChannel).where(DonorChannel.channel == "zalo"))).one()
    assert rows == {"telegram": "unreachable", "zalo": "unreachable", "sms": "pending"}
    assert zch.unreachable_at is not None
    assert [c.state for c in await contacts(sm, rid)] == ["queued"]  # still asked (by SMS now), not unreachable


async def test_the_webhook_needs_the_secret_and_answers_once_per_message(db_sessionmaker):
    sm = db_sessionmaker
    async with ZaloBotSimulator(token="5:tok") as sim:
        settings = Settings(zalo={"enabled": True, "token": "5:tok", "api_url": sim.base_url, "mode": "webhook",
                                  "webhook_url": "https://bot.example.org/zalo/webhook",
                                  "webhook_secret": "club-secret-1"}, http={"listen": "127.0.0.1:0"})
        d, tg_sender, _tg, clock = make(sm)
        channel = ZaloChannel(settings, sm, d, I18N, clock=clock)
        await channel.start(tg_sender.on_unreachable)
        server = OpsServer("127.0.0.1", 0, health=Health(sm, lambda: True, UpdateActivity("polling"), 120),
                           metrics=Metrics(), clock=clock, posts={ZALO_WEBHOOK_PATH: channel.handle})
        await server.start()
        try:
            assert sim.webhook_secret == "club-secret-1"  # set by the channel's start
            sim.webhook_url = f"http://127.0.0.1:{server.port}{ZALO_WEBHOOK_PATH}"
            assert await sim.user_says("z1", "hello", secret="wrong-secret") == 401
            assert sim.texts_to("z1") == []
            assert await sim.user_says("z1", "hello") == 200
            assert len(sim.texts_to("z1")) == 1 and "/me zalo" in sim.texts_to("z1")[0]
            assert await sim.user_sends("z1", "message.image.received", {"photo": "http://x/p.jpg"}) == 200
            assert len(sim.texts_to("z1")) == 1  # an image: logged, no answer
        finally:
            await server.stop()
            await channel.stop()


async def test_a_call_that_went_to_zalo_is_followed_there_by_its_stand_down(db_sessionmaker, zalo):
    sim, api = zalo
    sm = db_sessionmaker
    hid, donors = await town(sm, n=1, abo="O", rh="-")
    async with sm() as s:
        s.add(DonorChannel(donor_id=donors[0], channel="zalo", address="zu", rank=1, consent_at=START))
        await s.commit()
    d, tg_sender, tg, clock = make(sm, reroute=partial(next_channel, sms=SmsConfig(), zalo=True))
    tg.blocked = {tg_of(0)}
    zalo_sender = Sender(sm, ZaloTransport(api, I18N, "vi"), Settings().zalo.send_config(), clock=clock,
                         channel="zalo", limiter=RateLimiter(10_000, 10_000, 10_000, 0),
                         on_unreachable=tg_sender.on_unreachable)
    sim.known.add("zu")
    rid = await post(d, hid, abo="O", rh="-", urgency="critical")
    for _ in range(3):
        await tg_sender.run_until_idle()
        await zalo_sender.run_until_idle()
    [call] = sim.texts_to("zu")
    assert "BV Bạch Mai" in call and call.endswith(f"CO {rid} hoặc KHONG {rid}")
    clock.now += timedelta(days=3)  # past the deadline: the request closes, the asked are told
    await d.tick(rid)
    for _ in range(3):
        await tg_sender.run_until_idle()
        await zalo_sender.run_until_idle()
    assert sim.texts_to("zu")[1:] == [f"Yêu cầu máu {rid}: bạn không cần đến nữa. Cảm ơn bạn!"]


async def test_a_donor_who_blocked_the_zalo_bot_is_reachable_again_once_she_writes_to_it(db_sessionmaker, zalo):
    sim, api = zalo
    sm = db_sessionmaker
    _hid, donors = await town(sm, n=1)
    async with sm() as s:
        s.add(DonorChannel(donor_id=donors[0], channel="zalo", address="zu", rank=1, consent_at=START,
                           unreachable_at=START))
        await s.commit()
    d, _tg_sender, _tg, clock = make(sm)
    inbox = ZaloInbox(sm, KeywordAnswers(sm, d, clock=clock), api, I18N, "vi", clock=clock, policy_version="p")
    await sim.user_says("zu", "xin chào")
    [update] = await api.get_updates(1)
    msg = parse_update(update)
    assert msg is not None
    assert await inbox.handle(msg) == "not_understood"
    assert await inbox.handle(msg) == "repeated"  # delivered twice: answered once
    assert len(sim.texts_to("zu")) == 1 and "CO 123" in sim.texts_to("zu")[0]
    async with sm() as s:
        assert (await s.exec(select(DonorChannel.unreachable_at))).one() is None


async def test_only_the_leader_polls_zalo(db_sessionmaker):
    sm = db_sessionmaker
    async with ZaloBotSimulator(token="6:tok") as sim:
        settings = Settings(zalo={"enabled": True, "token": "6:tok", "api_url": sim.base_url})
        d, tg_sender, _tg, clock = make(sm)
        channel = ZaloChannel(settings, sm, d, I18N, clock=clock)
        await channel.start(tg_sender.on_unreachable)
        try:
            await sim.user_says("z1", "hello")  # a follower sends, it does not read
            await asyncio.sleep(0.3)
            assert sim.texts_to("z1") == []
            channel.start_polling()  # leading
            channel.start_polling()  # twice: still one poller
            for _ in range(100):
                if sim.texts_to("z1"):
                    break
                await asyncio.sleep(0.02)
            assert len(sim.texts_to("z1")) == 1
            await channel.stop_polling()  # following again
            await sim.user_says("z1", "hello again")
            await asyncio.sleep(0.3)
            assert len(sim.texts_to("z1")) == 1
            channel.start_polling()  # leading again: what came meanwhile is read, not lost
            for _ in range(100):
                if len(sim.texts_to("z1")) == 2:
                    break
                await asyncio.sleep(0.02)
            assert len(sim.texts_to("z1")) == 2
        finally:
            await channel.stop()


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.sampled_from(["ok", "result", "message", "from", "chat", "id", "text", "event_name",
                                          "message_id", "x"]), inner, max_size=5), max_leaves=20)


@given(_json)
def test_any_json_zalo_posts_is_read_as_a_message_or_none_never_a_crash(update):
    msg = parse_update(update)
    assert msg is None or (msg.user_id and isinstance(msg.chat_id, str)
                           and (msg.text is None or isinstance(msg.text, str)))


async def test_the_webhook_acknowledges_what_it_cannot_read_without_answering_anyone(db_sessionmaker):
    sm = db_sessionmaker
    async with ZaloBotSimulator(token="7:tok") as sim:
        settings = Settings(zalo={"enabled": True, "token": "7:tok", "api_url": sim.base_url, "mode": "webhook",
                                  "webhook_url": "https://bot.example.org/zalo/webhook",
                                  "webhook_secret": "club-secret-2"}, http={"listen": "127.0.0.1:0"})
        d, tg_sender, _tg, clock = make(sm)
        channel = ZaloChannel(settings, sm, d, I18N, clock=clock)
        await channel.start(tg_sender.on_unreachable)
        server = OpsServer("127.0.0.1", 0, health=Health(sm, lambda: True, UpdateActivity("polling"), 120),
                           metrics=Metrics(), clock=clock, posts={ZALO_WEBHOOK_PATH: channel.handle})
        await server.start()
        url = f"http://127.0.0.1:{server.port}{ZALO_WEBHOOK_PATH}"
        headers = {"X-Bot-Api-Secret-Token": "club-secret-2"}
        try:
            async with aiohttp.ClientSession() as http:
                for body, status in ((b"not json", 400), (b"[]", 200), (b'{"event_name": "x"}', 200),
                                     (b'{"ok": true, "result": {"message": {"text": "CO 1"}}}', 200)):
                    async with http.post(url, data=body, headers=headers) as resp:
                        assert resp.status == status, body
            assert sim.sent == []
        finally:
            await server.stop()
            await channel.stop()
