"""Who polls and runs the timers when several instances share one PostgreSQL (issue 14).

Every instance runs the outbox sender (it claims rows, so any number can share the outbox).
Only the holder of the leader lock (models.leadership) polls Telegram (polling mode) or
registers the webhook (webhook mode), and runs the timers (waves, reminders), so that each
fires once. A follower tries the lock every ``[cluster] leader_retry_s``; the leader checks
its lock connection as often and, when it is gone, stops polling and the timers at once:
another instance may hold the lock a moment later, and two pollers would each get Telegram's
409 Conflict. On SQLite the lock is always held: one instance, always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from sqlalchemy.exc import SQLAlchemyError

from models.leadership import LeaderLock

log = logging.getLogger("redreserve.run")

Step = Callable[[], Awaitable[None]]

CHECK_TIMEOUT_S = 3.0


class Leadership:
    """Takes, keeps and gives up the leadership; ``lead``/``follow`` start and stop what only the leader runs."""

    def __init__(self, lock: LeaderLock, *, lead: Step, follow: Step, retry_s: float, instance_id: str,
                 rescan: Step | None = None, rescan_s: float = 30.0) -> None:
        self.lock = lock
        self._lead = lead
        self._follow = follow
        self.retry_s = retry_s
        # How long the leader's check of its lock connection may take before it counts as lost: long
        # enough that a busy machine does not give the leadership away (measured: 0.2 s was not).
        self.check_timeout_s = max(retry_s, CHECK_TIMEOUT_S)
        self.instance_id = instance_id
        self._rescan = rescan
        self.rescan_s = rescan_s
        self._last_rescan = time.monotonic()
        self.leading = False
        self.changes = 0  # times this instance took the leadership (tests, logs)
        self._saw_leader = False

    @property
    def role(self) -> str:
        return "leader" if self.leading else "follower"

    async def step(self) -> None:
        """One look: a follower tries the lock, a leader checks it still holds it."""
        if self.leading:
            if await self.lock.alive(timeout=self.check_timeout_s):
                await self._maybe_rescan()
                return
            log.warning("leadership: %s lost the leader lock; stopping polling and timers, following",
                        self.instance_id)
            await self.stand_down()
            return
        try:
            got = await self.lock.try_acquire()
        except (OSError, SQLAlchemyError) as exc:  # the database is away: try again next time
            log.warning("leadership: cannot try the leader lock: %s", _first_line(exc))
            return
        if not got:
            self._saw_leader = True
            return
        if self._saw_leader:
            # The lock may be free because the leader's connection died while the leader still runs:
            # it finds out at its next check (every retry_s, each allowed check_timeout_s to answer).
            # Polling before that would make two pollers, and Telegram answers both with 409 Conflict.
            await asyncio.sleep(self.retry_s + self.check_timeout_s)
        self.leading = True
        self.changes += 1
        log.info("leadership: %s is the leader (polling or webhook, timers)", self.instance_id)
        try:
            await self._lead()
        except Exception:
            log.exception("leadership: starting the leader's work failed; giving the lock up")
            await self.stand_down()
            return
        self._last_rescan = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Look every ``retry_s`` until ``stop``; then stop leading and free the lock for the others."""
        try:
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry_s)
                if not stop.is_set():
                    await self.step()
        finally:
            if self.leading:
                await self.stand_down()

    async def stand_down(self) -> None:
        """Stop what only the leader runs, then free the lock (in that order: never two pollers)."""
        self.leading = False
        try:
            await self._follow()
        finally:
            await self.lock.release()

    async def _maybe_rescan(self) -> None:
        if self._rescan is None or time.monotonic() - self._last_rescan < self.rescan_s:
            return
        self._last_rescan = time.monotonic()
        try:
            await self._rescan()
        except (OSError, SQLAlchemyError) as exc:
            log.warning("leadership: rescan of open requests failed: %s", _first_line(exc))


class Poller:
    """aiogram's long polling, started when this instance leads and stopped when it follows.

    The dispatcher is built without the runtime as its startup/shutdown hooks (``lifecycle=False``),
    so stopping polling here stops only polling: the sender goes on, the updates under way finish.
    """

    def __init__(self, dp: Dispatcher, bot: Bot, on_failure: Callable[[BaseException], None]) -> None:
        self.dp = dp
        self.bot = bot
        self._on_failure = on_failure
        self.task: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        if self.task is not None:
            return
        self.task = asyncio.create_task(self.dp.start_polling(
            self.bot, handle_signals=False, close_bot_session=False,
            allowed_updates=self.dp.resolve_used_update_types()), name="polling")
        self.task.add_done_callback(self._done)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is None:
            return
        try:
            await self.dp.stop_polling()  # the long poll is cancelled at once; no other getUpdates overlaps it
        except RuntimeError:  # not started yet
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task is self.task and not task.cancelled() and task.exception() is not None:
            self._on_failure(task.exception())  # type: ignore[arg-type]


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__
