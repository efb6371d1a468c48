"""The request state machine, told as stories (issue 3)."""

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import func, select

from dispatcher.engine import InvalidRequest
from models.dispatch_tables import BloodRequest, OutboxMessage, RequestWave
from dispatcher.ranking import GROUP_REACHABLE, place_of
from models.tables import AuditLog, Club, ClubMembership, Donor, Hospital
from ground.clock import as_utc
from tests.dispatch_helpers import LEAD_TG, STAFF_TG, contacts, make, post, request, town


async def test_a_request_asks_the_nearest_few_and_tells_the_hospital(db_sessionmaker):
    hid, donors = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await sender.run_until_idle()
    cs = await contacts(db_sessionmaker, rid)
    assert 3 <= len(cs) <= 12  # sized for 1 unit, far from all 40
    assert all(c.state == "notified" for c in cs)
    dist = [c.distance_km for c in cs]
    assert dist == sorted(dist)
    assert tg.kinds(STAFF_TG) == ["posted"]
    assert tg.kinds().count("call") == len(cs)
    req = await request(db_sessionmaker, rid)
    assert (req.state, req.wave_no, req.target_available) == ("dispatching", 1, 2)


async def test_enough_available_covers_the_request_and_stands_everyone_else_down(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await d.attach_board(rid, STAFF_TG, 1, None)
    await sender.run_until_idle()
    first, second, *others = await contacts(db_sessionmaker, rid)
    r1 = await d.record_answer(rid, "available", first.token, donor_id=first.donor_id)
    assert r1.outcome == "accepted" and not r1.covered
    r2 = await d.record_answer(rid, "available", second.token, donor_id=second.donor_id)
    assert r2.covered
    await sender.run_until_idle()
    req = await request(db_sessionmaker, rid)
    assert req.state == "covered"
    states = {c.donor_id: c.state for c in await contacts(db_sessionmaker, rid)}
    assert [states[o.donor_id] for o in others] == ["stood_down"] * len(others)
    assert tg.kinds().count("stand_down") == len(others)
    # The board shows both (one coalesced edit); reaching the goal is also a message of its own.
    assert tg.kinds(STAFF_TG) == ["posted", "board", "covered"]
    board = await d.board_params(rid, STAFF_TG)
    assert [x["name"] for x in board["donors"]] == [f"Donor {i:03d}" for i in (first.donor_id - 1,
                                                                                second.donor_id - 1)]
    assert board["donors"][0]["phone"] and board["confirmed"] == 2 and board["state"] == "covered"
    # later ticks change nothing
    clock.advance(hours=1)
    assert await d.tick(rid) is None
    assert len(await contacts(db_sessionmaker, rid)) == len(others) + 2


async def test_a_decline_is_replaced_at_once_and_silence_after_the_window(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await sender.run_until_idle()
    before = await contacts(db_sessionmaker, rid)
    assert (await d.record_answer(rid, "declined", before[0].token, donor_id=before[0].donor_id)).outcome == "declined"
    after_decline = await contacts(db_sessionmaker, rid)
    assert 1 <= len(after_decline) - len(before) <= 2  # replaced at once, not a whole new wave
    clock.advance(minutes=21)  # urgent: a 20-minute window, a 20-minute wave interval
    await d.tick(rid)
    cs = await contacts(db_sessionmaker, rid)
    assert {c.state for c in cs[: len(before)]} == {"declined", "no_answer"}
    assert len(cs) > len(after_decline)
    assert (await request(db_sessionmaker, rid)).wave_no == 2


async def test_a_donor_the_day_before_her_interval_ends_is_not_asked_and_on_the_day_she_is(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=1)
    d, sender, tg, clock = make(db_sessionmaker, min_wave=1)
    local_today = clock().date()  # 09:00 local, same calendar day
    async with db_sessionmaker() as s:
        donor = await s.get(Donor, donors[0])
        donor.last_donation_date = local_today - timedelta(days=83)
        donor.last_donation_component = "whole_blood"
        await s.commit()
    rid = await post(d, hid)
    assert await contacts(db_sessionmaker, rid) == []
    assert (await request(db_sessionmaker, rid)).state == "exhausted"
    async with db_sessionmaker() as s:
        (await s.get(Donor, donors[0])).last_donation_date = local_today - timedelta(days=84)
        await s.commit()
    rid2 = await post(d, hid)
    assert [c.donor_id for c in await contacts(db_sessionmaker, rid2)] == donors


async def test_when_nobody_is_left_the_hospital_and_the_lead_are_told_with_the_call_list(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=3)
    async with db_sessionmaker() as s:
        club = (await s.exec(select(Club))).one()
        for i in range(2):
            s.add(Donor(full_name=f"Offline {i}", phone=f"+849770000{i}", abo="O", rh="+", lat=21.03, lon=105.85,
                        geo_cell=None))
        await s.flush()
        for dn in (await s.exec(select(Donor).where(Donor.telegram_id.is_(None)))).all():
            s.add(ClubMembership(club_id=club.id, donor_id=dn.id))
        await s.commit()
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await sender.run_until_idle()
    for c in await contacts(db_sessionmaker, rid):
        await d.record_answer(rid, "declined", c.token, donor_id=c.donor_id)
    await sender.run_until_idle()
    assert (await request(db_sessionmaker, rid)).state == "exhausted"
    # three donors are under the rare-pool threshold: the lead was paged at once, then told again
    assert tg.kinds(STAFF_TG)[-1] == "exhausted" and tg.kinds(LEAD_TG) == ["lead_rare", "lead_exhausted"]
    async with db_sessionmaker() as s:
        note = (await s.exec(select(OutboxMessage).where(OutboxMessage.kind == "lead_exhausted"))).one()
        staff = (await s.exec(select(OutboxMessage).where(OutboxMessage.kind == "exhausted"))).one()
        audit = (await s.exec(select(AuditLog).where(AuditLog.action == "call_list_sent"))).all()
    assert sorted(e.name for e in tg.params[note.key].call_list) == ["Offline 0", "Offline 1"]
    assert "call_list" not in note.params  # delivered: the outbox keeps no copy of the phones
    assert "call_list" not in staff.params  # names and phones go to the club's lead only
    assert len(audit) == 2  # who saw call lists (DOMAIN.md §7)


async def test_an_exhausted_request_still_hears_the_donors_who_read_their_call_late(db_sessionmaker):
    # Nobody new is left to ask, but the blood is still needed: the asks out are not stood down, and a
    # "yes" read after the response window counts, up to covering the request (the lab's Rh− streams
    # lost a quarter of their late "yes" to the stand-down; BENCHMARKS.md "Policy lab").
    hid, _ = await town(db_sessionmaker, n=3)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, urgency="critical")
    await sender.run_until_idle()
    first, *late = await contacts(db_sessionmaker, rid)
    assert len(late) == 2 and (await request(db_sessionmaker, rid)).target_available == 2
    await d.record_answer(rid, "declined", first.token, donor_id=first.donor_id)
    clock.advance(minutes=11)  # critical: a 10-minute window; nobody else within reach
    await d.tick(rid)
    await sender.run_until_idle()
    assert (await request(db_sessionmaker, rid)).state == "exhausted"
    assert "stand_down" not in tg.kinds()
    assert {c.state for c in await contacts(db_sessionmaker, rid)} == {"declined", "no_answer"}
    clock.advance(minutes=20)
    one = await d.record_answer(rid, "available", late[0].token, donor_id=late[0].donor_id)
    assert one.outcome == "accepted" and not one.covered
    two = await d.record_answer(rid, "available", late[1].token, donor_id=late[1].donor_id)
    assert two.outcome == "accepted" and two.covered
    await sender.run_until_idle()
    assert (await request(db_sessionmaker, rid)).state == "covered"
    assert tg.kinds(STAFF_TG) == ["posted", "exhausted", "covered"]  # told again: it got its donors after all


async def test_the_silent_asks_of_an_exhausted_request_are_stood_down_at_its_deadline(db_sessionmaker):
    hid, _ = await town(db_sessionmaker, n=3)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, urgency="critical")
    await sender.run_until_idle()
    clock.advance(minutes=11)
    await d.tick(rid)
    await sender.run_until_idle()
    assert (await request(db_sessionmaker, rid)).state == "exhausted" and "stand_down" not in tg.kinds()
    late = (await contacts(db_sessionmaker, rid))[0]
    clock.advance(hours=3)  # past the deadline: the deadline job ticks
    await d.tick(rid)
    await sender.run_until_idle()
    assert {c.state for c in await contacts(db_sessionmaker, rid)} == {"stood_down"}
    assert tg.kinds().count("stand_down") == 3
    assert (await d.record_answer(rid, "available", late.token, donor_id=late.donor_id)).outcome == "closed"


