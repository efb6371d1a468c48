"""Donors are told the truth when a request changes course (issue 9, follow-up).

Through the real bot and the Bot API simulator. A donor told "no longer needed" when the
request was covered is asked again, with a call that says so, when it reopens because a
counted donor withdrew; a donor released on fulfilment is told so even after an earlier
stand-down for the same request; undoing the donation that fulfilled a request asks again
the donors it had released. Nobody gets two calls for one wave, and a repeated press
writes nothing twice.
"""

from __future__ import annotations

from sqlmodel import select

from models.dispatch_tables import OutboxMessage, RequestContact
from tests.test_journey_arrival import call_of, contacts, state
from tests.test_journey_dispatch import env, post, seed  # noqa: F401 (env is a fixture)

NOT_NEEDED = "No longer needed — enough donors are on their way"


def texts(user) -> list[str]:
    return [m.get("text") or "" for m in user.bot_messages()]


def again_calls(user) -> list[dict]:
    return [m for m in user.bot_messages() if "Needed again" in (m.get("text") or "")]


async def calls_written(env, donor_id: int) -> int:
    async with env.sessionmaker() as s:
        c = (await s.exec(select(RequestContact).where(RequestContact.donor_id == donor_id))).one()
        return len((await s.exec(select(OutboxMessage).where(OutboxMessage.kind == "call",
                                                             OutboxMessage.contact_id == c.id))).all())


async def donor_ids(env) -> dict[int, int]:
    """telegram id → donor id."""
    from models.tables import Donor
    async with env.sessionmaker() as s:
        return {tg: d for d, tg in (await s.exec(select(Donor.id, Donor.telegram_id))).all()}


async def test_a_withdrawal_after_cover_asks_again_those_told_not_needed_once_each(env):
    staff, donors = await seed(env, [("O", "+", k) for k in (2, 4, 6, 8)])
    await post(env, staff, "O+ 1")
    assert all(call_of(u) for u in donors)  # a small pool: everyone in the first wave
    a, b, c, d = donors
    await a.tap("Available")
    await b.tap("Available")
    await env.drain()
    assert await state(env) == "covered"
    assert any(NOT_NEEDED in t for t in texts(c)) and any(NOT_NEEDED in t for t in texts(d))
    assert call_of(c) is None  # the stand-down took the buttons away

    # a cannot come after all; her second tap (a retried update) changes nothing more.
    msg, withdraw = a.find_button("I can't come after all")
    await a.press(msg["message_id"], withdraw["callback_data"])
    await a.press(msg["message_id"], withdraw["callback_data"])
    await env.drain()
    assert await state(env) == "dispatching"
    # Those told "not needed" are asked again: a new message that says why, with live buttons.
    for u in (c, d):
        new = call_of(u)
        assert new is not None and len(again_calls(u)) == 1, texts(u)
        assert "Needed again" in new["text"]
    ids = await donor_ids(env)
    assert [await calls_written(env, ids[u.id]) for u in (a, b, c, d)] == [1, 1, 2, 2]
    assert call_of(a) is None  # she withdrew: not asked again
    # Another tick for the same wave (a restart, a late timer) asks nobody twice.
    await env.engine.tick(1)
    await env.drain()
    assert [await calls_written(env, ids[u.id]) for u in (c, d)] == [2, 2]

    # c says yes on the new call: covered again; d is stood down again, on her new call.
    await c.tap("Available")
    await env.drain()
    assert await state(env) == "covered"
    d_call = again_calls(d)
    assert not d_call, "the second call to d was edited to the stand-down"
    assert sum(NOT_NEEDED in t for t in texts(d)) == 2
    by_donor = {cc.donor_id: cc.state for cc in await contacts(env)}
    assert by_donor[ids[c.id]] == "available" and by_donor[ids[a.id]] == "withdrew"


async def test_a_donor_stood_down_then_kept_is_told_when_donations_fulfil_the_request(env):
    staff, donors = await seed(env, [("O", "+", k) for k in (1, 8, 10, 12, 14, 16, 18, 20)])
    await post(env, staff, "O+ 1")
    nearest, *others = donors
    first = call_of(nearest)
    mid, far = others[0], others[-1]
    await mid.tap("Available")
    await far.tap("Available")
    await env.drain()
    assert await state(env) == "covered"
    assert any(NOT_NEEDED in t for t in texts(nearest))
    # Her "yes" crossed the stand-down and she is nearer: she is kept (the 20 km donor is let go).
    _msg, yes = nearest.find_button("Available", first)
    await nearest.press(first["message_id"], yes["callback_data"])
    await env.drain()
    assert "expecting you" in nearest.alerts()[-1]
    assert any("expects you" in t for t in texts(nearest))

    mid_contact = [cc for cc in await contacts(env) if cc.state == "available"
                   and cc.donor_id == (await donor_ids(env))[mid.id]][0]
    assert (await env.engine.desk.mark(1, mid_contact.id, "donated", by=staff.id, volume_ml=350)).ok
    await env.drain()
    assert await state(env) == "fulfilled"
    # Released on fulfilment: her "expects you" must not stay on her screen.
    assert not any("expects you" in t for t in texts(nearest)), texts(nearest)
    assert sum(NOT_NEEDED in t for t in texts(nearest)) == 1


async def test_undoing_the_donation_that_fulfilled_a_request_asks_again_the_donors_it_released(env):
    staff, donors = await seed(env, [("O", "+", k) for k in (2, 4, 6, 8)])
    await post(env, staff, "O+ 1")
    a, b, c, d = donors
    await a.tap("Available")
    await b.tap("Available")
    await env.drain()
    ids = await donor_ids(env)
    a_contact = [cc for cc in await contacts(env) if cc.donor_id == ids[a.id]][0]
    assert (await env.engine.desk.mark(1, a_contact.id, "donated", by=staff.id, volume_ml=350)).ok
    await env.drain()
    assert await state(env) == "fulfilled"
    assert any(NOT_NEEDED in t for t in texts(b)) and call_of(b) is None

    # The donation was recorded by mistake: undone, the request is short again and asks b again.
    assert (await env.engine.desk.undo(1, a_contact.id, by=staff.id)).ok
    await env.drain()
    assert await state(env) == "dispatching"
    assert len(again_calls(b)) == 1 and call_of(b) is not None, texts(b)
    assert call_of(a) is None  # she is still counted: not asked
    # An undo pressed twice: nothing more to undo, nobody asked twice.
    assert (await env.engine.desk.undo(1, a_contact.id, by=staff.id)).outcome == "nothing_to_undo"
    await env.drain()
    assert await calls_written(env, ids[b.id]) == 2
    await b.tap("Available")
    await env.drain()
    assert await state(env) == "covered"


async def test_a_rare_request_that_reopens_asks_the_best_few_again_not_the_whole_club(env):
    # Rh−: everyone at once at first (DOMAIN.md §3); after a withdrawal, the nearest few (§5), not all 18 again.
    staff, donors = await seed(env, [("O", "-", k) for k in range(1, 21)])
    await post(env, staff, "O- 1")
    assert all(call_of(u) for u in donors)
    await donors[0].tap("Available")
    await donors[1].tap("Available")
    await env.drain()
    assert await state(env) == "covered"
    msg, withdraw = donors[0].find_button("I can't come after all")
    await donors[0].press(msg["message_id"], withdraw["callback_data"])
    await env.drain()
    asked_again = [i for i, u in enumerate(donors) if again_calls(u)]
    assert 3 <= len(asked_again) <= 8, asked_again
    assert asked_again == list(range(2, 2 + len(asked_again)))  # the nearest of those told "not needed"
