"""The policy lab runs the real engine (issue 13): each policy does what its parameters say, on a
tiny province; a change in the engine changes the simulated outcome; one seed, one result."""

from __future__ import annotations

import asyncio

import pytest

import dispatcher.engine as engine_module
from dispatcher.wave_policy import BLOODCONNECT, BROADCAST, FIXED_10, HAEMOLOGIX, OURS, Sizing, WavePolicy
from dispatcher.waves import Rates, first_wave_size, target_available
from redreserve.policylab import Ask, Behaviour, PolicyLab, World, build_world, lab_settings

# 60 members spread wide, so a radius matters; no Rh− club.
TINY = World(members=60, spread_km=15.0, rare_clubs=(), seed=3)
SILENT = Behaviour(reads=0.0, reads_night=0.0)  # nobody reads: what is asked shows the policy bare
DAY = 600.0  # 10:00 in Hải Phòng, outside quiet hours


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("policylab") / "world.db"
    asyncio.run(build_world(path, TINY))
    return path


async def run(world, policy, asks, behaviour=Behaviour(), seed=1, fresh_each=True, workers=1):
    async with PolicyLab(world=TINY, behaviour=behaviour, seed=seed, template=world, workers=workers) as lab:
        return (await lab.run(policy, asks, fresh_each=fresh_each)).outcomes


def one(units=1, urgency="urgent", abo="O"):
    return [Ask(DAY, abo, "+", units, urgency)]


async def test_one_seed_gives_one_result_and_another_seed_another(world):
    asks = [Ask(DAY, "O", "+", 2, "critical"), Ask(DAY + 30, "A", "+", 1, "urgent")]
    first = await run(world, OURS, asks, fresh_each=False)
    again = await run(world, OURS, asks, fresh_each=False)
    other = await run(world, OURS, asks, seed=2, fresh_each=False)
    assert first == again
    assert sum(o.calls for o in first) > 0
    assert other != first


@pytest.mark.slow
async def test_two_worker_processes_give_what_one_gives(world):
    asks = [Ask(DAY, "O", "+", 2, "critical"), Ask(DAY + 30, "A", "+", 1, "urgent"), Ask(DAY, "B", "+", 1, "planned")]
    alone = await run(world, OURS, asks)
    pooled = await run(world, OURS, asks, workers=2)
    assert pooled == alone and [o.urgency for o in pooled] == ["critical", "urgent", "planned"]


async def test_the_engine_sizes_the_waves_a_change_in_it_changes_the_outcome(world, monkeypatch):
    base = (await run(world, OURS, one(units=2, urgency="critical"), SILENT))[0]
    cfg = lab_settings().dispatch
    assert base.waves[0][2] == first_wave_size(2, Rates(), cfg.confidence.critical, cfg.margin.critical,
                                               minimum=cfg.min_wave)
    monkeypatch.setattr(engine_module, "more_to_ask", lambda **kw: 1)
    patched = (await run(world, OURS, one(units=2, urgency="critical"), SILENT))[0]
    assert patched.waves[0][2] == 1 and patched.calls < base.calls


async def test_a_policy_that_asks_nobody_gets_nothing(world):
    mute = WavePolicy(name="mute", sizing=Sizing.fixed, first_wave=0, later_wave=0, replace_at_once=False)
    o = (await run(world, mute, one(units=1, urgency="critical")))[0]
    assert (o.calls, o.donated, o.enough, o.state) == (0, 0, False, "expired")
    ours = (await run(world, OURS, one(units=1, urgency="critical")))[0]
    assert ours.calls > 0


async def test_broadcast_asks_everyone_within_reach_at_once(world):
    b = (await run(world, BROADCAST, one(), SILENT))[0]
    f = (await run(world, FIXED_10, one(), SILENT))[0]
    assert b.waves[0][0] == 0 and b.waves[0][2] == b.calls > 10
    assert all(w[2] == 0 for w in b.waves[1:])
    assert b.calls >= f.calls  # nobody the waves of 10 reach is left out of the broadcast


async def test_fixed_waves_ask_ten_at_the_urgencys_interval_and_replace_no_one_between(world):
    o = (await run(world, FIXED_10, one(), SILENT))[0]
    asked = [w for w in o.waves if w[2]]
    assert [w[2] for w in asked[:-1]] == [10] * (len(asked) - 1) and 0 < asked[-1][2] <= 10
    assert [round(b[0] - a[0]) for a, b in zip(asked, asked[1:])] == [20] * (len(asked) - 1)
    declining = Behaviour(reads=1.0, says_available=0.0, declines=1.0)
    d = (await run(world, FIXED_10, one(), declining))[0]
    assert d.calls == sum(w[2] for w in d.waves)  # a decline waits for the next wave