async def test_stopped_between_waves_and_started_again_fires_exactly_one_late_wave(db_sessionmaker):
    hid, _ = await town(db_sessionmaker, n=60, spread=0.3)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, urgency="critical")
    await sender.run_until_idle()
    asked_before = len(await contacts(db_sessionmaker, rid))
    # the bot is down for 25 minutes: two wave intervals (10 min) pass unseen
    clock.advance(minutes=25)
    d2, sender2, tg2, _ = make(db_sessionmaker, clock=clock)
    armed = await d2.rearm_all()
    assert [r for r, _ in armed] == [rid]
    await d2.rearm_all()  # a second wake-up (duplicated job, second process start) changes nothing
    await d2.tick(rid)
    async with db_sessionmaker() as s:
        waves = (await s.exec(select(RequestWave.wave_no).where(RequestWave.request_id == rid))).all()
    assert sorted(waves) == [1, 2]
    assert len(await contacts(db_sessionmaker, rid)) > asked_before
    assert (await request(db_sessionmaker, rid)).next_wave_at == clock() + timedelta(minutes=10)


async def test_a_press_counted_twice_counts_once(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, units=2)
    await sender.run_until_idle()
    c = (await contacts(db_sessionmaker, rid))[0]
    results = await asyncio.gather(*[d.record_answer(rid, "available", c.token, telegram_id=None, donor_id=c.donor_id)
                                     for _ in range(3)])
    assert sorted(r.outcome for r in results) == ["accepted", "duplicate", "duplicate"]
    await sender.run_until_idle()
    assert len((await d.board_params(rid, STAFF_TG))["donors"]) == 1
    assert tg.kinds().count("confirmed") == 1


