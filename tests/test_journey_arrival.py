"""Blood in time (issue 9, the dispatch side): who counts, who is asked first, who may step back.

Through the real bot and the Bot API simulator: a donor who cannot arrive before the
deadline does not count as coverage and is asked only when nobody who can is left, with
an honest call; the identical type is asked before O; a nearer donor whose "yes" crossed
the stand-down takes the place of a later one; a donor can say "I can't come after all".
"""

from __future__ import annotations

from sqlmodel import select

from bot.callbacks import AnswerCb
from models.dispatch_tables import BloodRequest, RequestContact
from tests.test_journey_dispatch import calls, env, post, seed  # noqa: F401 (env is a fixture)


def call_of(user):
    """The donor's call, whatever the language: the message whose first button answers "available"."""
    found = [m for m in user.bot_messages()
             if (m.get("reply_markup") or {}).get("inline_keyboard")
             and m["reply_markup"]["inline_keyboard"][0][0]["callback_data"].endswith(":y")]
    return found[-1] if found else None


def board_of(staff):
    return [m for m in staff.bot_messages() if "#1" in m.get("text", "")][0]


async def contacts(env):
    async with env.sessionmaker() as s:
        return list((await s.exec(select(RequestContact).order_by(RequestContact.id))).all())


async def state(env):
    async with env.sessionmaker() as s:
        return (await s.exec(select(BloodRequest))).one().state


async def test_vi_a_far_donor_is_asked_last_honestly_is_not_counted_and_a_donor_can_withdraw(env):
    # O− critical (deadline in 3 h): two O− donors in Hải Phòng, one in Lào Cai (~300 km, ~14 h away).
    staff, (near, nearer, far) = await seed(env, [("O", "-", 5), ("O", "-", 2), ("O", "-", 300)], locale="vi")
    await staff.send("/urgent O- 1 cấp cứu")
    await staff.tap("Gửi cho người hiến máu")
    await env.drain()
    # Everyone who can arrive in time is asked at once; the far donor is not asked yet.
    assert call_of(near) and call_of(nearer) and call_of(far) is None

    await near.tap("Tôi sẽ đến")
    await nearer.tap("Lần này không đến được")
    await env.drain()
    # The in-time pool is exhausted (one yes of the two needed): now the far donor, told how late she'd be.
    far_call = call_of(far)
    assert far_call is not None
    assert "cách 300,5 km, bạn sẽ đến nơi vào khoảng" in far_call["text"], far_call["text"]
    assert "bạn vẫn có thể đến chứ?" in far_call["text"]

    await far.tap("Tôi sẽ đến")
    await env.drain()
    board = board_of(staff)["text"]
    # She is welcome and listed, marked late beside the deadline, and does not count as coming.
    assert "Sẽ đến: ▰▱ 1/2" in board, board
    assert "⚠️ đến ≈" in board and "sau hạn" in board
    assert "đến ≈" in board.split("\n")[board.split("\n").index(next(
        line for line in board.split("\n") if line.startswith("1.")))]
    assert await state(env) == "dispatching"
    confirmed = [m for m in far.bot_messages() if m["message_id"] == far_call["message_id"]][0]
    assert "sau giờ bệnh viện cần máu" in confirmed["text"]

    # "I can't come after all": replaced at once, shown on the board, not a no-show.
    withdraw_msg, withdraw = near.find_button("Tôi không thể đến được nữa")
    await near.press(withdraw_msg["message_id"], withdraw["callback_data"])
    await env.drain()
    assert "Chúng tôi đang nhờ người khác" in near.alerts()[-1]
    board = board_of(staff)["text"]
    assert "báo không đến được nữa" in board and "Sẽ đến: ▱▱ 0/2" in board, board
    by_donor = {c.donor_id: c.state for c in await contacts(env)}
    assert sorted(by_donor.values()) == ["available", "declined", "withdrew"]
    # Withdrawing twice (a second tap that crossed the edit): a clear answer, nothing changes.
    await near.press(withdraw_msg["message_id"], withdraw["callback_data"])
    assert "Bạn đã báo là không thể đến" in near.alerts()[-1]
    assert sorted(c.state for c in await contacts(env)) == ["available", "declined", "withdrew"]


async def test_the_identical_type_is_asked_before_o_and_o_only_with_a_reason(env):
    # A+ × 1: ten A+ donors 20–29 km away (in reach of the 12 h deadline), three O+ donors 1–3 km away.
    staff, donors = await seed(env, [("O", "+", 1 + k) for k in range(3)] + [("A", "+", 20 + k) for k in range(10)])
    await post(env, staff, "A+ 1")
    asked = {c.donor_id for c in await contacts(env)}
    o_plus = donors[:3]
    assert asked and all(call_of(u) is None for u in o_plus)  # O is every patient's reserve
    assert all(c.tier == 0 for c in await contacts(env))


