"""Waking the dispatcher on time: APScheduler 3 as an alarm clock, the database as the truth.

Two jobs per open request, with fixed ids and primitive arguments (STYLE.md):
``wave-{id}`` at the next time something is due (a wave, a response window, the
deadline) and ``deadline-{id}`` at the deadline. Both call ``Dispatcher.tick``, which
reloads the request and does only what is due: a late, duplicated or missed wake-up
fires a wave once. Jobs live in memory; at start-up ``rearm_all`` rebuilds them from
the database, firing any wave missed while the bot was down, once, late.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from dispatcher.reminders import RETRY_AFTER

log = logging.getLogger(__name__)


class DispatchScheduler:
    def __init__(self, dispatcher, scheduler: AsyncIOScheduler | None = None):
        self.dispatcher = dispatcher
        self.scheduler = scheduler or AsyncIOScheduler(timezone=timezone.utc)
        dispatcher.arm = self.arm

    def arm(self, request_id: int, when: datetime, deadline: datetime | None = None) -> None:
        """(Re)place the request's wake-ups; called by the dispatcher after every tick."""
        self._add(f"wave-{request_id}", when, request_id)
        if deadline is not None:
            self._add(f"deadline-{request_id}", deadline, request_id)

    def _add(self, job_id: str, when: datetime, request_id: int) -> None:
        self.scheduler.add_job(self._wake, trigger="date", run_date=when.astimezone(timezone.utc), args=[request_id],
                               id=job_id, replace_existing=True, misfire_grace_time=None, coalesce=True)

    async def _wake(self, request_id: int) -> None:
        try:
            await self.dispatcher.tick(request_id)
        except Exception:  # a failed wake must not kill the scheduler; the next one retries from the DB
            log.exception("dispatch wake-up for request %s failed", request_id)

    async def start(self) -> None:
        if not self.scheduler.running:
            self.scheduler.start()
        await self.dispatcher.rearm_all()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def job_ids(self) -> list[str]:
        return sorted(j.id for j in self.scheduler.get_jobs())


class ReminderScheduler:
    """One date job, ``reminders``, at the earliest time any reminder source has something due.

    It shares the dispatcher's AsyncIOScheduler. Every run re-arms the job to the next due
    time the sources return (dispatcher.reminders); at start-up one run rebuilds it from
    the database and makes up, once, whatever came due while the bot was down.
    ``Reminders.poke()`` asks for a run now (``run_soon``).
    """

    JOB_ID = "reminders"

    def __init__(self, reminders, scheduler: AsyncIOScheduler) -> None:
        self.reminders = reminders
        self.scheduler = scheduler
        reminders.arm = self.arm
        reminders.run_soon = self.run_soon

    def arm(self, when: datetime | None) -> None:
        if when is None:
            if self.scheduler.get_job(self.JOB_ID) is not None:
                self.scheduler.remove_job(self.JOB_ID)
            return
        self.scheduler.add_job(self._wake, trigger="date", run_date=when.astimezone(timezone.utc), id=self.JOB_ID,
                               replace_existing=True, misfire_grace_time=None, coalesce=True)

    def run_soon(self) -> None:
        # APScheduler runs on the wall clock: "now" here is the scheduler's now, not the dispatcher's clock.
        self.arm(datetime.now(timezone.utc))

    async def _wake(self) -> None:
        try:
            await self.reminders.run_due()  # re-arms through self.arm
        except Exception:  # never leave the job unarmed
            log.exception("reminders run failed")
            self.arm(datetime.now(timezone.utc) + RETRY_AFTER)

    async def start(self) -> None:
        if not self.scheduler.running:
            self.scheduler.start()
        await self.reminders.run_due()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def next_run(self) -> datetime | None:
        job = self.scheduler.get_job(self.JOB_ID)
        return None if job is None else job.next_run_time
