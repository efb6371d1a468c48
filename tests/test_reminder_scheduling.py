"""The reminders job: armed at the next due time, rebuilt from the database at start-up, fired by a poke."""

import asyncio
from datetime import date, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import select

from dispatcher.eligible_again import EligibleAgain, eligible_key
from dispatcher.reminders import Reminders, hh_mm, local_at
from dispatcher.scheduling import ReminderScheduler
from models.dispatch_tables import OutboxMessage
from models.tables import Donor, TelegramUser
from ground.clock import VIETNAM, local_today, system_clock
from ground.config import Settings

TG = 7_100_000_001


def assemble(sm, settings):
    """What bot.runtime does at start-up, on the wall clock."""
    reminders = Reminders(sm, settings, clock=system_clock, sources=[EligibleAgain(settings)])
    return reminders, ReminderScheduler(reminders, AsyncIOScheduler(timezone=timezone.utc))


async def test_the_job_is_armed_at_the_next_due_time_rearmed_at_start_up_and_fired_by_a_poke(db_sessionmaker):
    settings = Settings(reminders={"eligible_time": "00:00", "digest_enabled": False})
    today = local_today(system_clock, settings.bot.tz)
    tomorrow = today + timedelta(days=1)
    async with db_sessionmaker() as s:
        donor = Donor(full_name="Lan", phone="+84901234567", telegram_id=TG, abo="O", rh="+",
                      birth_date=date(1990, 1, 1), weight_kg=55, last_donation_date=tomorrow - timedelta(days=84),
                      last_donation_component="whole_blood", consent_contact_at=system_clock())
        s.add_all([donor, TelegramUser(telegram_id=TG)])
        await s.commit()
        donor_id = donor.id
    due = local_at(tomorrow, hh_mm("00:00"), VIETNAM)

    reminders, sched = assemble(db_sessionmaker, settings)
    await sched.start()
    try:
        assert sched.next_run() == due
    finally:
        await sched.stop()

    # A restart: a new process has only the database.
    reminders, sched = assemble(db_sessionmaker, settings)
    await sched.start()
    try:
        assert sched.next_run() == due
        # A donation recorded with an earlier date: her day is today, already past 00:00. The poke runs the job.
        async with db_sessionmaker() as s:
            d = await s.get(Donor, donor_id)
            d.last_donation_date = today - timedelta(days=84)
            s.add(d)
            await s.commit()
        reminders.poke()
        key = eligible_key(donor_id, today)
        for _ in range(100):
            async with db_sessionmaker() as s:
                if (await s.exec(select(OutboxMessage.id).where(OutboxMessage.key == key))).first():
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the poke did not run the reminders")
        for _ in range(100):  # the run re-arms the job: nobody else is due, so it is removed
            if sched.next_run() is None:
                break
            await asyncio.sleep(0.05)
        assert sched.next_run() is None
    finally:
        await sched.stop()


class SlowSource:
    """A source whose second run waits for the test: a poke arrives while the job is running."""

    name = "slow"

    def __init__(self):
        self.runs = 0
        self.gate = asyncio.Event()
        self.inside = asyncio.Event()

    async def run(self, session, now):
        self.runs += 1
        if self.runs == 2:
            self.inside.set()
            await self.gate.wait()
        return None


async def test_a_poke_during_a_run_is_not_lost_and_not_logged_as_skipped(db_sessionmaker, caplog):
    """Issue 10: the poke re-armed the job while it ran; APScheduler dropped it, 19–28 warnings a run."""
    source = SlowSource()
    reminders = Reminders(db_sessionmaker, Settings(), clock=system_clock, sources=[source])
    sched = ReminderScheduler(reminders, AsyncIOScheduler(timezone=timezone.utc))
    await sched.start()  # run 1
    try:
        reminders.poke()  # run 2, which waits at the gate
        await asyncio.wait_for(source.inside.wait(), 10)
        reminders.poke()  # something changed meanwhile: it must be looked at
        reminders.poke()
        source.gate.set()
        for _ in range(200):
            if source.runs >= 3:
                break
            await asyncio.sleep(0.05)
        await sched.alarm.wait_idle()
        assert source.runs == 3  # the pokes made during run 2 coalesced into one more run
    finally:
        await sched.stop()
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
