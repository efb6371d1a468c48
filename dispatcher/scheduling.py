"""Waking the dispatcher on time: APScheduler 3 as an alarm clock, the database as the truth.

Two jobs per open request, with fixed ids and primitive arguments (STYLE.md):
``wave-{id}`` at the next time something is due (a wave, a response window, the
deadline) and ``deadline-{id}`` at the deadline. Both call ``Dispatcher.tick``, which
reloads the request and does only what is due: a late, duplicated or missed wake-up
fires a wave once. Jobs live in memory; at start-up ``rearm_all`` rebuilds them from
the database, firing any wave missed while the bot was down, once, late.

A job only *rings* (:class:`Alarm`): the work runs in a task of its own. APScheduler
drops a job whose previous run of the same id is still going (``max_instances``), and
a tick re-arms its own job, often a few milliseconds ahead (the next response window
ends just after the one it handled): run inside the job, that wake-up was lost and
the request stood still until a donor answered (issue 10). Ringing returns at once,
so no job is ever still running when it comes due again; a ring while the work runs
makes it run once more, and work whose next time has already come loops instead of
arming a job in the past.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from dispatcher.reminders import RETRY_AFTER

log = logging.getLogger(__name__)

# Work whose next time keeps being "now" this many times in a row waits a second: a guard against spinning.
MAX_RUNS_PER_RING = 20
SPIN_PAUSE = timedelta(seconds=1)


def wall_now() -> datetime:
    # APScheduler runs on the wall clock: "now" here is the scheduler's now, not the dispatcher's clock.
    return datetime.now(timezone.utc)


K = TypeVar("K", bound=Hashable)


class Alarm(Generic[K]):
    """Run ``work(key)`` when rung, never twice at once per key, never missing a ring.

    ``work`` returns the next time it wants to run (or None); a time already past runs it
    again at once. ``schedule(key, when)`` is how a future time is handed to the clock.
    """

    def __init__(self, work: Callable[[K], Awaitable[datetime | None]],
                 schedule: Callable[[K, datetime], None], name: str) -> None:
        self._work = work
        self._schedule = schedule
        self._name = name
        self._again: dict[K, bool] = {}  # keys being worked on -> rung meanwhile
        self._tasks: set[asyncio.Task] = set()

    def ring(self, key: K) -> None:
        if key in self._again:
            self._again[key] = True  # the running work goes round once more
            return
        self._again[key] = False
        task = asyncio.get_running_loop().create_task(self._run(key), name=f"{self._name}-{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def running(self, key: K) -> bool:
        return key in self._again

    async def _run(self, key: K) -> None:
        nxt: datetime | None = None
        try:
            for _ in range(MAX_RUNS_PER_RING):
                self._again[key] = False
                try:
                    nxt = await self._work(key)
                except Exception:  # a failed run must not kill the clock; the database keeps the truth
                    log.exception("%s %s failed; trying again in %s", self._name, key, RETRY_AFTER)
                    nxt = wall_now() + RETRY_AFTER
                    break
                if not self._again[key] and (nxt is None or nxt > wall_now()):
                    break
            else:
                log.warning("%s %s: still due after %d runs; pausing %s", self._name, key, MAX_RUNS_PER_RING,
                            SPIN_PAUSE)
                nxt = wall_now() + SPIN_PAUSE
        finally:
            del self._again[key]
        if nxt is not None:
            self._schedule(key, nxt)

    async def wait_idle(self) -> None:
        """Tests and shutdown: wait for the work under way."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class DispatchScheduler:
    def __init__(self, dispatcher, scheduler: AsyncIOScheduler | None = None):
        self.dispatcher = dispatcher
        self.scheduler = scheduler or AsyncIOScheduler(timezone=timezone.utc)
        self.alarm = Alarm(self._tick, self._schedule, "dispatch wake-up for request")
        self._armed: dict[int, datetime] = {}  # what a tick asked for, while its alarm runs
        dispatcher.wakeups.on_request_due(self.arm)

    def arm(self, request_id: int, when: datetime, deadline: datetime | None = None) -> None:
        """(Re)place the request's wake-ups; called by the dispatcher after every tick."""
        if deadline is not None:
            self._add(f"deadline-{request_id}", deadline, request_id)
        if self.alarm.running(request_id):
            self._armed[request_id] = when  # the running alarm schedules it (or ticks again) when done
            return
        self._add(f"wave-{request_id}", when, request_id)

    def _schedule(self, request_id: int, when: datetime) -> None:
        self._add(f"wave-{request_id}", when, request_id)

    def _add(self, job_id: str, when: datetime, request_id: int) -> None:
        self.scheduler.add_job(self._ring, trigger="date", run_date=when.astimezone(timezone.utc), args=[request_id],
                               id=job_id, replace_existing=True, misfire_grace_time=None, coalesce=True)

    async def _ring(self, request_id: int) -> None:
        self.alarm.ring(request_id)

    async def _tick(self, request_id: int) -> datetime | None:
        self._armed.pop(request_id, None)
        await self.dispatcher.tick(request_id)
        # The latest arm wins: any tick (this one, or an answer's meanwhile) read the database after the one before.
        return self._armed.pop(request_id, None)

    async def start(self) -> None:
        if not self.scheduler.running:
            self.scheduler.start()
        await self.dispatcher.rearm_all()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.alarm.cancel()

    def job_ids(self) -> list[str]:
        return sorted(j.id for j in self.scheduler.get_jobs())


