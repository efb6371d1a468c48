"""Telegram's per-token limits, in one process or shared by several (issue 14, DOMAIN.md §8).

Telegram counts per bot token: 30 messages/s overall, 1/s per private chat, 20/min per group,
whichever process sends them. The outbox sender and the handlers' replies (bot.throttle) take
their turns from one :class:`SendBudget`:

* one instance (SQLite, or PostgreSQL with ``[cluster] budget = "local"``): the in-process
  :class:`dispatcher.sender.RateLimiter`, exact sliding windows and ranks;
* several instances on one PostgreSQL: :class:`PostgresBudget`, slot reservation (GCRA) in the
  ``send_budget`` table, one short transaction per send, by the database's clock so that the
  instances' own clocks never need to agree.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from dispatcher.sender import RateLimiter
from ground.config import Settings


class SendBudget(Protocol):
    """A turn to send: ``acquire`` waits for it, ``release`` says the answer came back, ``pause`` is a 429."""

    async def acquire(self, chat_id: int, *, first: bool = False, rank: int = 5) -> Any: ...
    def release(self, slot: Any) -> None: ...
    def pause(self, seconds: float) -> None: ...


# One statement per reservation. The start is max(next_at, now) and next_at moves one step past
# it: a GCRA ("virtual scheduling") timeline. Times are the database's (clock_timestamp(), not
# now(): that is the transaction's start), so the instances' clocks need not agree.
_RESERVE = text("""
INSERT INTO send_budget (name, next_at) VALUES (:name, extract(epoch FROM clock_timestamp()) + :step)
ON CONFLICT (name) DO UPDATE
   SET next_at = greatest(send_budget.next_at, extract(epoch FROM clock_timestamp())) + :step
RETURNING next_at - :step - extract(epoch FROM clock_timestamp())
""")
_PAUSE = text("""
INSERT INTO send_budget (name, next_at) VALUES ('global', extract(epoch FROM clock_timestamp()) + :s)
ON CONFLICT (name) DO UPDATE
   SET next_at = greatest(send_budget.next_at, extract(epoch FROM clock_timestamp()) + :s)
""")
_FORGET = text("DELETE FROM send_budget WHERE name LIKE 'chat:%' AND next_at < extract(epoch FROM clock_timestamp()) - 120")


class PostgresBudget:
    """The per-token budget in PostgreSQL: every instance reserves its sends' start times in one table.

    A send takes the chat's next slot (1 s apart in a private chat, 3 s in a group), waits for it,
    then the global one (1/30 s apart, plus a margin); it is started when its slot comes. A wake-up
    later than ``late_s`` after the slot gives the slot up and takes another: a late start would
    squeeze more than 30 sends into one second at Telegram's end. The margin covers what is left:
    the jitter between starting a send here and Telegram receiving it.

    An instance's outbox sends reserve their global slot one at a time (a lock held from the
    reservation until the slot comes), so the timeline runs at most one slot per instance ahead of
    the present, and a reply (``first``, which skips that lock) waits a few slots at most. Ranks, as
    the in-process limiter keeps them, are not kept here beyond that.
    """

    def __init__(self, sessionmaker: async_sessionmaker, global_per_second: float = 30,
                 per_chat_per_second: float = 1, group_per_minute: float = 20, *, margin: float = 0.02,
                 late_s: float = 0.004) -> None:
        self.sm = sessionmaker
        # margin: the share of the limit given up against latency jitter (2 %: 29.4 of 30/s).
        self.global_step = (1.0 + margin) / global_per_second
        self.chat_step = (1.0 + margin) / per_chat_per_second
        self.group_step = (1.0 + margin) * 60.0 / group_per_minute
        self.late_s = late_s
        self.reservations = 0  # statements run, and their time: the benches' latency figure
        self.reserve_time_s = 0.0
        self.spoiled = 0  # slots given up after a late wake-up
        self._turn = asyncio.Lock()
        self._pauses: set[asyncio.Task[None]] = set()

    async def _reserve(self, name: str, step: float) -> float:
        """Seconds from now to this send's slot; 0 or less: now."""
        async with self.sm() as s:
            async with s.begin():
                conn = await s.connection()  # the pool's wait is not the reservation's
                t0 = time.monotonic()
                wait = float((await conn.execute(_RESERVE, {"name": name, "step": step})).scalar_one())
                answered = time.monotonic()
                if name.startswith("chat:") and self.reservations % 1000 == 0:
                    await conn.execute(_FORGET)  # chats written to two minutes ago have no say any more
            done = time.monotonic()  # committed: the slot is everyone's to see
        self.reservations += 1
        self.reserve_time_s += done - t0
        # The database measured ``wait`` about half a round trip before the answer came back here.
        return wait - (done - answered) - (answered - t0) / 2

    async def acquire(self, chat_id: int, *, first: bool = False, rank: int = 5) -> float:
        wait = await self._reserve(f"chat:{chat_id}", self.group_step if chat_id < 0 else self.chat_step)
        if wait > 0:
            await asyncio.sleep(wait)
        if first:
            return await self._global_slot()
        async with self._turn:
            return await self._global_slot()

    async def _global_slot(self) -> float:
        while True:
            wait = await self._reserve("global", self.global_step)
            slot = time.monotonic() + wait
            if wait > 0:
                await asyncio.sleep(wait)
            # Late, whether the nap overslept or the answer itself came late (a busy event loop, a
            # slow commit): this slot is spoiled (see the class docstring), take the next.
            if time.monotonic() - slot <= self.late_s:
                return time.monotonic()
            self.spoiled += 1

    def release(self, slot: Any) -> None:
        """Nothing to do: a slot counts from its start, and the margin covers the round trip's jitter."""

    def pause(self, seconds: float) -> None:
        """A 429: every instance waits (the global timeline moves past it). Written in the background."""
        task = asyncio.get_running_loop().create_task(self._pause(seconds))
        self._pauses.add(task)
        task.add_done_callback(self._pauses.discard)

    async def _pause(self, seconds: float) -> None:
        async with self.sm() as s, s.begin():
            await (await s.connection()).execute(_PAUSE, {"s": float(seconds)})


def make_budget(settings: Settings, sessionmaker: async_sessionmaker, dialect: str) -> SendBudget:
    """The budget for this deployment: shared in PostgreSQL unless told it is the only instance."""
    send = settings.dispatch.send
    if dialect == "postgresql" and settings.cluster.budget != "local":
        return PostgresBudget(sessionmaker, send.global_per_second, send.per_chat_per_second, send.group_per_minute)
    return RateLimiter(send.global_per_second, send.per_chat_per_second, send.group_per_minute,
                       send.safety_margin_s)


__all__ = ["PostgresBudget", "SendBudget", "make_budget"]
