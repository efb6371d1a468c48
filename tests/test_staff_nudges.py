"""The desk's nudges fire at the right time, once, through the reminders service (issue 4)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from models.dispatch_tables import RequestContact
from tests.harness import start_bot, stop_bot
from tests.test_journey_dispatch import calls, post, seed


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


def nudges(staff, marker: str) -> list[dict]:
    return [m for m in staff.bot_messages() if marker in m.get("text", "")]


async def test_a_late_donor_is_nudged_once_after_travel_time_plus_margin(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(6)])
    await post(env, staff, "O+ 1")
    donor = [u for u in donors if calls(u)][0]
    await donor.tap("Available")
    await env.drain()
    async with env.sessionmaker() as s:
        c = (await s.exec(select(RequestContact).where(RequestContact.state == "available"))).one()
    due_in = c.travel_min + 30
    env.clock.advance(minutes=due_in - 1)
    nxt = await env.reminders.run_due()
    await env.drain()
    assert nudges(staff, "not marked arrived") == []
    assert nxt is not None and (nxt - env.clock()).total_seconds() <= 60
    env.clock.advance(minutes=1)
    await env.reminders.run_due()
    await env.reminders.run_due()  # a duplicate wake-up sends nothing more
    await env.drain()
    (nudge,) = nudges(staff, "not marked arrived")
    assert "091" in nudge["text"]  # a private chat: the phone, to call her
    # One tap on the nudge marks her arrived, and the nudge keeps its text.
    await staff.tap("Arrived", nudge)
    async with env.sessionmaker() as s:
        assert (await s.get(RequestContact, c.id)).state == "arrived"
    after = [m for m in staff.bot_messages() if m["message_id"] == nudge["message_id"]][0]
    assert "not marked arrived" in after["text"] and not (after.get("reply_markup") or {}).get("inline_keyboard")


async def test_an_uncovered_request_is_nudged_before_its_deadline(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(4)])
    await post(env, staff, "O+ 3 critical")  # 3 units from 4 donors: it cannot be covered
    async with env.sessionmaker() as s:
        from models.dispatch_tables import BloodRequest
        req = (await s.exec(select(BloodRequest))).one()
    left = (req.deadline.replace(tzinfo=env.clock().tzinfo) - env.clock()).total_seconds() / 60
    lead = min(30, left / 4)
    env.clock.advance(minutes=left - lead - 1)
    await env.reminders.run_due()
    await env.drain()
    assert nudges(staff, "is not covered yet") == []
    env.clock.advance(minutes=1)
    await env.reminders.run_due()
    await env.reminders.run_due()
    await env.drain()
    (nudge,) = nudges(staff, "is not covered yet")
    assert "Request #1" in nudge["text"]
