"""Reminders through the real bot and the simulator: "you may donate again" and the leads' weekly digest.

Time is the harness's FrozenClock; the tests call ``env.reminders.run_due()`` where the
APScheduler job would (tests/test_reminder_scheduling.py proves the job itself).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlmodel import select

from ground.eligibility import DonorFacts, assess
from dispatcher.reminders import RETRY_AFTER, Reminders
from dispatcher.wakeups import Wakeups
from models.dispatch_tables import BloodRequest, OutboxMessage
from models.tables import AuditLog, Club, ClubMembership, Donor, Hospital, TelegramUser
from ground.clock import VIETNAM, FrozenClock
from ground.config import Settings
from tests.harness import start_bot, stop_bot

# Wednesday 25 November 2026: the day the donors below may give again.
DAY = date(2026, 11, 25)
CLUB = (20.8561, 106.6822)  # Hải Phòng


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=VIETNAM).astimezone(timezone.utc)


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


_phones = iter(range(1, 10_000))


async def donor(env, user=None, *, locale="vi", last: date | None, component="whole_blood", count=3,
                **fields) -> int:
    """A donor on Telegram (she has started the bot) unless ``user`` is None."""
    async with env.sessionmaker() as s:
        n = next(_phones)
        d = Donor(**{"full_name": f"Người hiến {n}", "phone": f"+8490{n:07d}", "telegram_id": user.id if user else None,
                     "abo": "O", "rh": "+", "sex": "F", "birth_date": date(1992, 5, 1), "weight_kg": 52,
                     "last_donation_date": last, "last_donation_component": component if last else None,
                     "donation_count": count, "consent_contact_at": env.clock(), "consent_profile_at": env.clock(),
                     "locale": locale, **fields})
        s.add(d)
        if user:
            s.add(TelegramUser(telegram_id=user.id, first_name=user.first_name, locale=locale))
        await s.commit()
        donor_id = d.id
    if user:
        await user.send("/help")  # she has written to the bot, so it may write to her (DOMAIN.md §8)
    return donor_id


def reminders_to(user) -> list[str]:
    return [m["text"] for m in user.bot_messages()
            if "may donate blood again" in m.get("text", "") or "có thể hiến máu trở lại" in m.get("text", "")]


async def run_at(env, when: datetime):
    env.clock.now = when
    nxt = await env.reminders.run_due()
    await env.drain()
    return nxt


async def test_a_donor_hears_she_may_give_again_on_the_day_at_nine_once(env):
    lan = env.user(first_name="Lan")
    await donor(env, lan, last=DAY - timedelta(days=84), count=3)

    assert await run_at(env, local(DAY - timedelta(days=1), 9)) == local(DAY, 9)
    assert reminders_to(lan) == []
    assert await run_at(env, local(DAY, 8, 59)) == local(DAY, 9)
    assert reminders_to(lan) == []

    nxt = await run_at(env, local(DAY, 9))
    [text] = reminders_to(lan)
    assert text.startswith("🩸 Từ hôm nay bạn đã có thể hiến máu trở lại.")
    assert "3 lần" in text and "/me" in text
    # Nothing else for her: the next thing due is the leads' digest, Monday 08:00.
    assert nxt == local(date(2026, 11, 30), 8)

    await run_at(env, local(DAY, 9, 5))
    await run_at(env, local(DAY, 18))
    assert len(reminders_to(lan)) == 1


async def test_only_donors_who_may_be_told_and_whose_wait_ends_today_hear_it(env):
    told = env.user(first_name="Told")
    platelets = env.user(first_name="Platelets")
    opted_out = env.user(first_name="OptOut")
    paused = env.user(first_name="Paused")
    no_consent = env.user(first_name="NoConsent")
    blocked = env.user(first_name="Blocked")
    recent = env.user(first_name="Recent")
    whole = DAY - timedelta(days=84)
    await donor(env, told, locale="en", last=whole, count=7)
    await donor(env, platelets, locale="en", last=DAY - timedelta(days=14), component="platelets", count=1)
    oid = await donor(env, opted_out, locale="en", last=whole)
    await donor(env, paused, locale="en", last=whole, status="paused", status_until=DAY + timedelta(days=3))
    await donor(env, no_consent, locale="en", last=whole, consent_contact_at=None)
    await donor(env, blocked, locale="en", last=whole)
    # Whole blood 14 days ago: the wait is 84 days, whatever the kind before it (DOMAIN.md §2).
    await donor(env, recent, locale="en", last=DAY - timedelta(days=14), component="whole_blood")
    await donor(env, None, last=whole)  # not on Telegram: nobody to tell
    async with env.sessionmaker() as s:
        row = await s.get(TelegramUser, blocked.id)
        row.blocked_at = env.clock()
        s.add(row)
        await s.commit()

    # The donor switches the reminder off herself, in /me.
    await opted_out.send("/me")
    assert "Reminder when you may give again: on" in opted_out.last_text()
    await opted_out.tap("Turn off this reminder")
    assert "Reminder when you may give again: off" in opted_out.last_text()
    assert "🔔 Remind me when I may give again" in opted_out.buttons()
    async with env.sessionmaker() as s:
        assert (await s.get(Donor, oid)).remind_eligible is False
        assert (await s.exec(select(AuditLog.action).where(AuditLog.subject == f"donor:{oid}"))).all() == [
            "reminder.eligible.off"]

    await run_at(env, local(DAY, 9))
    [text] = reminders_to(told)
    assert "Thank you for the 7 donations" in text
    [text] = reminders_to(platelets)  # 14 days after platelets (Art. 6.4)
    assert "Thank you for giving blood" in text
    for user in (opted_out, paused, no_consent, blocked, recent):
        assert reminders_to(user) == [], user.first_name
    async with env.sessionmaker() as s:
        keys = (await s.exec(select(OutboxMessage.key).where(OutboxMessage.kind == "eligible_again"))).all()
    assert len(keys) == 2 and all(k.endswith(":2026-11-25") for k in keys)


async def test_a_restart_sends_nothing_twice_and_a_missed_day_once_late_the_same_day_only(
        db_sessionmaker, db_url):
    """The bot is down at 09:00 on two days running; it comes back each afternoon."""
    env = await start_bot(db_sessionmaker, db_url)
    names = ("Tuesday", "Wednesday", "Monday")
    users = [env.user(first_name=n) for n in names]
    for user, eligible_on in zip(users, (DAY - timedelta(days=1), DAY, DAY - timedelta(days=2))):
        await donor(env, user, last=eligible_on - timedelta(days=84))
    await stop_bot(env)

    expected = {
        local(DAY - timedelta(days=1), 15): [1, 0, 0],  # Tuesday's, late; Monday's is not made up a day late
        local(DAY, 15): [0, 1, 0],  # Wednesday's, late; Tuesday's not again
        local(DAY, 16): [0, 0, 0],  # a second restart the same day: nothing twice
    }
    for when, got in expected.items():
        env = await start_bot(db_sessionmaker, db_url)  # a new Runtime on the same database
        try:
            users = [env.user(u.id, u.first_name) for u in users]
            for user in users:
                await user.send("/help")
            await run_at(env, when)  # the start-up run
            await run_at(env, when + timedelta(minutes=1))  # and a duplicate wake-up
            assert [len(reminders_to(u)) for u in users] == got, when
        finally:
            await stop_bot(env)
    async with db_sessionmaker() as s:
        keys = (await s.exec(select(OutboxMessage.key).where(OutboxMessage.kind == "eligible_again")
                             .order_by(OutboxMessage.id))).all()
    assert [k.split(":")[2] for k in keys] == ["2026-11-24", "2026-11-25"]


async def seed_club(env) -> tuple[list, dict]:
    """A club near a hospital, its two leads (en, vi) and eight members; requests around it."""
    lead_en, lead_vi = env.user(first_name="Lead", language_code="en"), env.user(first_name="Trưởng nhóm")
    linked = [env.user(first_name=f"M{i}") for i in range(4)]
    today = DAY + timedelta(days=5)  # Monday 30 November 2026
    old = today - timedelta(days=200)
    async with env.sessionmaker() as s:
        club = Club(name="CLB Lê Chân", lat=CLUB[0], lon=CLUB[1])
        near = Hospital(name="BV Việt Tiệp", lat=CLUB[0] + 5 / 111, lon=CLUB[1])
        far = Hospital(name="BV Chợ Rẫy", lat=10.7578, lon=106.6594)
        s.add_all([club, near, far])
        await s.flush()
        for lead, locale in ((lead_en, "en"), (lead_vi, "vi")):
            s.add(TelegramUser(telegram_id=lead.id, first_name=lead.first_name, locale=locale))
            s.add(ClubMembership(club_id=club.id, role="lead", telegram_id=lead.id))
        people = [
            # (abo, rh, last donation, telegram user, extra)
            ("O", "-", old, linked[0], {}),
            ("O", "-", old, None, {}),
            ("O", "-", today - timedelta(days=10), None, {}),  # gave 10 days ago
            ("A", "+", None, linked[1], {}),
            ("A", "+", old, linked[2], {}),
            ("A", "+", old, linked[3], {}),
            ("B", "+", old, None, {"status": "paused", "status_until": today + timedelta(days=20)}),
            ("AB", "-", old, None, {"birth_date": date(1950, 1, 1)}),  # over 60
        ]
        donors = []
        for i, (abo, rh, last, user, extra) in enumerate(people):
            fields = {"birth_date": date(1990, 1, 1), **extra}
            d = Donor(full_name=f"Thành viên {i}", phone=f"+849123450{i:02d}", telegram_id=user.id if user else None,
                      abo=abo, rh=rh, sex="M", weight_kg=60, last_donation_date=last,
                      last_donation_component="whole_blood" if last else None,
                      # A member on Telegram registered there, consenting (a link without it is not one).
                      consent_profile_at=env.clock() if user else None, **fields)
            s.add(d)
            if user:
                s.add(TelegramUser(telegram_id=user.id, first_name=user.first_name))
            donors.append(d)
        await s.flush()
        for d in donors:
            s.add(ClubMembership(club_id=club.id, donor_id=d.id))

        def request(hospital, abo, rh, days_ago, state):
            at = local(today, 8) - timedelta(days=days_ago)
            s.add(BloodRequest(hospital_id=hospital.id, abo=abo, rh=rh, component="red_cells", units=1,
                               urgency="urgent", deadline=at + timedelta(hours=12), state=state, created_at=at))

        request(near, "O", "+", 2, "covered")
        request(near, "O", "+", 3, "expired")
        request(near, "O", "-", 1, "covered")
        request(near, "A", "+", 8, "covered")  # more than a week ago
        request(far, "O", "+", 1, "covered")  # 1.100 km away
        await s.commit()
        facts = [DonorFacts.of(d) for d in donors]
    for user in [lead_en, lead_vi]:
        await user.send("/help")
    expected = {}
    for f in facts:  # the rules themselves, donor by donor
        if assess(f, today, Settings().eligibility).eligible:
            expected[f"{f.abo}{f.rh}"] = expected.get(f"{f.abo}{f.rh}", 0) + 1
    return [lead_en, lead_vi], expected


def digests(user) -> list[str]:
    return [m["text"] for m in user.bot_messages()
            if "Weekly digest" in m.get("text", "") or "Tổng hợp tuần" in m.get("text", "")]


async def test_club_leads_get_a_weekly_digest_rh_negative_first_counts_only_once_a_week(env):
    (lead_en, lead_vi), expected = await seed_club(env)
    assert expected == {"O-": 2, "A+": 3}
    monday = date(2026, 11, 30)

    assert await run_at(env, local(monday, 7, 59)) == local(monday, 8)
    assert digests(lead_en) == []
    assert await run_at(env, local(monday, 8)) == local(monday + timedelta(days=7), 8)
    [text] = digests(lead_en)
    lines = text.splitlines()
    assert lines[0] == "📋 Weekly digest — CLB Lê Chân"
    assert lines[1] == "👥 8 members; 5 likely able to give today:"
    assert lines[2] == "O− 2 · A− 0 · B− 0 · AB− 0"  # Rh− first
    assert lines[3] == "O+ 0 · A+ 3 · B+ 0 · AB+ 0"
    assert "⏸ Paused or deferred: 1" in lines
    assert "📵 Not reachable on Telegram (phone them when needed): 4" in lines
    assert "🏥 Requests within 100 km in the past 7 days: 3, 2 covered." in lines
    assert lines[-1] == "O− 1 (1 covered) · O+ 2 (1 covered)"
    assert "+849" not in text and "Thành viên" not in text  # counts only (DOMAIN.md §7)
    [vi] = digests(lead_vi)
    assert vi.startswith("📋 Tổng hợp tuần — CLB Lê Chân\n👥 8 thành viên; 5 người có thể hiến máu hôm nay:")
    assert "3, 2 đã đủ người." in vi

    await run_at(env, local(monday, 8, 30))
    await run_at(env, local(monday + timedelta(days=3), 12))
    assert len(digests(lead_en)) == len(digests(lead_vi)) == 1
    await run_at(env, local(monday + timedelta(days=7), 8))
    assert len(digests(lead_en)) == len(digests(lead_vi)) == 2
    async with env.sessionmaker() as s:
        keys = sorted((await s.exec(select(OutboxMessage.key).where(OutboxMessage.kind == "lead_digest"))).all())
    assert keys == sorted(f"digest:1:{lead.id}:2026-W{w}" for lead in (lead_en, lead_vi) for w in (49, 50))


class FakeSource:
    def __init__(self, name, nxt, fail=False):
        self.name, self.nxt, self.fail, self.runs = name, nxt, fail, 0

    async def run(self, session, now):
        self.runs += 1
        if self.fail:
            raise RuntimeError("broken source")
        return self.nxt


async def test_run_due_returns_the_earliest_next_time_and_a_broken_source_stops_no_other(db_sessionmaker):
    clock = FrozenClock(local(DAY, 9))
    now = clock()
    early, late, idle = (FakeSource("early", now + timedelta(hours=1)), FakeSource("late", now + timedelta(days=2)),
                         FakeSource("idle", None))
    reminders = Reminders(db_sessionmaker, Settings(), clock=clock, sources=[late, idle, early])
    assert await reminders.run_due() == now + timedelta(hours=1)
    assert await Reminders(db_sessionmaker, Settings(), clock=clock, sources=[idle]).run_due() is None

    broken = FakeSource("broken", None, fail=True)
    armed = []
    wakeups = Wakeups()
    wakeups.on_reminders_due(armed.append)
    reminders = Reminders(db_sessionmaker, Settings(), clock=clock, sources=[broken, late], wakeups=wakeups)
    assert await reminders.run_due() == now + RETRY_AFTER  # the broken one is tried again soon
    assert late.runs == 2 and armed == [now + RETRY_AFTER]
