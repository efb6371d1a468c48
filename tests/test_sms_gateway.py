"""SMS end to end (issue 15): the sender, the SMS Gateway for Android adapter over HTTP against its
simulator, the gateway's signed webhook on the bot's own server, keyword answers into the engine."""

from __future__ import annotations

import time
from functools import partial

import aiohttp
import pytest
from sqlmodel import select

from bot.i18n import make_i18n
from bot.ops_server import Health, OpsServer, UpdateActivity
from bot.sms_gateway import AndroidSmsGateway
from bot.sms_transport import SmsTransport
from bot.sms_webhook import SMS_WEBHOOK_PATH, SmsWebhook
from dispatcher.channels import next_channel
from dispatcher.keyword_answers import KeywordAnswers
from dispatcher.metrics import Metrics
from dispatcher.sender import RateLimiter, Sender
from ground.config import SmsConfig
from models.tables import AuditLog
from redreserve.smsgw_sim import SmsGatewaySimulator
from tests.dispatch_helpers import contacts, make, post, tg_of, town
from tests.test_channels import with_sms

I18N = make_i18n("vi")


class SmsWorld:
    """The dispatcher, a Telegram that refuses everyone (403), the SMS channel through the simulator."""

    async def start(self, sm, *, n=3, sms_donors=1, **sms):
        self.sm = sm
        self.hid, self.donors = await town(sm, n=n)
        await with_sms(sm, self.donors[:sms_donors])
        cfg = SmsConfig(enabled=True, webhook_secret="sim-signing", **sms)
        self.d, self.tg_sender, self.tg, clock = make(sm, reroute=partial(next_channel, sms=cfg))
        self.clock = clock
        self.tg.blocked = {tg_of(i) for i in range(n)}
        self.sim = SmsGatewaySimulator(signing_key="sim-signing")
        await self.sim.start()
        self.http = aiohttp.ClientSession()
        gateway = AndroidSmsGateway(self.http, self.sim.base_url, self.sim.username, self.sim.password)
        self.sms_sender = Sender(sm, SmsTransport(gateway, I18N, "vi", cfg), cfg.send_config(), clock=clock,
                                 channel="sms", limiter=RateLimiter(10_000, 10_000, 10_000, 0),
                                 on_unreachable=self.tg_sender.on_unreachable)
        webhook = SmsWebhook(KeywordAnswers(sm, self.d, clock=clock), gateway, I18N, "vi", cfg)
        health = Health(sm, lambda: True, UpdateActivity("polling"), 120.0)
        self.server = OpsServer("127.0.0.1", 0, health=health, metrics=Metrics(), clock=clock,
                                posts={SMS_WEBHOOK_PATH: webhook.handle})
        await self.server.start()
        self.sim.webhook_url = f"http://127.0.0.1:{self.server.port}{SMS_WEBHOOK_PATH}"
        return self

    def phone(self, i=0):
        return f"+8491{self.donors[i]:07d}"

    async def drain(self):
        for _ in range(4):
            await self.tg_sender.run_until_idle()
            await self.sms_sender.run_until_idle()

    async def states(self, rid):
        return {c.donor_id: c.state for c in await contacts(self.sm, rid)}

    async def close(self):
        await self.server.stop()
        await self.http.close()
        await self.sim.stop()


@pytest.fixture
async def world(db_sessionmaker):
    worlds = []

    async def start(**kw):
        w = await SmsWorld().start(db_sessionmaker, **kw)
        worlds.append(w)
        return w
    yield start
    for w in worlds:
        await w.close()


async def test_a_call_goes_by_sms_and_co_by_sms_puts_her_on_the_board(world):
    w = await world()
    rid = await post(w.d, w.hid, urgency="critical")
    await w.drain()
    [call] = w.sim.sent
    assert (call.phone, call.encoding, call.parts <= 2) == (w.phone(), "ucs2", True)
    assert call.text.startswith("Cần máu gấp: BV Bạch Mai cần O+") and call.text.endswith(f"CO {rid} hoặc KHONG {rid}")
    assert await w.sim.receive(w.phone(), f"Co {rid}") == 200
    await w.drain()
    assert (await w.states(rid))[w.donors[0]] == "available"
    board = await w.d.board_params(rid, 0)
    assert board is not None and board["confirmed"] == 1
    assert w.sim.texts_to(w.phone())[-1].startswith("Cảm ơn bạn! BV Bạch Mai chờ bạn trước")


async def test_a_forged_or_old_webhook_is_refused_and_changes_nothing(world):
    w = await world()
    rid = await post(w.d, w.hid, urgency="critical")
    await w.drain()
    assert await w.sim.receive(w.phone(), f"CO {rid}", signing_key="guessed") == 401
    assert await w.sim.receive(w.phone(), f"CO {rid}", timestamp=int(time.time()) - 3600) == 401
    assert (await w.states(rid))[w.donors[0]] == "notified"
    # Signed, but from a number no donor agreed to be reached at: no answer, no reply, an audit record.
    assert await w.sim.receive("+84999999999", f"CO {rid}") == 200
    assert (await w.states(rid))[w.donors[0]] == "notified" and w.sim.texts_to("+84999999999") == []
    async with w.sm() as s:
        assert (await s.exec(select(AuditLog).where(AuditLog.action == "keyword_answer_unknown_sender"))).first()
    # Her own gibberish gets the instructions back, in Vietnamese.
    assert await w.sim.receive(w.phone(), "ai vậy?") == 200
    assert w.sim.texts_to(w.phone())[-1].startswith("Để trả lời yêu cầu máu, nhắn CO")


async def test_a_repeated_webhook_records_and_replies_once(world):
    w = await world()
    rid = await post(w.d, w.hid, urgency="critical")
    await w.drain()
    for _ in range(2):
        assert await w.sim.receive(w.phone(), "ai vậy?", event_id="evt-1") == 200
    assert len(w.sim.texts_to(w.phone())) == 2  # the call and one reply
    assert rid


async def test_a_number_the_gateway_cannot_reach_goes_to_the_call_list_and_a_down_gateway_is_retried(world):
    w = await world(n=2, sms_donors=2)
    w.sim.unreachable = {w.phone(0)}
    w.sim.fail_next(503, "device is offline")
    rid = await post(w.d, w.hid, urgency="critical")
    for _ in range(5):
        await w.drain()
        if w.sim.sent:
            break
        w.clock.advance(seconds=60)  # past the back-off
    states = await w.states(rid)
    assert (states[w.donors[0]], states[w.donors[1]]) == ("unreachable", "notified")
    assert [m.phone for m in w.sim.sent] == [w.phone(1)] and w.sim.refused == 2