class ReminderScheduler:
    """One date job, ``reminders``, at the earliest time any reminder source has something due.

    It shares the dispatcher's AsyncIOScheduler. Every run re-arms the job to the next due
    time the sources return (dispatcher.reminders); at start-up one run rebuilds it from
    the database and makes up, once, whatever came due while the bot was down.
    ``Reminders.poke()`` asks for a run now (``run_soon``): during a run, it makes that run
    go round once more (:class:`Alarm`), so a poke is never dropped and never logged as skipped.
    """

    JOB_ID = "reminders"

    def __init__(self, reminders, scheduler: AsyncIOScheduler) -> None:
        self.reminders = reminders
        self.scheduler = scheduler
        self.alarm = Alarm(self._run, self._schedule, "reminders run")
        self._armed: datetime | None = None
        reminders.wakeups.on_reminders_due(self.arm)
        reminders.wakeups.on_reminders_now(self.run_soon)

    def arm(self, when: datetime | None) -> None:
        if self.alarm.running(self.JOB_ID):
            self._armed = when  # the running alarm schedules it when done
            if when is None and self.scheduler.get_job(self.JOB_ID) is not None:
                self.scheduler.remove_job(self.JOB_ID)
            return
        if when is None:
            if self.scheduler.get_job(self.JOB_ID) is not None:
                self.scheduler.remove_job(self.JOB_ID)
            return
        self._schedule(self.JOB_ID, when)

    def _schedule(self, _key, when: datetime) -> None:
        self.scheduler.add_job(self._ring, trigger="date", run_date=when.astimezone(timezone.utc), id=self.JOB_ID,
                               replace_existing=True, misfire_grace_time=None, coalesce=True)

    def run_soon(self) -> None:
        if not self.scheduler.running:  # not started, or an instance that follows: the leader runs reminders
            return
        self.alarm.ring(self.JOB_ID)

    async def _ring(self) -> None:
        self.alarm.ring(self.JOB_ID)

    async def _run(self, _key) -> datetime | None:
        self._armed = None
        await self.reminders.run_due()  # arms through self.arm, and rings again when poked meanwhile
        return self._armed

    async def start(self) -> None:
        if not self.scheduler.running:
            self.scheduler.start()
        await self.reminders.run_due()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.alarm.cancel()

    def next_run(self) -> datetime | None:
        job = self.scheduler.get_job(self.JOB_ID)
        return None if job is None else job.next_run_time
