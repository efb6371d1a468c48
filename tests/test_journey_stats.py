"""/stats for a club lead, end to end through the Bot API simulator (issue 16): a chart that
decodes and is not blank, figures that add up to the database, a workbook with the same totals."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import func, select

from bot.charts import HEIGHT_PX, WIDTH_PX
from dispatcher.report_months import month_starts
from models.dispatch_tables import BloodRequest, RequestContact
from models.tables import ClubMembership, Donation, Donor, Hospital, HospitalStaff, TelegramUser
from tests.harness import START, start_bot, stop_bot
from tests.test_journey_lead import make_club, make_lead, seed

TODAY = date(2026, 11, 22)


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def give(env, donor_id: int, day: date, volume: int | None = 350, component: str = "whole_blood") -> None:
    async with env.sessionmaker() as s:
        s.add(Donation(donor_id=donor_id, donated_on=day, volume_ml=volume, component=component))
        await s.commit()


async def request_with(env, outcomes: list[tuple[int, str, int | None]]) -> int:
    """A request posted an hour before START; each (donor, state, minutes after posting she gave)."""
    posted = START - timedelta(hours=1)
    async with env.sessionmaker() as s:
        hospital = Hospital(name="BV Việt Tiệp", lat=20.85, lon=106.68)
        s.add(hospital)
        await s.flush()
        request = BloodRequest(hospital_id=hospital.id, abo="O", rh="-", component="red_cells", units=2,
                               urgency="critical", deadline=START + timedelta(hours=2), created_at=posted)
        s.add(request)
        await s.flush()
        for donor_id, state, minutes in outcomes:
            s.add(RequestContact(request_id=request.id, donor_id=donor_id, state=state, asked_at=posted,
                                 outcome_at=posted + timedelta(minutes=minutes) if minutes is not None else None))
        await s.commit()
        return request.id


async def club_with_history(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    lan = await seed(env, club, "Nguyễn Thị Lan", "+84912000001", "O-", last=date(2026, 10, 1))
    binh = await seed(env, club, "Trần Văn Bình", "+84912000002", "A+", sex="M", weight=70)
    chi = await seed(env, club, "Lê Chi", "+84912000003", "B+")
    await seed(env, club, "Phạm An", "+84912000004", None)
    await give(env, lan, date(2026, 2, 10))
    await give(env, lan, date(2026, 10, 1), volume=250)
    await give(env, binh, date(2026, 6, 5), volume=None, component="platelets")
    await give(env, chi, date(2025, 11, 30))  # before the twelve months: not counted
    async with env.sessionmaker() as s:  # Bình's next donation will be his fifth
        donor = await s.get(Donor, binh)
        donor.donation_count = 4
        await s.commit()
    await request_with(env, [(lan, "donated", 40), (chi, "no_show", None), (binh, "declined", None)])
    return club, lead


async def test_a_lead_gets_a_chart_and_figures_that_add_up(env):
    club, lead = await club_with_history(env)
    replies = await lead.send("/stats")

    photos = env.sim.photos(lead.id)
    assert len(photos) == 1
    image = Image.open(io.BytesIO(photos[0].data))
    assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # bars, labels and text: not a blank canvas

    text = replies[-1]["text"]
    assert "Members: 4, of them Rh−: 1" in text
    assert "Donations: 3; members who gave: 2; more than once: 1 (50%)" in text
    assert "350 ml units: 50% of the donations with a recorded volume (2)" in text
    assert "Calls received: 3. Said available: 2 (67%); came: 1 (50%); donated: 1." in text
    assert "Requests helped: 1; median time from the request to a member's first donation: 40 min." in text
    assert "Trần Văn Bình: 4 so far, next is number 5" in text


async def test_the_workbook_holds_the_same_totals_as_the_database(env):
    club, lead = await club_with_history(env)
    await lead.send("/stats xlsx")
    files = env.sim.documents(lead.id)
    assert len(files) == 1 and files[0].file_name.endswith(".xlsx")
    book = load_workbook(io.BytesIO(files[0].data))
    assert book.sheetnames == ["Members", "Donations", "Calls"]

    months = book["Donations"]
    rows = list(months.iter_rows(values_only=True))
    assert len(rows) == 1 + 12 + 1  # header, twelve months, total
    first = month_starts(TODAY)[0]
    async with env.sessionmaker() as s:
        in_db = (await s.exec(select(func.count()).select_from(Donation)
                              .where(Donation.donated_on >= first, Donation.donated_on <= TODAY))).one()
    assert rows[-1][-1] == in_db == 3
    assert sum(r[-1] for r in rows[1:-1]) == in_db
    members = list(book["Members"].iter_rows(values_only=True))
    assert members[-1][:2] == ("Total", 4)


async def test_a_wrong_format_gets_the_usage_and_sends_nothing(env):
    club, lead = await club_with_history(env)
    replies = await lead.send("/stats pdf")
    assert "Usage: /stats" in replies[-1]["text"]
    assert env.sim.photos(lead.id) == [] and env.sim.documents(lead.id) == []


async def test_vietnamese_figures_use_vietnamese_words_and_number_format(env):
    club = await make_club(env)
    user = env.user(first_name="Hoa", language_code="vi")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=user.id, first_name="Hoa", locale="vi"))
        s.add(ClubMembership(club_id=club.id, role="lead", telegram_id=user.id))
        await s.commit()
    donor = await seed(env, club, "Nguyễn Thị Lan", "+84912000001", "O-")
    await give(env, donor, date(2026, 3, 1))
    replies = await user.send("/stats")
    assert "Thành viên: 1, trong đó Rh−: 1" in replies[-1]["text"]
    assert len(env.sim.photos(user.id)) == 1


async def test_someone_who_leads_no_club_gets_no_club_figures(env):
    await club_with_history(env)
    stranger = env.user(first_name="Khách", language_code="en")
    await stranger.send("/start")
    await stranger.send("/stats")
    assert env.sim.photos(stranger.id) == [] and env.sim.documents(stranger.id) == []


# --- hospital staff -------------------------------------------------------------------------


async def staff_of(env, hospital_id: int, language: str = "en"):
    user = env.user(first_name="Hạnh", language_code=language)
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=user.id, first_name="Hạnh", locale=language))
        s.add(HospitalStaff(hospital_id=hospital_id, telegram_id=user.id))
        await s.commit()
    return user


async def hospital_with_history(env, club_name: str = "CLB Hiến máu dự bị Lê Chân",
                                hospital_name: str = "BV Việt Tiệp") -> int:
    """Four requests: one covered in time, one late, one cancelled, one still running."""
    club = await make_club(env, club_name)
    donors = [await seed(env, club, f"Người hiến {i}", f"+8491200010{i}", "O-") for i in range(6)]
    posted = START - timedelta(days=3)
    async with env.sessionmaker() as s:
        hospital = Hospital(name=hospital_name, lat=20.85, lon=106.68)
        s.add(hospital)
        await s.flush()

        def request(urgency: str, units: int, deadline_h: float, state: str, at=posted) -> BloodRequest:
            r = BloodRequest(hospital_id=hospital.id, abo="O", rh="-", component="red_cells", units=units,
                             urgency=urgency, deadline=at + timedelta(hours=deadline_h), created_at=at, state=state)
            s.add(r)
            return r

        in_time = request("critical", 2, 2, "fulfilled")
        late = request("urgent", 1, 2, "fulfilled")
        request("planned", 1, 48, "cancelled")
        request("urgent", 1, 6, "dispatching", at=START - timedelta(hours=1))
        await s.flush()
        for request_id, donor, state, minutes in (
                (in_time.id, donors[0], "donated", 40), (in_time.id, donors[1], "donated", 70),
                (in_time.id, donors[2], "no_show", None), (late.id, donors[3], "donated", 200),
                (late.id, donors[4], "deferred", 150), (late.id, donors[5], "declined", None)):
            s.add(RequestContact(request_id=request_id, donor_id=donor, state=state, asked_at=posted,
                                 outcome_at=posted + timedelta(minutes=minutes) if minutes is not None else None))
        await s.commit()
        return hospital.id


async def test_staff_see_whether_the_blood_came_in_time(env):
    hospital_id = await hospital_with_history(env)
    nurse = await staff_of(env, hospital_id)
    replies = await nurse.send("/stats")
    photos = env.sim.photos(nurse.id)
    assert len(photos) == 1 and Image.open(io.BytesIO(photos[0].data)).size == (WIDTH_PX, HEIGHT_PX)
    text = replies[-1]["text"]
    assert "Requests: 4 (cancelled: 1; still running: 1)" in text
    assert "Every unit donated before the deadline: 1 of 2 decided requests (50%)" in text
    assert "Units received: 3 of 4 asked" in text
    assert "median 120 min, 90% within 200 min" in text
    assert "did not come: 1 of 5 (20%)" in text and "Deferred at screening: 1 of 4 who came (25%)" in text
    assert "CLB Hiến máu dự bị Lê Chân 3" in text
    assert "Người hiến" not in text  # counts and clubs, never a donor


async def test_a_lead_who_is_not_staff_gets_the_club_not_the_hospital(env):
    hospital_id = await hospital_with_history(env)
    async with env.sessionmaker() as s:
        club_id = (await s.exec(select(ClubMembership.club_id))).first()
    lead = env.user(first_name="Minh", language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=lead.id, first_name="Minh", locale="en"))
        s.add(ClubMembership(club_id=club_id, role="lead", telegram_id=lead.id))
        await s.commit()
    replies = await lead.send("/stats")
    assert "BV Việt Tiệp" not in replies[-1]["text"] and "Members: 6" in replies[-1]["text"]
    assert hospital_id


def test_numbers_follow_the_reader_s_language():
    from bot.texts import fmt_number
    assert fmt_number(1.4, "vi") == "1,4" and fmt_number(65.5, "vi") == "65,5" and fmt_number(12345, "vi") == "12.345"
    assert fmt_number(1.4, "en") == "1.4" and fmt_number(12345, "en") == "12,345"


# --- exports in chat ------------------------------------------------------------------------


async def test_a_lead_exports_the_members_donations_with_the_privacy_warning(env):
    club, lead = await club_with_history(env)
    await lead.send("/export donations")
    (sent,) = env.sim.documents(lead.id)
    assert sent.file_name.endswith(".xlsx") and "keep it safe" in sent.caption and ": 3." in sent.caption
    rows = list(load_workbook(io.BytesIO(sent.data)).active.iter_rows(values_only=True))
    assert rows[0][:2] == ("Date", "Name") and len(rows) == 1 + 3  # the three of the last twelve months
    assert {r[1] for r in rows[1:]} == {"Nguyễn Thị Lan", "Trần Văn Bình"}
    replies = await lead.send("/export everything")
    assert "Usage: /export" in replies[-1]["text"] and len(env.sim.documents(lead.id)) == 1


async def test_staff_export_their_hospital_s_requests_naming_no_donor(env):
    hospital_id = await hospital_with_history(env)
    nurse = await staff_of(env, hospital_id)
    await nurse.send("/export")
    (sent,) = env.sim.documents(nurse.id)
    rows = list(load_workbook(io.BytesIO(sent.data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "Request" and len(rows) == 1 + 4
    donated = {r[0]: (r[10], r[11]) for r in rows[1:]}  # request -> (donated, donated before the deadline)
    assert sorted(donated.values()) == [(0, 0), (0, 0), (1, 0), (2, 2)]
    assert not any("Người hiến" in str(cell) for row in rows for cell in row)
    stranger = env.user(first_name="Khách", language_code="en")
    await stranger.send("/start")
    await stranger.send("/export")
    assert env.sim.documents(stranger.id) == []


# --- the steering committee -----------------------------------------------------------------


async def test_an_admin_sees_the_committee_summary_as_the_sum_of_the_clubs_and_hospitals(env):
    from tests.harness import ADMIN_ID

    await club_with_history(env)  # 4 members, 3 donations (2 at 350 ml of 2 with a volume), 1 Rh−
    # A second club (6 Rh− members) and hospital (4 requests) beside the first (1 request, still running).
    hospital_id = await hospital_with_history(env, "CLB Kiến An", "BV Kiến An")
    admin = env.user(ADMIN_ID, first_name="Quân", language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=admin.id, first_name="Quân", locale="en"))
        await s.commit()
    text = (await admin.send("/stats"))[-1]["text"]
    assert "Steering committee" in text
    assert "Donations by club members: 3. 350 ml units: 50%" in text
    assert "Members: 10, of them Rh−: 7; new in the period: 10." in text
    assert "Requests: 5. Every unit donated before the deadline: 1 of 2 decided (50%). Units received: 4 of 6." in text
    assert "Người hiến" not in text and "Nguyễn Thị Lan" not in text  # clubs and counts, never a donor

    await admin.send("/stats xlsx")
    (sent,) = env.sim.documents(admin.id)
    book = load_workbook(io.BytesIO(sent.data))
    assert book.sheetnames == ["Clubs", "Hospitals"]
    clubs = list(book["Clubs"].iter_rows(values_only=True))
    assert clubs[-1][:5] == ("Total", 10, 7, 10, 3) and sum(r[1] for r in clubs[1:-1]) == 10
    assert hospital_id


# --- one month --------------------------------------------------------------------------------


async def test_stats_for_one_month_count_that_month_only_and_a_future_month_is_refused(env):
    club, lead = await club_with_history(env)
    text = (await lead.send("/stats 02/2026"))[-1]["text"]
    assert "figures for 01/02/2026 – 28/02/2026" in text
    assert "Donations: 1; members who gave: 1; more than once: 0 (0%)" in text  # Lan's of 10/02 only
    assert "No request was helped" in text  # the request was posted in November
    assert len(env.sim.photos(lead.id)) == 1  # the chart: the twelve months up to February

    text = (await lead.send("/stats 11/2026"))[-1]["text"]
    assert "figures for 01/11/2026 – 22/11/2026" in text and "Requests helped: 1" in text

    replies = await lead.send("/stats 01/2027")
    assert "has not happened yet" in replies[-1]["text"] and "Usage: /stats" in replies[-1]["text"]
    replies = await lead.send("/stats 11/2026 10/2026")
    assert "at most one month" in replies[-1]["text"]
    assert len(env.sim.photos(lead.id)) == 2  # nothing sent for the refused ones


async def test_staff_stats_for_one_month(env):
    hospital_id = await hospital_with_history(env)
    nurse = await staff_of(env, hospital_id)
    text = (await nurse.send("/stats 11/2026"))[-1]["text"]
    assert "Requests: 4 (cancelled: 1; still running: 1)" in text and "01/11/2026 – 22/11/2026" in text
    text = (await nurse.send("/stats 10/2026"))[-1]["text"]
    assert "Requests: 0 (cancelled: 0; still running: 0)" in text and "Units received: 0 of 0" in text


async def test_the_committee_s_summary_for_one_month(env):
    from tests.harness import ADMIN_ID

    club, _lead = await club_with_history(env)  # donations in 02/2026, 06/2026 and 10/2026
    async with env.sessionmaker() as s:  # one member joined in October, the others later
        first = (await s.exec(select(ClubMembership).where(ClubMembership.club_id == club.id,
                                                           ClubMembership.role == "member")
                              .order_by(ClubMembership.id))).first()
        first.created_at = datetime(2026, 10, 15, 3, 0, tzinfo=timezone.utc)
        await s.commit()
    admin = env.user(ADMIN_ID, first_name="Quân", language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=admin.id, first_name="Quân", locale="en"))
        await s.commit()
    text = (await admin.send("/stats 10/2026"))[-1]["text"]
    assert "01/10/2026 – 31/10/2026" in text
    assert "Donations by club members: 1. 350 ml units: 0%" in text  # Lan's 250 ml of 01/10 only
    assert "Members: 4, of them Rh−: 1; new in the period: 1." in text
    text = (await admin.send("/stats 09/2026"))[-1]["text"]
    assert "01/09/2026 – 30/09/2026" in text and "new in the period: 0." in text

    await admin.send("/stats xlsx 10/2026")
    (sent,) = env.sim.documents(admin.id)
    assert sent.file_name == "redreserve-stats-2026-10.xlsx"
    replies = await admin.send("/stats soon")
    assert "is not a month" in replies[-1]["text"] and "/stats 11/2026 for one month" in replies[-1]["text"]
    assert len(env.sim.documents(admin.id)) == 1
