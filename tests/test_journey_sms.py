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


async def _with_sms(db_sessionmaker, db_url, dispatch=None, http=None, **sms):
    gw = SmsGatewaySimulator(signing_key="club-key")
    await gw.start()
    env = await start_bot(db_sessionmaker, db_url, dispatch=dispatch, http=http, sms={
        "enabled": True, "api_url": gw.base_url, "username": gw.username, "password": gw.password,
        "webhook_secret": "club-key", **sms})
    runtime = env.dp["runtime"]
    server = OpsServer("127.0.0.1", 0, health=Health(db_sessionmaker, lambda: True, UpdateActivity("polling"), 120),
                       metrics=Metrics(), clock=env.clock, posts={SMS_WEBHOOK_PATH: runtime.sms.handle},
                       routes=runtime.answer_page.routes() if runtime.answer_page is not None else None)
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
        # Hoa was asked and no channel reached her (403, no SMS): the lead's call list names her.
        listed = await env.engine.desk.call_list_for(rid, by=LEAD_TG)
        assert [e["name"] for e in listed.detail["entries"]] == ["Donor 002"]
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


# --------------------------------------------------------------------------- donors with no Telegram (issue 15)

from sqlalchemy import update  # noqa: E402

from models.tables import Donor  # noqa: E402


async def _sms_only(sm, donor_ids):
    """These donors never linked Telegram: a phone and an agreed SMS channel only."""
    async with sm() as s:
        await s.exec(update(Donor).where(Donor.id.in_(donor_ids)).values(telegram_id=None))
        await s.commit()
    await with_sms(sm, donor_ids)


async def _town_with_sms_only(env, db_sessionmaker, n_sms=1, abo="O", rh="-"):
    """Lan on Telegram; the next ``n_sms`` donors by SMS only; the last one on neither."""
    hid, donors = await town(db_sessionmaker, n=n_sms + 2, abo=abo, rh=rh)
    await _sms_only(db_sessionmaker, donors[1:1 + n_sms])
    async with db_sessionmaker() as s:
        await s.exec(update(Donor).where(Donor.id == donors[-1]).values(telegram_id=None))
        await s.commit()
    for chat in (tg_of(0), STAFF_TG, LEAD_TG):
        env.sim.start_chat(chat)
    return hid, donors


def _phone(donor_id):
    return f"+8491{donor_id:07d}"


async def test_an_sms_only_donor_is_asked_first_by_sms_answers_co_and_the_board_shows_both(db_sessionmaker, db_url):
    env, gw, server = await _with_sms(db_sessionmaker, db_url)
    try:
        hid, donors = await _town_with_sms_only(env, db_sessionmaker)
        rid = await env.engine.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=1,
                                              urgency="urgent", posted_by=STAFF_TG)
        await _drain(env)
        lan, mai = env.user(tg_of(0)), _phone(donors[1])
        assert "O−" in lan.last_text()
        [call] = gw.texts_to(mai)  # asked by SMS at once: no Telegram to fail first
        assert call.endswith(f"Nhắn CO {rid} hoặc KHONG {rid}")
        await lan.tap(lan.buttons()[0])
        assert await gw.receive(mai, f"CO {rid}") == 200
        await _drain(env)
        async with db_sessionmaker() as s:
            states = {c.donor_id: c.state for c in (await s.exec(
                select(RequestContact).where(RequestContact.request_id == rid))).all()}
            sms_keys = (await s.exec(select(OutboxMessage.key).where(OutboxMessage.channel == "sms")
                                     .order_by(OutboxMessage.id))).all()
        # The third donor is on no channel: never asked, she is on the lead's call list.
        assert states == {donors[0]: "available", donors[1]: "available"}
        assert sms_keys[0] == f"call:{rid}:{donors[1]}@sms"
        board = await env.engine.board_params(rid, STAFF_TG)
        assert {d["name"]: d["state"] for d in board["donors"]} == {"Donor 000": "available", "Donor 001": "available"}
        listed = await env.engine.desk.call_list_for(rid, by=LEAD_TG)
        assert [e["name"] for e in listed.detail["entries"]] == ["Donor 002"]
        # The staff's board and report say which channel reached whom.
        staff = env.user(STAFF_TG)
        await staff.send(f"/board {rid}")
        lines = {ln.split(". ", 1)[1].split(" — ")[0]: ln for ln in staff.last_text().splitlines()
                 if ln[:2] in ("1.", "2.")}
        assert "📱 SMS" in lines["Donor 001"] and "SMS" not in lines["Donor 000"]
        replies = await staff.send(f"/report {rid}")
        report = next(r["text"] for r in reversed(replies) if "text" in r)
        assert "📱 SMS: đã liên lạc được 1 người, 1 người nhận lời" in report
        assert "Telegram: đã liên lạc được 1 người, 1 người nhận lời" in report
    finally:
        await server.stop()
        await stop_bot(env)
        await gw.stop()


