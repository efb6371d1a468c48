"""Issue 15's proof through both simulators: the real bot on the Bot API simulator, SMS through the
SMS Gateway for Android simulator, incoming SMS by its signed webhook on the bot's own server."""

from __future__ import annotations

from sqlmodel import select

from bot.ops_server import Health, OpsServer, UpdateActivity
from bot.sms_webhook import SMS_WEBHOOK_PATH
from dispatcher.metrics import Metrics
from models.dispatch_tables import OutboxMessage, RequestContact
from models.tables import AuditLog
from redreserve.smsgw_sim import SmsGatewaySimulator
from tests.dispatch_helpers import LEAD_TG, STAFF_TG, tg_of, town
from tests.harness import start_bot, stop_bot
from tests.test_channels import with_sms


async def _with_sms(db_sessionmaker, db_url, **sms):
    gw = SmsGatewaySimulator(signing_key="club-key")
    await gw.start()
    env = await start_bot(db_sessionmaker, db_url, sms={
        "enabled": True, "api_url": gw.base_url, "username": gw.username, "password": gw.password,
        "webhook_secret": "club-key", **sms})
    runtime = env.dp["runtime"]
    server = OpsServer("127.0.0.1", 0, health=Health(db_sessionmaker, lambda: True, UpdateActivity("polling"), 120),
                       metrics=Metrics(), clock=env.clock, posts={SMS_WEBHOOK_PATH: runtime.sms.handle})
    await server.start()
    gw.webhook_url = f"http://127.0.0.1:{server.port}{SMS_WEBHOOK_PATH}"
    return env, gw, server


async def _drain(env):
    for _ in range(3):
        await env.drain()
        await env.dp["runtime"].sms.sender.run_until_idle()


async def _rare_request(env, db_sessionmaker):
    """O− in a town of three: Lan on Telegram; Mai never started the bot but gave her number for SMS;
    Hoa has neither (the lead's call list)."""
    hid, donors = await town(db_sessionmaker, n=3, abo="O", rh="-")
    await with_sms(db_sessionmaker, donors[1:2])
    for chat in (tg_of(0), STAFF_TG, LEAD_TG):
        env.sim.start_chat(chat)
    rid = await env.engine.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=1,
                                          urgency="urgent", posted_by=STAFF_TG)
    await _drain(env)
    return rid, donors, f"+8491{donors[1]:07d}"


async def test_a_rare_request_reaches_telegram_and_sms_and_both_answers_reach_the_board(db_sessionmaker, db_url):
    env, gw, server = await _with_sms(db_sessionmaker, db_url)
    try:
        rid, donors, mai = await _rare_request(env, db_sessionmaker)
        lan = env.user(tg_of(0))
        assert "O−" in lan.last_text() and len(lan.buttons()) == 2  # Telegram: the call with its buttons
        [call] = gw.texts_to(mai)  # Mai: her Telegram never started (403), so by SMS, once
        assert call.endswith(f"Nhắn CO {rid} hoặc KHONG {rid}")
        await lan.tap(lan.buttons()[0])
        assert await gw.receive(mai, f"có {rid}") == 200
        await _drain(env)
        async with db_sessionmaker() as s:
            states = {c.donor_id: c.state for c in (await s.exec(
                select(RequestContact).where(RequestContact.request_id == rid))).all()}
            sms_rows = (await s.exec(select(OutboxMessage.key).where(OutboxMessage.channel == "sms"))).all()
        assert (states[donors[0]], states[donors[1]], states[donors[2]]) == ("available", "available", "unreachable")
        board = await env.engine.board_params(rid, STAFF_TG)
        coming = {d["name"]: d["state"] for d in board["donors"]}  # the staff's /board, as it renders
        assert coming == {"Donor 000": "available", "Donor 001": "available"}
        assert gw.texts_to(mai)[-1].startswith("Cảm ơn bạn! BV Bạch Mai chờ bạn trước")
        assert sorted(k.split(":")[0] for k in sms_rows) == ["call", "confirmed"]
    finally:
        await server.stop()
        await stop_bot(env)
        await gw.stop()


async def test_with_the_sms_budget_spent_no_sms_goes_and_the_refusal_is_audited(db_sessionmaker, db_url):
    env, gw, server = await _with_sms(db_sessionmaker, db_url, max_per_day=0)
    try:
        rid, donors, mai = await _rare_request(env, db_sessionmaker)
        assert gw.sent == []
        async with db_sessionmaker() as s:
            state = (await s.exec(select(RequestContact.state).where(RequestContact.request_id == rid,
                                                                     RequestContact.donor_id == donors[1]))).one()
            refused = (await s.exec(select(AuditLog.detail).where(AuditLog.action == "channel_refused"))).all()
        assert state == "unreachable"
        assert refused == [f"donor:{donors[1]} sms: sms budget of the day spent (0)"]
    finally:
        await server.stop()
        await stop_bot(env)
        await gw.stop()