async def test_forged_and_replayed_answers_are_refused_and_logged(db_sessionmaker):
    hid, donors = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    rid_other = await post(d, hid)
    await sender.run_until_idle()
    mine, other = (await contacts(db_sessionmaker, rid))[:2]
    asked = {c.donor_id for c in await contacts(db_sessionmaker, rid)}
    stranger = next(x for x in donors if x not in asked)
    assert (await d.record_answer(rid, "available", "0" * 12, donor_id=mine.donor_id)).outcome == "refused"
    assert (await d.record_answer(rid, "available", mine.token, donor_id=other.donor_id)).outcome == "refused"
    assert (await d.record_answer(rid, "available", mine.token, donor_id=stranger)).outcome == "refused"
    assert (await d.record_answer(rid_other, "available", mine.token, donor_id=mine.donor_id)).outcome == "refused"
    assert (await d.record_answer(999, "available", mine.token, donor_id=mine.donor_id)).outcome == "refused"
    assert (await d.desk.cancel(rid, by=STAFF_TG)).ok
    assert (await d.record_answer(rid, "available", mine.token, donor_id=mine.donor_id)).outcome == "closed"
    assert {c.state for c in await contacts(db_sessionmaker, rid)} == {"stood_down"}
    async with db_sessionmaker() as s:
        actions = (await s.exec(select(AuditLog.action))).all()
    assert actions.count("dispatch_answer_refused") == 5 and actions.count("dispatch_answer_closed") == 1


async def test_two_requests_at_once_never_commit_the_same_donor(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=4)
    d, sender, tg, clock = make(db_sessionmaker, min_wave=4)
    a = await post(d, hid)
    b = await post(d, hid)
    ca = {c.donor_id: c for c in await contacts(db_sessionmaker, a)}
    cb = {c.donor_id: c for c in await contacts(db_sessionmaker, b)}
    both = sorted(set(ca) & set(cb))
    assert both
    x = both[0]
    r = await asyncio.gather(d.record_answer(a, "available", ca[x].token, donor_id=x),
                             d.record_answer(b, "available", cb[x].token, donor_id=x))
    assert sorted(o.outcome for o in r) == ["accepted", "committed_elsewhere"]
    # a donor committed to an open request is not asked for a third one
    c = await post(d, hid)
    assert x not in {c_.donor_id for c_ in await contacts(db_sessionmaker, c)}


@pytest.mark.parametrize("bad", [dict(abo="C"), dict(rh="?"), dict(units=0), dict(units=500), dict(units=1.5),
                                 dict(component="serum"), dict(urgency="soon")])