async def test_ours_replaces_each_decline_at_once(world):
    declining = Behaviour(reads=1.0, says_available=0.0, declines=1.0)
    o = (await run(world, OURS, one(), declining))[0]
    assert o.calls > sum(w[2] for w in o.waves)  # asks between the waves: each decline replaced


async def test_bloodconnect_over_asks_every_three_minutes_within_15_km_then_retries_hourly(world):
    o = (await run(world, BLOODCONNECT, one(units=2), SILENT))[0]
    assert o.waves[0][2] == 2 + 2 and o.waves[1][2] == 2 + 1  # nobody answers: 2 missing, +2 then +1
    assert round(o.waves[1][0] - o.waves[0][0]) == 3
    assert {w[1] for w in o.waves} == {15.0}
    gaps = [round(b[0] - a[0]) for a, b in zip(o.waves, o.waves[1:])]
    assert gaps[-3:] == [60, 60, 60] and set(gaps[:-3]) == {3}  # three hourly retries, then it gives up
    assert o.state == "exhausted"


async def test_haemologix_asks_two_per_unit_at_least_ten_every_ten_minutes_doubling_to_100_km(world):
    o = (await run(world, HAEMOLOGIX, one(units=1, abo="A"), SILENT))[0]
    assert o.waves[0][2] == 10 and all(w[2] <= 10 for w in o.waves)  # a rung asks at most max(10, 2 × 1)
    assert [w[1] for w in o.waves[:5]] == [10.0, 20.0, 40.0, 80.0, 100.0]
    assert {round(b[0] - a[0]) for a, b in zip(o.waves, o.waves[1:])} == {10}
    assert o.state == "exhausted"  # handed off: the engine pages the leads
    assert HAEMOLOGIX.wave_size(units=8, missing=8, first=True, firing=True, model=0) == 16
    assert HAEMOLOGIX.wave_size(units=40, missing=40, first=False, firing=True, model=0) == 50


async def test_units_added_at_the_desk_keep_the_policys_stop_margin(world, tmp_path):
    # BloodConnect stops at one "yes" per unit: two units after the desk adds one; ours at [dispatch] margin's.
    import random
    import shutil

    from dispatcher.engine import Dispatcher
    from ground.clock import FrozenClock
    from models.dispatch_tables import BloodRequest
    from models.engine import make_engine, make_sessionmaker
    from redreserve.policylab import START, STAFF_TG, lab_settings

    shutil.copyfile(world, tmp_path / "w.db")
    db = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        sm = make_sessionmaker(db)
        cfg = lab_settings().dispatch
        ours = target_available(2, Rates.of(cfg.rates), cfg.margin.urgent)
        assert ours > 2
        for policy, two_units in ((BLOODCONNECT, 2), (OURS, ours)):
            engine = Dispatcher(sm, lab_settings(), clock=FrozenClock(START), rng=random.Random(1), policy=policy)
            rid = await engine.create_request(hospital_id=1, abo="O", rh="+", component="red_cells", units=1,
                                              urgency="urgent", posted_by=STAFF_TG)
            assert (await engine.desk.add_units(rid, by=STAFF_TG, expected_units=1, add=1)).ok
            async with sm() as s:
                assert (await s.get(BloodRequest, rid)).target_available == two_units
    finally:
        await db.dispose()


async def test_ours_sizes_each_urgency_from_its_own_dispatch_margin_and_confidence(world):
    # One home for the defaults ([dispatch]): an urgent request's first wave is the wave model's at the
    # urgent margin and confidence, and a larger urgent margin set there asks more, the critical one alone.
    async def first_wave(settings, urgency):
        async with PolicyLab(world=TINY, behaviour=SILENT, seed=1, template=world, settings=settings) as lab:
            return (await lab.run(OURS, one(units=2, urgency=urgency), fresh_each=True)).outcomes[0].waves[0][2]

    cfg = lab_settings().dispatch
    assert await first_wave(lab_settings(), "urgent") == first_wave_size(
        2, Rates(), cfg.confidence.urgent, cfg.margin.urgent, minimum=cfg.min_wave)
    wider = lab_settings(margin={"urgent": 2.5})
    assert await first_wave(wider, "urgent") == first_wave_size(
        2, Rates(), cfg.confidence.urgent, 2.5, minimum=cfg.min_wave) > await first_wave(lab_settings(), "urgent")
    assert await first_wave(wider, "critical") == await first_wave(lab_settings(), "critical")
