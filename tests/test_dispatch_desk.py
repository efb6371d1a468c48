"""The desk's actions in the engine: outcomes, units, closing, and what the wave model learns from them."""

from __future__ import annotations

from sqlmodel import select

from models.dispatch_tables import DonorCommitment
from models.tables import Donation, Donor, Hospital
from tests.dispatch_helpers import STAFF_TG, contacts, make, town
from tests.dispatch_helpers import post as post_request
from tests.dispatch_helpers import request as req_of


async def post(d, hid, units=1):
    return await post_request(d, hid, units=units, chat_id=STAFF_TG)


async def accept(d, sm, rid, n):
    cs = [c for c in await contacts(sm, rid) if c.state in ("queued", "notified")][:n]
    for c in cs:
        assert (await d.record_answer(rid, "available", c.token, donor_id=c.donor_id)).outcome == "accepted"
    return cs


async def test_no_shows_teach_the_wave_model_to_ask_more(db_sessionmaker):
    hid, _ = await town(db_sessionmaker, n=60)
    d, sender, tg, clock = make(db_sessionmaker)
    async with db_sessionmaker() as s:
        prior = await d._rates(s, await s.get(Hospital, hid))
    for _ in range(3):
        rid = await post(d, hid, units=2)
        await sender.run_until_idle()
        for c in await accept(d, db_sessionmaker, rid, 2):
            assert (await d.desk.mark(rid, c.id, "no_show", by=STAFF_TG)).ok
        await d.desk.close(rid, by=STAFF_TG)
    async with db_sessionmaker() as s:
        learned = await d._rates(s, await s.get(Hospital, hid))
    assert learned.donates_given_available < prior.donates_given_available


async def test_a_no_show_reopens_a_covered_request_and_frees_the_donor(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await sender.run_until_idle()
    a, b = await accept(d, db_sessionmaker, rid, 2)
    assert (await req_of(db_sessionmaker, rid)).state == "covered"
    assert (await d.desk.mark(rid, a.id, "no_show", by=STAFF_TG)).ok
    req = await req_of(db_sessionmaker, rid)
    assert req.state == "dispatching" and req.covered_at is not None  # first cover time kept for the report
    async with db_sessionmaker() as s:
        assert await s.get(DonorCommitment, a.donor_id) is None
        assert await s.get(DonorCommitment, b.donor_id) is not None
    assert (await d.desk.mark(rid, a.id, "no_show", by=STAFF_TG)).outcome == "duplicate"
    assert (await d.desk.mark(rid, a.id, "donated", by=STAFF_TG, volume_ml=350)).outcome == "not_accepted"


async def test_more_units_reopen_a_covered_request_and_a_stale_press_adds_nothing(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await sender.run_until_idle()
    await accept(d, db_sessionmaker, rid, 2)
    asked_before = len(await contacts(db_sessionmaker, rid))
    assert (await d.desk.add_units(rid, by=STAFF_TG, expected_units=1, add=2)).ok
    assert (await d.desk.add_units(rid, by=STAFF_TG, expected_units=1, add=2)).outcome == "duplicate"
    assert (await d.desk.add_units(rid, by=STAFF_TG, expected_units=3, add=50)).outcome == "bad_units"
    req = await req_of(db_sessionmaker, rid)
    # The stop target for three units at the request's urgency, more than the two "yes" it had.
    assert (req.units, req.state) == (3, "dispatching") and req.target_available == d.stop_target(3, req.urgency) > 2
    assert len(await contacts(db_sessionmaker, rid)) > asked_before  # asking resumed at once


async def test_donations_covering_the_units_fulfil_the_request_and_release_the_rest(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await sender.run_until_idle()
    a, b = await accept(d, db_sessionmaker, rid, 2)
    assert (await d.desk.mark(rid, a.id, "arrived", by=STAFF_TG)).ok
    result = await d.desk.mark(rid, a.id, "donated", by=STAFF_TG, volume_ml=450)
    assert result.ok and result.detail["count"] == 1
    req = await req_of(db_sessionmaker, rid)
    assert (req.state, req.close_reason) == ("fulfilled", "donations")
    states = {c.id: c.state for c in await contacts(db_sessionmaker, rid)}
    assert states[a.id] == "donated" and states[b.id] == "released"
    async with db_sessionmaker() as s:
        assert (await s.exec(select(DonorCommitment))).all() == []
        donor = await s.get(Donor, a.donor_id)
        assert donor.donation_count == 1 and donor.last_donation_component == "red_cells"
        assert len((await s.exec(select(Donation))).all()) == 1
    await sender.run_until_idle()
    assert tg.kinds(donor.telegram_id).count("donated") == 1
    # A late press on the closed request changes nothing.
    assert (await d.desk.mark(rid, b.id, "donated", by=STAFF_TG, volume_ml=350)).outcome == "closed"
    assert (await d.desk.close(rid, by=STAFF_TG)).outcome == "closed"


def test_an_outcome_the_bot_cannot_word_fails_where_it_is_made():
    # The bot words its answer from the outcome alone: a misspelt one must not reach it as "Nothing was changed".
    import pytest

    from dispatcher.desk import DeskOutcome, DeskResult
    from dispatcher.engine import AnswerOutcome, AnswerResult

    assert DeskResult("too_late", 1).outcome is DeskOutcome.too_late
    assert AnswerResult("already_donated", 1).outcome is AnswerOutcome.already_donated
    with pytest.raises(ValueError):
        DeskResult("to_late", 1)
    with pytest.raises(ValueError):
        AnswerResult("accpted", 1)