async def test_an_sms_only_donor_is_not_texted_for_an_ordinary_request_and_is_on_the_call_list(db_sessionmaker,
                                                                                               db_url):
    # Three O+ donors are not a rare type here: a pool of two is enough.
    env, gw, server = await _with_sms(db_sessionmaker, db_url, dispatch={"rare_pool_threshold": 2})
    try:
        hid, donors = await _town_with_sms_only(env, db_sessionmaker, abo="O", rh="+")
        rid = await env.engine.create_request(hospital_id=hid, abo="O", rh="+", component="red_cells", units=1,
                                              urgency="planned", posted_by=STAFF_TG)
        await _drain(env)
        assert gw.sent == []  # [sms] only_for: critical or rare-type requests
        async with db_sessionmaker() as s:
            asked = (await s.exec(select(RequestContact.donor_id).where(RequestContact.request_id == rid))).all()
        assert asked == [donors[0]]
        listed = await env.engine.desk.call_list_for(rid, by=LEAD_TG)
        assert sorted(e["name"] for e in listed.detail["entries"]) == ["Donor 001", "Donor 002"]
    finally:
        await server.stop()
        await stop_bot(env)
        await gw.stop()


async def test_the_sms_budget_spent_mid_wave_leaves_the_rest_to_the_lead_with_an_audit_record(db_sessionmaker,
                                                                                              db_url):
    env, gw, server = await _with_sms(db_sessionmaker, db_url, max_per_request=2)
    try:
        hid, donors = await _town_with_sms_only(env, db_sessionmaker, n_sms=3)
        rid = await env.engine.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=1,
                                              urgency="critical", posted_by=STAFF_TG)
        await _drain(env)
        sms_donors = donors[1:4]
        texted = [d for d in sms_donors if gw.texts_to(_phone(d))]
        assert len(texted) == 2 and len(gw.sent) == 2
        [left] = [d for d in sms_donors if d not in texted]
        async with db_sessionmaker() as s:
            state = (await s.exec(select(RequestContact.state).where(RequestContact.request_id == rid,
                                                                     RequestContact.donor_id == left))).one()
            refused = (await s.exec(select(AuditLog.detail).where(AuditLog.action == "channel_refused",
                                                                  AuditLog.subject == f"request:{rid}"))).all()
        assert state == "unreachable"
        assert refused == [f"donor:{left} sms: sms budget spent within the wave (2 left before it)"]
        # Asked, reached by nothing: exactly whom the lead phones, beside the donor on no channel.
        listed = await env.engine.desk.call_list_for(rid, by=LEAD_TG)
        assert sorted(e["name"] for e in listed.detail["entries"]) == sorted(
            [f"Donor {sms_donors.index(left) + 1:03d}", f"Donor {len(donors) - 1:03d}"])
    finally:
        await server.stop()
        await stop_bot(env)
        await gw.stop()


async def test_an_sms_only_donor_answers_through_the_signed_link_in_her_sms(db_sessionmaker, db_url):
    import aiohttp
    from yarl import URL

    links = {"public_url": "https://rr.example.vn", "link_secret": "club-link-secret-0123456789",
             "listen": "127.0.0.1:0"}
    env, gw, server = await _with_sms(db_sessionmaker, db_url, http=links, unaccented=True)
    try:
        hid, donors = await _town_with_sms_only(env, db_sessionmaker)
        rid = await env.engine.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=1,
                                              urgency="critical", posted_by=STAFF_TG)
        await _drain(env)
        [call] = gw.texts_to(_phone(donors[1]))
        link = call.rsplit(" ", 1)[1]
        assert link.startswith("https://rr.example.vn/a/") and f"CO {rid}" in call
        path = URL(link).path  # the proxy's address, served here by the bot's own server
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            async with http.post(path, data={"answer": "available"}) as r:
                assert r.status == 200 and "Bệnh viện chờ bạn trước" in await r.text()
        await _drain(env)
        board = await env.engine.board_params(rid, STAFF_TG)
        assert [(d["name"], d["state"], d["channel"]) for d in board["donors"]] == [("Donor 001", "available", "sms")]
        # Her confirmation follows her call by SMS, as after a keyword answer.
        assert gw.texts_to(_phone(donors[1]))[-1].startswith("Cam on ban!")
    finally:
        await server.stop()
        await stop_bot(env)
        await gw.stop()
