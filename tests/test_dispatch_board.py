"""The live board's plumbing without Telegram: coalesced edits, fresh content at send time, privacy."""

from __future__ import annotations

from sqlmodel import select

from models.dispatch_tables import OutboxMessage
from tests.dispatch_helpers import STAFF_TG, contacts, make, town
from tests.dispatch_helpers import post as post_request

GROUP = -100_555


async def post(d, hid, units=1):
    return await post_request(d, hid, units=units, chat_id=STAFF_TG)


async def test_a_burst_of_answers_becomes_one_edit_showing_all_of_them(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, units=3)
    await d.attach_board(rid, STAFF_TG, 1, "en")
    await sender.run_until_idle()
    edits_before = tg.kinds(STAFF_TG).count("board")
    first, second, third, *_ = await contacts(db_sessionmaker, rid)
    for c in (first, second, third):  # three answers before the sender's next turn
        await d.record_answer(rid, "available", c.token, donor_id=c.donor_id)
    async with db_sessionmaker() as s:
        waiting = (await s.exec(select(OutboxMessage).where(OutboxMessage.kind == "board",
                                                            OutboxMessage.state == "pending"))).all()
    assert len(waiting) == 1 and waiting[0].params == {"request_id": rid}  # content is read when sent
    await sender.run_until_idle()
    assert tg.kinds(STAFF_TG).count("board") == edits_before + 1
    board = await d.board_params(rid, STAFF_TG)
    assert board["confirmed"] == 3 and len(board["donors"]) == 3


async def test_a_newer_board_in_the_same_chat_replaces_the_older_one(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await d.attach_board(rid, STAFF_TG, 1, "en")
    await d.attach_board(rid, STAFF_TG, 2, "en")  # /board again: the new message is the live one
    await d.attach_board(rid, GROUP, 3, "vi")
    await sender.run_until_idle()
    c = (await contacts(db_sessionmaker, rid))[0]
    await d.record_answer(rid, "available", c.token, donor_id=c.donor_id)
    await sender.run_until_idle()
    edited = [(chat, edit_of) for _t, chat, kind, _k, edit_of in tg.sent if kind == "board"]
    assert sorted(edited) == [(GROUP, 3), (STAFF_TG, 2)]


async def test_only_donors_who_accepted_are_named_and_a_group_never_gets_a_phone(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, units=2)
    await sender.run_until_idle()
    yes, no, *_ = await contacts(db_sessionmaker, rid)
    await d.record_answer(rid, "available", yes.token, donor_id=yes.donor_id)
    await d.record_answer(rid, "declined", no.token, donor_id=no.donor_id)
    private = await d.board_params(rid, STAFF_TG)
    group = await d.board_params(rid, GROUP)
    assert [x["contact_id"] for x in private["donors"]] == [yes.id] and private["buckets"]["declined"] == 1
    assert private["donors"][0]["phone"].startswith("+84") and group["donors"][0]["phone"] is None
    assert group["group"] and not private["group"]