async def test_o_is_asked_when_the_identical_type_cannot_cover_in_time_and_the_board_says_why(env):
    staff, donors = await seed(env, [("O", "+", 1 + k) for k in range(8)] + [("A", "+", 20)])
    await post(env, staff, "A+ 1")
    a_plus, o_donor = donors[-1], donors[0]
    assert call_of(a_plus) is not None and call_of(o_donor) is not None
    await o_donor.tap("Available")
    await env.drain()
    board = board_of(staff)["text"]
    assert "O+ compatible" in board and "asked because only 1 A+ donor can arrive in time" in board, board


async def test_a_nearer_yes_after_cover_replaces_the_latest_counted_donor_not_yet_on_the_way(env):
    staff, donors = await seed(env, [("O", "+", k) for k in (1, 8, 10, 12, 14, 16, 18, 20)])
    await post(env, staff, "O+ 1")
    nearest, *others = donors
    first_calls = {u.id: call_of(u) for u in donors}
    assert all(first_calls.values())
    # Two farther donors cover it (target 2); the 8 km one is already on her way.
    mid, far = others[0], others[-1]
    await mid.tap("Available")
    await far.tap("Available")
    await env.drain()
    assert await state(env) == "covered"
    await mid.tap("On my way")
    # The nearest donor's "yes" crossed the stand-down: she is kept, the 20 km donor is let go at once.
    _msg, yes = nearest.find_button("Available", first_calls[nearest.id])
    await nearest.press(first_calls[nearest.id]["message_id"], yes["callback_data"])
    await env.drain()
    assert "expecting you" in nearest.alerts()[-1]
    assert any("nearer to the hospital" in (m.get("text") or "") for m in far.bot_messages())
    by_user = {c.donor_id: c.state for c in await contacts(env)}
    assert sorted(v for v in by_user.values() if v in ("available", "en_route", "released")) == [
        "available", "en_route", "released"]
    board = board_of(staff)["text"]
    assert "Coming: ▰▰ 2/2" in board and "thanked, not needed" in board, board
    # Another yes from a donor farther than everyone counted changes nothing, and says so.
    late_one = others[1]
    _msg, yes = late_one.find_button("Available", first_calls[late_one.id])
    await late_one.press(first_calls[late_one.id]["message_id"], yes["callback_data"])
    await env.drain()
    assert "already covered or closed" in late_one.alerts()[-1]


async def test_withdrawing_after_arriving_or_donating_or_on_a_closed_request_is_answered_clearly(env):
    staff, donors = await seed(env, [("O", "+", 1 + k) for k in range(8)])
    await post(env, staff, "O+ 1")
    a, b = [u for u in donors if call_of(u)][:2]
    await a.tap("Available")
    await b.tap("Available")
    await env.drain()
    tokens = {c.donor_id: c.token for c in await contacts(env) if c.state == "available"}
    token_a, token_b = (tokens[min(tokens)], tokens[max(tokens)])
    await a.tap("On my way")
    await a.tap("I've arrived")
    await env.drain()
    # A stale "I can't come after all" from someone already at the hospital.
    await a.press(a.bot_messages()[-1]["message_id"], AnswerCb(r=1, t=token_a, a="x").pack())
    assert "marked as arrived" in a.alerts()[-1]
    arrived = [c for c in await contacts(env) if c.state == "arrived"][0]
    assert (await env.engine.desk.mark(1, arrived.id, "donated", by=staff.id, volume_ml=350)).ok
    await env.drain()
    assert await state(env) == "fulfilled"
    await a.press(a.bot_messages()[-1]["message_id"], AnswerCb(r=1, t=token_a, a="x").pack())
    assert "donation is already recorded" in a.alerts()[-1]
    # b was thanked and released when the donations fulfilled the request.
    await b.press(b.bot_messages()[-1]["message_id"], AnswerCb(r=1, t=token_b, a="x").pack())
    assert "already covered or closed" in b.alerts()[-1]
    assert sorted(c.state for c in await contacts(env) if c.state in ("donated", "released", "withdrew")) == [
        "donated", "released"]


async def test_staff_are_told_before_posting_when_the_deadline_is_too_short_for_the_nearest_donors(env):
    # The nearest O+ donors are ~60 km away: ≈ 3 h to get ready and come, then about an hour's visit.
    staff, donors = await seed(env, [("O", "+", 60 + k) for k in range(4)])
    await staff.send("/urgent O+ 1 critical")
    text = staff.last_text()
    assert "The deadline" in text and "min away" in text, text
    assert "the nearest 2 likely-eligible donors need up to" in text
    assert "collecting red cells takes about 60 min" in text
    assert "Consider a later deadline, or the blood bank" in text
    # With the urgent default (12 h), the same donors make it: no warning.
    await staff.send("/urgent O+ 1 urgent")
    assert "⚠️" not in staff.last_text()
    # Nothing was posted by the warning itself.
    async with env.sessionmaker() as s:
        assert (await s.exec(select(BloodRequest))).all() == []
