"""A donor's channels (issue 15): the migration gives every Telegram donor her Telegram channel."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from models.engine import make_engine
from models.schema import upgrade
from tests.test_migrations import upgrade_to


async def test_the_migration_gives_telegram_donors_their_telegram_channel_and_no_one_else_one(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ch.db'}")
    try:
        await upgrade_to(engine, "93a8ad2a0661")
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO donor (id, full_name, phone, telegram_id, location_approx, area, donation_count,"
                " status, remind_eligible, note, created_at, updated_at, consent_contact_at) VALUES"
                " (1, 'An', '+84900000001', 5551234567, 0, '', 0, 'active', 1, '', '2026-01-01', '2026-01-01',"
                " '2026-01-02 00:00:00'),"
                " (2, 'Binh', '+84900000002', NULL, 0, '', 0, 'active', 1, '', '2026-01-01', '2026-01-01', NULL)"))
            await conn.execute(text(
                "INSERT INTO outbox_message (key, chat_id, kind, params, state, priority, attempts,"
                " next_attempt_at, last_error, created_at) VALUES ('k', 5551234567, 'declined',"
                " '{\"request_id\": 1}', 'pending', 3, 0, '2026-01-01', '', '2026-01-01')"))
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT donor_id, channel, address, rank, consent_at IS NOT NULL FROM donor_channel"))).all()
            outbox = (await conn.execute(text("SELECT channel, address FROM outbox_message"))).all()
        assert [tuple(r) for r in rows] == [(1, "telegram", "5551234567", 0, 1)]
        assert [tuple(r) for r in outbox] == [("telegram", None)]
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- a call moves to the next channel

from functools import partial  # noqa: E402

from sqlmodel import select  # noqa: E402

from dispatcher.channels import next_channel  # noqa: E402
from dispatcher.sender import RateLimiter, Sender  # noqa: E402
from models.dispatch_tables import OutboxMessage  # noqa: E402
from models.tables import AuditLog, DonorChannel  # noqa: E402
from ground.config import SmsConfig  # noqa: E402
from tests.dispatch_helpers import START, STAFF_TG, FakeTelegram, contacts, make, post, request, tg_of, town  # noqa: E402


async def with_sms(sm, donor_ids, *, consent=True):
    async with sm() as s:
        rows = [DonorChannel(donor_id=d, channel="sms", address=f"+8491{d:07d}", rank=1,
                             consent_at=START if consent else None) for d in donor_ids]
        s.add_all(rows)
        await s.commit()
        return {r.donor_id: r.id for r in rows}


def senders(sm, **sms):
    """The dispatcher with its Telegram sender, whose 403s go on to SMS, and an SMS sender on a fake gateway."""
    cfg = SmsConfig(enabled=True, **sms)
    d, tg_sender, tg, clock = make(sm, reroute=partial(next_channel, sms=cfg))
    gateway = FakeTelegram()  # the same fake transport, standing for the gateway: it records what left
    sms_sender = Sender(sm, gateway, cfg.send_config(), clock=clock, channel="sms",
                        limiter=RateLimiter(10_000, 10_000, 10_000, 0), on_unreachable=tg_sender.on_unreachable)
    return d, tg_sender, tg, sms_sender, gateway


async def drain(*senders_):
    for _ in range(5):
        for sender in senders_:
            await sender.run_until_idle()


async def test_a_blocked_telegram_call_goes_on_by_sms_once_and_the_donor_stays_asked(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=3)
    sms_chat = await with_sms(db_sessionmaker, donors[:1])
    d, tg_sender, tg, sms_sender, gateway = senders(db_sessionmaker)
    tg.blocked = {tg_of(i) for i in range(3)}
    rid = await post(d, hid, urgency="critical")
    await drain(tg_sender, sms_sender)
    by_donor = {c.donor_id: c.state for c in await contacts(db_sessionmaker, rid)}
    assert by_donor == {donors[0]: "notified", donors[1]: "unreachable", donors[2]: "unreachable"}
    assert [(chat, kind, key) for _, chat, kind, key, _ in gateway.sent] == [
        (sms_chat[donors[0]], "call", f"call:{rid}:{donors[0]}@sms")]
    async with db_sessionmaker() as s:
        row = (await s.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms"))).one()
    assert (row.state, row.address, row.contact_id is not None) == ("sent", f"+8491{donors[0]:07d}", True)
    # A second 403 for the same call (a retried transaction) writes nothing new.
    async with db_sessionmaker() as s:
        tg_row = (await s.exec(select(OutboxMessage).where(OutboxMessage.key == f"call:{rid}:{donors[0]}"))).one()
        assert await next_channel(s, tg_row, START, SmsConfig(enabled=True)) is None


async def test_sms_is_not_spent_on_an_ordinary_request(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=30)  # O+ among 30: not a rare type
    await with_sms(db_sessionmaker, donors[:1])
    d, tg_sender, tg, sms_sender, gateway = senders(db_sessionmaker)
    tg.blocked = {tg_of(i) for i in range(30)}
    rid = await post(d, hid, urgency="urgent")
    assert not (await request(db_sessionmaker, rid)).rare
    await drain(tg_sender, sms_sender)
    assert {c.state for c in await contacts(db_sessionmaker, rid)} == {"unreachable"}
    assert gateway.sent == []
    async with db_sessionmaker() as s:
        refused = (await s.exec(select(AuditLog).where(AuditLog.action == "channel_refused"))).all()
    assert [(a.subject, a.detail) for a in refused] == [
        (f"request:{rid}", f"donor:{donors[0]} sms: sms only for critical or rare-type requests")]


async def test_an_sms_channel_without_consent_is_never_used(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=2)
    await with_sms(db_sessionmaker, donors, consent=False)
    d, tg_sender, tg, sms_sender, gateway = senders(db_sessionmaker)
    tg.blocked = {tg_of(i) for i in range(2)}
    rid = await post(d, hid, urgency="critical")
    await drain(tg_sender, sms_sender)
    assert {c.state for c in await contacts(db_sessionmaker, rid)} == {"unreachable"}
    assert gateway.sent == []


async def test_the_sms_budget_stops_sms_and_the_donor_goes_to_the_call_list(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=3)
    await with_sms(db_sessionmaker, donors)
    d, tg_sender, tg, sms_sender, gateway = senders(db_sessionmaker, max_per_request=2)
    tg.blocked = {tg_of(i) for i in range(3)}
    rid = await post(d, hid, urgency="critical")
    await drain(tg_sender, sms_sender)
    states = sorted(c.state for c in await contacts(db_sessionmaker, rid))
    assert states == ["notified", "notified", "unreachable"] and len(gateway.sent) == 2
    async with db_sessionmaker() as s:
        refused = (await s.exec(select(AuditLog.detail).where(AuditLog.action == "channel_refused"))).all()
    assert len(refused) == 1 and refused[0].endswith("sms budget of the request spent (2)")


async def test_forget_takes_her_phone_off_the_sms_outbox_and_her_channels_with_her(db_sessionmaker):
    from models.donors import forget

    hid, donors = await town(db_sessionmaker, n=2)
    await with_sms(db_sessionmaker, donors[:1])
    d, tg_sender, tg, sms_sender, gateway = senders(db_sessionmaker)
    tg.blocked = {tg_of(0), tg_of(1)}
    rid = await post(d, hid, urgency="critical")
    await tg_sender.run_until_idle()  # the SMS is written, not yet sent
    async with db_sessionmaker() as s:
        await forget(s, donors[0], now=START, actor="cli")
    async with db_sessionmaker() as s:
        row = (await s.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms"))).one()
        left = (await s.exec(select(DonorChannel))).all()
    assert (row.state, row.address, row.params, left) == ("cancelled", None, {}, [])
    await sms_sender.run_until_idle()
    assert gateway.sent == [] and rid


# --------------------------------------------------------------------------- answers by keyword

from dispatcher.keyword_answers import KeywordAnswers  # noqa: E402


async def sms_donor_called(sm, n=3, **kw):
    """A critical request whose Telegram calls all bounce; the first donor has SMS: her call went by SMS."""
    hid, donors = await town(sm, n=n)
    await with_sms(sm, donors[:1])
    d, tg_sender, tg, sms_sender, gateway = senders(sm)
    tg.blocked = {tg_of(i) for i in range(n)}
    rid = await post(d, hid, urgency="critical", **kw)
    await drain(tg_sender, sms_sender)
    return d, rid, donors, KeywordAnswers(sm, d, clock=d.clock), (tg_sender, sms_sender), gateway


@pytest.mark.parametrize("spelling", ["CO {rid}", "có"])
async def test_co_with_her_code_or_a_bare_co_answers_her_call_and_the_confirmation_follows_by_sms(
        db_sessionmaker, spelling):
    d, rid, donors, answers, senders_, gateway = await sms_donor_called(db_sessionmaker)
    reply = await answers.handle("sms", f"+8491{donors[0]:07d}", spelling.format(rid=rid))
    assert (reply.outcome, reply.text, reply.request_id) == ("accepted", None, rid)
    await drain(*senders_)
    by_donor = {c.donor_id: c.state for c in await contacts(db_sessionmaker, rid)}
    assert by_donor[donors[0]] == "available"
    assert gateway.kinds() == ["call", "confirmed"]  # no map pin by SMS
    assert gateway.sent[1][3].startswith(f"confirmed:{rid}:{donors[0]}:") and gateway.sent[1][3].endswith("@sms")
    # A change of mind: KHONG after CO withdraws her, and she is told by SMS.
    reply = await answers.handle("sms", f"+8491{donors[0]:07d}", f"Không {rid}")
    assert reply.outcome == "withdrew"
    await drain(*senders_)
    assert gateway.kinds()[-1] == "withdrew"


async def test_bad_keyword_answers_change_nothing_and_say_why(db_sessionmaker):
    d, rid, donors, answers, senders_, gateway = await sms_donor_called(db_sessionmaker)
    phone = f"+8491{donors[0]:07d}"
    unknown = await answers.handle("sms", "+84999999999", f"CO {rid}")
    gibberish = await answers.handle("sms", phone, "ai đấy?")
    other = await answers.handle("sms", phone, f"CO {rid + 1}")
    assert (unknown.outcome, unknown.text) == ("unknown_sender", None)
    assert gibberish.outcome == "not_understood" and "CO 123" in gibberish.text.msgid
    assert (other.outcome, other.text.params) == ("no_such_call", {"code": rid + 1})
    assert {c.donor_id: c.state for c in await contacts(db_sessionmaker, rid)}[donors[0]] == "notified"
    async with db_sessionmaker() as s:
        actions = [a.action for a in (await s.exec(select(AuditLog).order_by(AuditLog.id))).all()]
    assert "keyword_answer_unknown_sender" in actions and "dispatch_answer_refused" in actions
    # Closed: the hospital cancels; her late "CO" is told so and records nothing.
    assert (await d.desk.cancel(rid, by=STAFF_TG)).outcome.value == "ok"
    await drain(*senders_)
    assert gateway.kinds()[-1] == "stand_down"
    late = await answers.handle("sms", phone, f"CO {rid}")
    assert late.outcome == "closed" and late.text.params == {"code": rid}
    assert {c.donor_id: c.state for c in await contacts(db_sessionmaker, rid)}[donors[0]] == "stood_down"
    assert (await answers.handle("sms", phone, "co")).outcome == "no_open_call"