async def test_an_impossible_request_gets_a_clear_answer_and_creates_nothing(db_sessionmaker, bad):
    hid, _ = await town(db_sessionmaker, n=2)
    d, sender, tg, clock = make(db_sessionmaker)
    with pytest.raises(InvalidRequest) as exc:
        await post(d, hid, **bad)
    assert exc.value.text.render()
    async with db_sessionmaker() as s:
        assert (await s.exec(select(func.count()).select_from(BloodRequest))).one() == 0


async def test_a_rare_type_asks_every_match_who_can_arrive_in_time_at_once_and_pages_the_lead(db_sessionmaker):
    hid, donors = await town(db_sessionmaker, n=15, rh="-", spread=2.0, linked=True)  # up to ~200 km away
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, rh="-", urgency="critical")
    await sender.run_until_idle()
    req = await request(db_sessionmaker, rid)
    assert req.rare
    asked = await contacts(db_sessionmaker, rid)
    in_time = await in_time_donors(db_sessionmaker, d, hid, req)
    # Issue 9: everyone who can arrive before the deadline, at once; the far ones only when those run out.
    assert 0 < len(in_time) < 15 and {c.donor_id for c in asked} == in_time
    assert tg.kinds(LEAD_TG) == ["lead_rare"]


async def test_quiet_hours_hold_back_a_planned_request_but_not_a_critical_one(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    clock.now = clock.now.replace(hour=16)  # 23:00 in Hà Nội
    planned = await post(d, hid, urgency="planned")
    assert await contacts(db_sessionmaker, planned) == []
    critical = await post(d, hid, urgency="critical")
    assert len(await contacts(db_sessionmaker, critical)) > 0
    clock.advance(hours=7, minutes=31)  # 06:31
    await d.tick(planned)
    assert len(await contacts(db_sessionmaker, planned)) > 0


async def test_a_donor_who_can_no_longer_come_reopens_a_covered_request(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid)
    await sender.run_until_idle()
    a, b, *_ = await contacts(db_sessionmaker, rid)
    await d.record_answer(rid, "available", a.token, donor_id=a.donor_id)
    await d.record_answer(rid, "available", b.token, donor_id=b.donor_id)
    assert (await request(db_sessionmaker, rid)).state == "covered"
    board = await d.board_params(rid, STAFF_TG)
    assert board["confirmed"] == 2 and [c["name"] for c in board["donors"]] != []
    assert (await d.record_answer(rid, "declined", b.token, donor_id=b.donor_id)).outcome == "declined"
    req = await request(db_sessionmaker, rid)
    assert req.state == "dispatching"
    states = [c.state for c in await contacts(db_sessionmaker, rid)]
    assert states.count("queued") >= 1  # new donors asked at once
    board = await d.board_params(rid, STAFF_TG)
    assert board["confirmed"] == 1 and [x["contact_id"] for x in board["donors"]] == [a.id]


async def test_cancelling_stands_down_everyone_including_those_on_their_way(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, units=2)
    await sender.run_until_idle()
    a = (await contacts(db_sessionmaker, rid))[0]
    await d.record_answer(rid, "available", a.token, donor_id=a.donor_id)
    assert (await d.desk.cancel(rid, by=STAFF_TG)).ok
    assert not (await d.desk.cancel(rid, by=STAFF_TG)).ok
    await sender.run_until_idle()
    states = {c.donor_id: c.state for c in await contacts(db_sessionmaker, rid)}
    assert states.pop(a.donor_id) == "released"  # she said available: thanked and let go
    assert set(states.values()) == {"stood_down"}
    # she is free for the next request at once
    rid2 = await post(d, hid, units=3)
    assert a.donor_id in {c.donor_id for c in await contacts(db_sessionmaker, rid2)}


async def test_at_the_deadline_the_request_expires_and_the_silent_are_stood_down(db_sessionmaker):
    hid, _ = await town(db_sessionmaker)
    d, sender, tg, clock = make(db_sessionmaker)
    rid = await post(d, hid, urgency="critical")
    await sender.run_until_idle()
    clock.advance(hours=3, minutes=1)
    assert await d.tick(rid) is None
    await sender.run_until_idle()
    assert (await request(db_sessionmaker, rid)).state == "expired"
    assert tg.kinds(STAFF_TG)[-1] == "expired"
    assert "stand_down" in tg.kinds()


async def in_time_donors(sm, d, hid, req) -> set[int]:
    """Donors of the town who could arrive before the request's deadline if asked when it was posted."""
    async with sm() as s:
        hospital = await s.get(Hospital, hid)
        ctx = d._ctx(hospital, req, as_utc(req.created_at))
        rows = (await s.exec(select(Donor))).all()
    return {x.id for x in rows if place_of(x.lat, x.lon, None, None, 0, 0, ctx)[0] == GROUP_REACHABLE}


# ------------------------------------------------------------------ issue 10: a big wave streams
class Died(Exception):
    """The process was killed right after the wave's first chunk was committed."""


def _die():
    raise Died


@pytest.mark.parametrize("then", ["restart", "an answer before the restart"])
async def test_a_big_wave_commits_its_best_chunk_first_and_is_completed_once_after_a_crash(db_sessionmaker, then):
    """A 300-donor rare wave used to be written whole before the sender was woken (the 30th call left
    2–2.5 s after the tap). Now the best 30 are committed and the sender woken first; if the process
    dies before the rest is written, the next tick finishes the wave: every donor asked once, one wave."""
    sm = db_sessionmaker
    hid, donors = await town(sm, n=300, rh="-", spread=0.3)
    d, sender, tg, clock = make(sm, quiet_start="00:00", quiet_end="00:00")
    d.wakeups.on_outbox_written(_die)  # the first chunk's calls are written: the process dies
    with pytest.raises(Died):
        await d.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=2,
                               urgency="critical", posted_by=STAFF_TG, chat_id=STAFF_TG, board_message_id=555)
    first = await contacts(sm, first_rid := (await _only_request(sm)))
    assert len(first) == d.first_chunk == 30  # committed alone, before the rest

    d2, sender2, tg2, _ = make(sm, clock=clock, quiet_start="00:00", quiet_end="00:00")  # only the database is left
    if then == "restart":
        await d2.rearm_all()
    else:
        declined = first[0]
        assert (await d2.record_answer(first_rid, "declined", declined.token,
                                       donor_id=declined.donor_id)).outcome == "declined"
    await sender2.run_until_idle()
    cs = await contacts(sm, first_rid)
    assert len(cs) == len({c.donor_id for c in cs}) == 300  # every donor asked, once
    assert {c.wave_no for c in cs} == {1}
    async with sm() as s:
        waves = (await s.exec(select(RequestWave.wave_no, RequestWave.asked)
                              .where(RequestWave.request_id == first_rid))).all()
        calls = (await s.exec(select(OutboxMessage.key).where(OutboxMessage.kind == "call"))).all()
    assert waves == [(1, 300)]  # not skipped, not doubled
    assert len(calls) == len(set(calls)) == 300
    assert tg2.kinds().count("call") == 300
    board = await d2.board_params(first_rid, STAFF_TG)
    assert board["asked"] == 300


