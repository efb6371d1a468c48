"""Every asked donor is in exactly one board bucket, and the board's counts add up (issue 9).

The property runs the real engine on a real (SQLite) database through random sequences of
donors' answers and the desk's outcomes, undos, stops and closings.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.board import BUCKET_OF, BUCKETS, buckets
from models.dispatch_tables import COMMITTED_CONTACT_STATES, SAID_AVAILABLE_STATES, ContactState
from models.engine import create_schema, make_engine, make_sessionmaker
from tests.dispatch_helpers import STAFF_TG, contacts, make, post, town


def test_every_contact_state_has_exactly_one_bucket():
    assert set(BUCKET_OF) == {s.value for s in ContactState}
    assert set(BUCKET_OF.values()) == set(BUCKETS)
    assert sum(buckets({s.value: 1 for s in ContactState}).values()) == len(ContactState)


ANSWERS = ("available", "declined", "en_route", "arrived")
OUTCOMES = ("arrived", "no_show", "deferred", "donated")
step = st.one_of(
    st.tuples(st.just("answer"), st.integers(0, 11), st.sampled_from(ANSWERS)),
    st.tuples(st.just("mark"), st.integers(0, 11), st.sampled_from(OUTCOMES)),
    st.tuples(st.just("undo"), st.integers(0, 11), st.just("")),
    st.tuples(st.just("wait"), st.integers(1, 20), st.just("")),
    st.tuples(st.sampled_from(["stop", "units", "close"]), st.just(0), st.just("")),
)


async def _run(steps: list[tuple[str, int, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'p.db'}")
        await create_schema(db)
        sm = make_sessionmaker(db)
        try:
            hid, _ = await town(sm, n=12, spread=0.03)
            d, _sender, _tg, clock = make(sm)
            rid = await post(d, hid, units=2, chat_id=STAFF_TG)
            for kind, i, what in steps:
                cs = await contacts(sm, rid)
                c = cs[i % len(cs)] if cs else None
                if kind == "answer" and c is not None:
                    await d.record_answer(rid, what, c.token, donor_id=c.donor_id)
                elif kind == "mark" and c is not None:
                    await d.desk.mark(rid, c.id, what, by=STAFF_TG, volume_ml=350, category="7d")
                elif kind == "undo" and c is not None:
                    await d.desk.undo(rid, c.id, by=STAFF_TG)
                elif kind == "wait":
                    clock.advance(minutes=i)
                    await d.tick(rid)
                elif kind == "stop":
                    await d.desk.mark_covered(rid, by=STAFF_TG)
                elif kind == "units":
                    req = await d.board_params(rid, STAFF_TG)
                    await d.desk.add_units(rid, by=STAFF_TG, expected_units=req["units"], add=1)
                elif kind == "close":
                    await d.desk.close(rid, by=STAFF_TG)
                board = await d.board_params(rid, STAFF_TG)
                states = Counter(c.state for c in await contacts(sm, rid))
                # Every asked donor in exactly one bucket: the buckets add up to the number asked…
                assert sum(board["buckets"].values()) == board["asked"] == sum(states.values())
                # …and each bucket holds exactly the donors whose state maps to it.
                for bucket in BUCKETS:
                    assert board["buckets"][bucket] == sum(n for s, n in states.items() if BUCKET_OF[s] == bucket)
                assert board["confirmed"] == sum(states[s] for s in COMMITTED_CONTACT_STATES)
                assert board["donated"] == board["buckets"]["donated"]
                # The named donors are those who said available, each once.
                named = [x["contact_id"] for x in board["donors"]]
                assert len(named) == len(set(named)) == sum(states[s] for s in SAID_AVAILABLE_STATES)
                # Minutes to cover are never the staff's "enough now".
                if board["state"] == "covered" and board["close_reason"] == "stopped":
                    assert board["headline"]["covered"] is None or board["headline"]["covered"] >= 0
        finally:
            await db.dispose()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=14))
def test_every_asked_donor_is_in_exactly_one_bucket(steps):
    asyncio.run(_run(steps))


def test_undo_is_refused_after_ten_minutes_in_the_engine():
    async def run():
        with tempfile.TemporaryDirectory() as tmp:
            db = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'u.db'}")
            await create_schema(db)
            sm = make_sessionmaker(db)
            try:
                hid, _ = await town(sm, n=6)
                d, _sender, _tg, clock = make(sm)
                rid = await post(d, hid, units=1, chat_id=STAFF_TG)
                c = (await contacts(sm, rid))[0]
                await d.record_answer(rid, "available", c.token, donor_id=c.donor_id)
                assert (await d.desk.mark(rid, c.id, "no_show", by=STAFF_TG)).ok
                clock.advance(minutes=10, seconds=1)
                assert (await d.desk.undo(rid, c.id, by=STAFF_TG)).outcome == "too_late"
                assert (await contacts(sm, rid))[0].state == "no_show"
            finally:
                await db.dispose()
    asyncio.run(run())
