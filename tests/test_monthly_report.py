"""The monthly report (issue 16): on the first of the month, leads and staff who asked (/monthly on)
get last month's chart, figures and workbook, once, re-armed from the database like every reminder;
the figures are those /stats MM/YYYY shows for the same month."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import select

from bot.charts import HEIGHT_PX, WIDTH_PX
from dispatcher.monthly_reports import previous_month
from models.dispatch_tables import OutboxMessage
from models.tables import AuditLog, TelegramUser
from tests.harness import start_bot, stop_bot
from tests.test_journey_stats import club_with_history, hospital_with_history, staff_of
from tests.test_reminders import local, run_at

FIRST = date(2026, 12, 1)


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


def reports(env, user) -> tuple[list, list[str], list]:
    """(photos, texts, documents) of the monthly report the bot sent ``user``."""
    texts = [m["text"] for m in user.bot_messages() if "/monthly off stops these" in m.get("text", "")
             or "/monthly off để ngừng nhận báo cáo" in m.get("text", "")]
    return env.sim.photos(user.id), texts, env.sim.documents(user.id)


async def test_a_lead_who_asked_gets_last_month_s_report_on_the_first_once(env):
    club, lead = await club_with_history(env)
    replies = await lead.send("/monthly")
    assert "You do not receive the monthly report." in replies[-1]["text"]
    replies = await lead.send("/monthly on")
    assert "On the first of each month at 08:00" in replies[-1]["text"] and "CLB" in replies[-1]["text"]

    assert await run_at(env, local(FIRST, 7, 59)) == local(FIRST, 8)
    assert reports(env, lead) == ([], [], [])
    await run_at(env, local(FIRST, 8))
    photos, [text], [book] = reports(env, lead)
    [chart] = photos
    image = Image.open(io.BytesIO(chart.data))
    assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 50  # not a blank canvas
    assert chart.caption.startswith("📅 Monthly report, 11/2026: ")
    assert "figures for 01/11/2026 – 30/11/2026" in text and "Requests helped: 1" in text
    workbook = load_workbook(io.BytesIO(book.data))
    assert workbook.sheetnames == ["Members", "Donations", "Calls"] and book.file_name.endswith("-2026-11.xlsx")
    calls = {row[0]: row[1] for row in workbook["Calls"].iter_rows(values_only=True)}
    assert calls["Calls received"] == 3 and calls["Donated"] == 1

    # The same figures as /stats for that month, asked at the same moment.
    asked = (await lead.send("/stats 11/2026"))[-1]["text"]
    assert text == asked + "\n/monthly off stops these monthly reports."

    # A second wake-up the same day, or later in the month, sends nothing again.
    await run_at(env, local(FIRST, 8, 1))
    await run_at(env, local(FIRST + timedelta(days=2), 12))
    assert [len(x) for x in reports(env, lead)] == [2, 1, 1]  # the extra photo is /stats' own
    async with env.sessionmaker() as s:
        keys = (await s.exec(select(OutboxMessage.key).where(OutboxMessage.kind == "monthly_report"))).all()
    assert sorted(keys) == sorted(f"monthly:club:{club.id}:{lead.id}:2026-11:{p}"
                                  for p in ("chart", "figures", "workbook"))


async def test_nobody_who_did_not_ask_gets_it_and_off_stops_it(env):
    club, lead = await club_with_history(env)
    await run_at(env, local(FIRST, 8))
    assert reports(env, lead) == ([], [], [])

    await lead.send("/monthly on")
    replies = await lead.send("/monthly off")
    assert "The monthly reports are stopped." in replies[-1]["text"]
    await run_at(env, local(FIRST, 9))
    assert reports(env, lead) == ([], [], [])
    async with env.sessionmaker() as s:
        actions = (await s.exec(select(AuditLog.action).where(AuditLog.action.like("monthly_report.%"))
                                .order_by(AuditLog.id))).all()
        user = await s.get(TelegramUser, lead.id)
    assert actions == ["monthly_report.on", "monthly_report.off"] and user.monthly_report_since is None


async def test_a_first_missed_while_the_bot_was_down_is_made_up_within_the_week_only(env):
    club, lead = await club_with_history(env)
    await lead.send("/monthly on")
    await run_at(env, local(FIRST + timedelta(days=8), 8))
    assert reports(env, lead) == ([], [], [])  # a week late: no longer news
    env.clock.now = local(date(2027, 1, 3), 15)
    await run_at(env, env.clock.now)
    photos, [text], docs = reports(env, lead)
    assert len(photos) == 1 and len(docs) == 1 and "figures for 01/12/2026 – 31/12/2026" in text


async def test_staff_get_their_hospital_s_month_in_vietnamese_with_its_requests(env):
    hospital_id = await hospital_with_history(env)
    nurse = await staff_of(env, hospital_id, language="vi")
    replies = await nurse.send("/monthly bật")
    assert "Vào ngày 1 hằng tháng lúc 08:00" in replies[-1]["text"] and "BV Việt Tiệp" in replies[-1]["text"]
    await run_at(env, local(FIRST, 8))
    [chart], [text], [book] = reports(env, nurse)
    assert chart.caption.startswith("📅 Báo cáo tháng 11/2026: BV Việt Tiệp")
    assert "từ 01/11/2026 đến 30/11/2026" in text
    rows = list(load_workbook(io.BytesIO(book.data)).active.iter_rows(values_only=True))
    assert len(rows) == 1 + 4  # the header and November's four requests
    assert not any("Người hiến" in str(cell) for row in rows for cell in row)  # no donor named


async def test_wrong_arguments_and_wrong_roles_change_nothing(env):
    club, lead = await club_with_history(env)
    replies = await lead.send("/monthly maybe")
    assert replies[-1]["text"].startswith("Usage: /monthly on")
    donor = env.user(first_name="Lan")
    replies = await donor.send("/monthly on")
    assert "dành cho chủ nhiệm CLB và nhân viên bệnh viện" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        subscribed = (await s.exec(select(TelegramUser.telegram_id)
                                   .where(TelegramUser.monthly_report_since.is_not(None)))).all()
    assert subscribed == []


def test_previous_month_crosses_the_year():
    assert previous_month(date(2027, 1, 1)) == date(2026, 12, 1)
    assert previous_month(date(2026, 3, 31)) == date(2026, 2, 1)