async def test_a_big_wave_without_a_crash_asks_everyone_once_and_the_board_counts_them_all(db_sessionmaker):
    sm = db_sessionmaker
    hid, _ = await town(sm, n=300, rh="-", spread=0.3)
    d, sender, tg, clock = make(sm, quiet_start="00:00", quiet_end="00:00")
    woken_with: list[int] = []
    d.wakeups.on_outbox_written(lambda: woken_with.append(len(woken_with)))
    rid = await d.create_request(hospital_id=hid, abo="O", rh="-", component="red_cells", units=2,
                                 urgency="critical", posted_by=STAFF_TG, chat_id=STAFF_TG, board_message_id=555)
    assert len(woken_with) >= 300 // d.first_chunk  # the sender is woken after each chunk, the first one first
    await sender.run_until_idle()
    cs = await contacts(sm, rid)
    assert len(cs) == len({c.donor_id for c in cs}) == 300
    # Best-ranked first (a lower score ranks higher): the first chunk's contacts outrank every later one.
    first, later = cs[:d.first_chunk], cs[d.first_chunk:]
    assert max(c.score for c in first) <= min(c.score for c in later)
    async with sm() as s:
        assert (await s.exec(select(RequestWave.wave_no, RequestWave.asked)
                             .where(RequestWave.request_id == rid))).all() == [(1, 300)]
    assert tg.kinds().count("call") == 300
    assert (await d.board_params(rid, STAFF_TG))["asked"] == 300


async def _only_request(sm) -> int:
    async with sm() as s:
        return (await s.exec(select(BloodRequest.id))).one()
