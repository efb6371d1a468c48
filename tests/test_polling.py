"""Polling goes on past an update aiogram cannot read (issue 10)."""

from __future__ import annotations

import logging

import pytest

from tests.harness import start_bot, stop_bot


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def test_an_unreadable_update_is_skipped_with_an_error_and_everyone_else_is_answered(env, caplog):
    """Before: the batch failed to parse, its offset never moved, and the same batch was fetched forever."""
    caplog.set_level(logging.ERROR, logger="bot.polling")
    lan = env.user(first_name="Lan", language_code="en")
    before = await lan.send("/help")  # a first batch, read as usual
    assert before
    broken = env.sim.push_raw({"message": {"message_id": 77, "date": 0, "text": "no chat"}})  # no "chat"
    assert (await lan.send("/help"))  # the batch after it: answered
    other = env.user(first_name="Minh", language_code="en")
    assert (await other.send("/help"))
    assert any(f"skipping update {broken['update_id']}" in r.getMessage() for r in caplog.records)
    assert not env.sim.pending_updates  # nothing left to fetch again and again
