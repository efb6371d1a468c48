"""Issue 15's Zalo proof through both simulators: the real bot on the Bot API simulator, the Zalo channel
through the Zalo Bot API simulator (long polling), a donor who links her Zalo from /me on Telegram."""

from __future__ import annotations

import asyncio

from sqlmodel import select, update

from models.dispatch_tables import OutboxMessage, RequestContact
from models.tables import AuditLog, Donor, DonorChannel
from redreserve.zalo_sim import ZaloBotSimulator
from tests.dispatch_helpers import LEAD_TG, STAFF_TG, tg_of, town
from tests.harness import start_bot, stop_bot

ZALO_LAN = "zalo-user-lan"


async def _with_zalo(db_sessionmaker, db_url):
    zalo = ZaloBotSimulator()
    await zalo.start()
    env = await start_bot(db_sessionmaker, db_url, zalo={
        "enabled": True, "api_url": zalo.base_url, "token": zalo.token, "bot_name": "Bot CLB Hà Nội"})
    return env, zalo


async def _until(predicate, what: str, timeout: float = 10.0):
    """The Zalo side runs on its own (the poller): wait for what it should have done."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def _drain(env):
    for _ in range(3):
        await env.drain()
        await env.dp["runtime"].zalo.sender.run_until_idle()


async def _link(env, zalo, lan) -> str:
    """Lan asks for a code on Telegram and sends it, then DONG Y, to the Zalo bot."""
    [shown] = await lan.send("/me zalo")
    assert "Zalo: not linked" in shown["text"] or "chưa liên kết" in shown["text"]
    code = shown["text"].split("<code>")[1].split("</code>")[0] if "<code>" in shown["text"] else \
        next(w for w in shown["text"].split() if len(w) == 9 and w[4] == "-")
    await zalo.user_says(ZALO_LAN, code.lower())  # as typed on a phone
    await _until(lambda: len(zalo.texts_to(ZALO_LAN)) == 1, "the code is answered")
    assert "DONG Y" in zalo.texts_to(ZALO_LAN)[0]
    await zalo.user_says(ZALO_LAN, "Đồng ý")
    await _until(lambda: len(zalo.texts_to(ZALO_LAN)) == 2, "the consent is answered")
    return code


async def test_a_donor_links_zalo_from_me_then_a_critical_call_reaches_her_there_and_her_answer_reaches_the_board(
        db_sessionmaker, db_url):
    env, zalo = await _with_zalo(db_sessionmaker, db_url)
    try:
        hid, donors = await town(db_sessionmaker, n=2, abo="O", rh="-")
        for chat in (tg_of(0), tg_of(1), STAFF_TG, LEAD_TG):
            env.sim.start_chat(chat)
        lan = env.user(tg_of(0))
        code = await _link(env, zalo, lan)
        async with db_sessionmaker() as s:
            [ch] = (await s.exec(select(DonorChannel).where(DonorChannel.channel == "zalo"))).all()
            actions = (await s.exec(select(AuditLog.action).where(AuditLog.subject == f"donor:{donors[0]}")
                                    .order_by(AuditLog.id))).all()
        assert (ch.donor_id, ch.address, ch.consent_at is not None) == (donors[0], ZALO_LAN, True)
        assert ch.consent_policy_version == env.settings.bot.policy_version
        assert [a for a in actions if a.startswith("channel_")] == \
            ["channel_code_issued", "channel_linked", "channel_consent"]
        # The code worked once: sent again (by her, or by someone who saw it), it links nothing.
        await zalo.user_says("zalo-stranger", code)
        await _until(lambda: zalo.texts_to("zalo-stranger"), "the reused code is answered")
        assert "đã được dùng" in zalo.texts_to("zalo-stranger")[0]

        env.sim.block(tg_of(0))  # Lan's Telegram is blocked on her network: 403
        rid = await env.engine.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=1,
                                              urgency="critical", posted_by=STAFF_TG)
        await _drain(env)
        await _until(lambda: len(zalo.texts_to(ZALO_LAN)) == 3, "the call reaches Zalo")
        call = zalo.texts_to(ZALO_LAN)[2]
        assert "BV Bạch Mai" in call and f"CO {rid}" in call and f"KHONG {rid}" in call

        await zalo.user_says(ZALO_LAN, f"co {rid}")
        for _ in range(100):
            async with db_sessionmaker() as s:
                state = (await s.exec(select(RequestContact.state).where(
                    RequestContact.request_id == rid, RequestContact.donor_id == donors[0]))).one()
            if state == "available":
                break
            await asyncio.sleep(0.05)
        assert state == "available"
        await _drain(env)
        await _until(lambda: len(zalo.texts_to(ZALO_LAN)) == 4, "the confirmation reaches Zalo")
        assert zalo.texts_to(ZALO_LAN)[3].startswith("Cảm ơn bạn! BV Bạch Mai chờ bạn trước")
        board = await env.engine.board_params(rid, STAFF_TG)
        assert {d["name"]: d["state"] for d in board["donors"]}["Donor 000"] == "available"
        async with db_sessionmaker() as s:
            keys = sorted(k.split(":")[0] for k in (await s.exec(
                select(OutboxMessage.key).where(OutboxMessage.channel == "zalo"))).all())
        assert keys == ["call", "confirmed"]
    finally:
        await stop_bot(env)
        await zalo.stop()


async def test_strangers_stickers_wrong_codes_and_keywords_without_a_call_get_an_answer_and_change_nothing(
        db_sessionmaker, db_url):
    env, zalo = await _with_zalo(db_sessionmaker, db_url)
    try:
        hid, donors = await town(db_sessionmaker, n=1)
        env.sim.start_chat(tg_of(0))
        await zalo.user_says("zalo-nobody", "CO 12")  # not linked: how to link, no answer recorded
        await _until(lambda: zalo.texts_to("zalo-nobody"), "the stranger is answered")
        assert "/me zalo" in zalo.texts_to("zalo-nobody")[0]
        await zalo.user_says("zalo-nobody", "ABCD-EFGH")  # looks like a code, is none
        await _until(lambda: len(zalo.texts_to("zalo-nobody")) == 2, "the wrong code is answered")
        assert "không hợp lệ" in zalo.texts_to("zalo-nobody")[1]
        await zalo.user_sends("zalo-nobody", "message.sticker.received", {"sticker": "abc"})
        lan = env.user(tg_of(0))
        await _link(env, zalo, lan)
        await zalo.user_says(ZALO_LAN, "CÓ")  # no open call
        await _until(lambda: len(zalo.texts_to(ZALO_LAN)) == 3, "the bare CÓ is answered")
        assert "không có yêu cầu" in zalo.texts_to(ZALO_LAN)[2].lower()
        await zalo.user_says(ZALO_LAN, "xin chào")
        await _until(lambda: len(zalo.texts_to(ZALO_LAN)) == 4, "the chat is answered")
        assert "CO 123" in zalo.texts_to(ZALO_LAN)[3]
        assert len(zalo.texts_to("zalo-nobody")) == 2  # the sticker: logged, not answered
        async with db_sessionmaker() as s:
            assert (await s.exec(select(RequestContact))).all() == []
            linked = (await s.exec(select(DonorChannel).where(DonorChannel.channel == "zalo"))).all()
        assert [c.address for c in linked] == [ZALO_LAN]
        # She unlinks from Telegram: the row goes, audited; her Zalo is a stranger again.
        await lan.send("/me zalo")
        await lan.tap("Hủy liên kết Zalo")
        async with db_sessionmaker() as s:
            assert (await s.exec(select(DonorChannel).where(DonorChannel.channel == "zalo"))).all() == []
            assert (await s.exec(select(AuditLog.actor_telegram_id).where(
                AuditLog.action == "channel_unlinked"))).all() == [tg_of(0)]
    finally:
        await stop_bot(env)
        await zalo.stop()


async def test_a_lead_sees_a_members_channels_and_gives_her_a_zalo_code_she_links_with(db_sessionmaker, db_url):
    env, zalo = await _with_zalo(db_sessionmaker, db_url)
    try:
        hid, donors = await town(db_sessionmaker, n=1, abo="O", rh="-")
        env.sim.start_chat(LEAD_TG)
        lead = env.user(LEAD_TG)
        await lead.send("/find O-")
        await lead.tap("Donor 000")
        assert "Kênh liên lạc: Telegram" in lead.last_text()
        await lead.tap("Mã Zalo")
        shown = lead.last_text()
        assert "Mã Zalo cho <b>Donor 000</b>" in shown or "Mã Zalo cho Donor 000" in shown
        code = shown.split("Mã Zalo: ")[1].split()[0].strip("<code>/")
        await zalo.user_says("zalo-mai", code)
        await zalo.user_says("zalo-mai", "dong y")
        await _until(lambda: len(zalo.texts_to("zalo-mai")) == 2, "linked and agreed")
        await lead.send("/find O-")
        await lead.tap("Donor 000")
        assert "Kênh liên lạc: Telegram, Zalo" in lead.last_text()
        async with db_sessionmaker() as s:
            issued = (await s.exec(select(AuditLog.actor_telegram_id).where(
                AuditLog.action == "channel_code_issued"))).all()
        assert issued == [LEAD_TG]  # the lead who gave the code, in the audit log
    finally:
        await stop_bot(env)
        await zalo.stop()


async def test_me_points_to_me_zalo_when_zalo_runs(db_sessionmaker, db_url):
    env, zalo = await _with_zalo(db_sessionmaker, db_url)
    try:
        await town(db_sessionmaker, n=1)
        env.sim.start_chat(tg_of(0))
        [profile] = await env.user(tg_of(0)).send("/me")
        assert "💬 Zalo: gửi /me zalo để liên kết" in profile["text"]
    finally:
        await stop_bot(env)
        await zalo.stop()


async def test_a_zalo_only_donor_is_asked_first_on_zalo_and_the_board_marks_her(db_sessionmaker, db_url):
    """No Telegram at all: once Zalo runs, a donor who linked it and agreed is a candidate like any other."""
    env, zalo = await _with_zalo(db_sessionmaker, db_url)
    try:
        hid, donors = await town(db_sessionmaker, n=2, abo="O", rh="-")
        async with db_sessionmaker() as s:
            await s.exec(update(Donor).where(Donor.id == donors[1]).values(telegram_id=None))
            s.add(DonorChannel(donor_id=donors[1], channel="zalo", address="zalo-user-mai", rank=1,
                               consent_at=env.clock()))
            await s.commit()
        for chat in (tg_of(0), STAFF_TG, LEAD_TG):
            env.sim.start_chat(chat)
        zalo.known.add("zalo-user-mai")
        rid = await env.engine.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=1,
                                              urgency="urgent", posted_by=STAFF_TG)
        await _drain(env)
        await _until(lambda: zalo.texts_to("zalo-user-mai"), "the call reaches her on Zalo")
        assert f"CO {rid}" in zalo.texts_to("zalo-user-mai")[0]
        await zalo.user_says("zalo-user-mai", f"CO {rid}")
        for _ in range(100):
            board = await env.engine.board_params(rid, STAFF_TG)
            if {d["name"]: d["state"] for d in board["donors"]}.get("Donor 001") == "available":
                break
            await asyncio.sleep(0.05)
        assert {d["name"]: d["state"] for d in board["donors"]}["Donor 001"] == "available"
        staff = env.user(STAFF_TG)
        await _drain(env)
        await staff.send(f"/board {rid}")
        assert any("Donor 001" in ln and "💬 Zalo" in ln for ln in staff.last_text().splitlines())
    finally:
        await stop_bot(env)
        await zalo.stop()
