"""Personal data stays where it belongs (issue 10): call lists, imports, consent, /forget."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlmodel import select

from models.geo import geo_cell
from models.tables import AuditLog, Club, ClubMembership, Donor, TelegramUser
from tests.harness import start_bot, stop_bot
from tests.test_journey_desk import board_of
from tests.test_journey_dispatch import HOSPITAL, calls, post, seed
from ground.parsing import format_phone


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def add_member(env, name: str, phone: str, *, telegram_id: int | None = None, profile_only: bool = False,
                     club_name: str = "CLB Lê Chân") -> int:
    """A compatible member near the hospital; ``profile_only``: registered, agreed only to keep her profile."""
    async with env.sessionmaker() as s:
        club = (await s.exec(select(Club).where(Club.name == club_name))).first()
        if club is None:
            club = Club(name=club_name, lat=HOSPITAL[0], lon=HOSPITAL[1])
            s.add(club)
            await s.flush()
        d = Donor(full_name=name, phone=phone, abo="O", rh="+", sex="F", birth_date=date(1985, 1, 1), weight_kg=55,
                  lat=HOSPITAL[0], lon=HOSPITAL[1], geo_cell=geo_cell(*HOSPITAL), telegram_id=telegram_id,
                  consent_profile_at=env.clock() if profile_only else None)
        s.add(d)
        if telegram_id is not None:
            s.add(TelegramUser(telegram_id=telegram_id, first_name=name.split()[-1], locale="en"))
        await s.flush()
        s.add(ClubMembership(club_id=club.id, donor_id=d.id))
        await s.commit()
        return club.id


async def make_lead(env, club_id: int, first_name: str, phone: str | None = None):
    lead = env.user(first_name=first_name, language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=lead.id, first_name=first_name, locale="en"))
        s.add(ClubMembership(club_id=club_id, role="lead", telegram_id=lead.id))
        if phone is not None:  # the lead registered as a donor herself
            s.add(Donor(full_name=f"{first_name} Trưởng nhóm", phone=phone, telegram_id=lead.id,
                        consent_profile_at=env.clock()))
        await s.commit()
    await lead.send("/help")
    return lead


async def test_staff_call_list_names_the_club_leads_and_those_who_accepted_never_other_members(env):
    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(3)])
    club_id = await add_member(env, "Bà Tư không dùng Telegram", "+84911222333")
    await add_member(env, "Chị Hoa chỉ lưu hồ sơ", "+84911444555", telegram_id=777_001, profile_only=True)
    await make_lead(env, club_id, "Quang", phone="+84988777666")
    await post(env, staff, "O+ 1")
    asked = [u for u in donors if calls(u)]
    await asked[0].tap("Available")
    await env.drain()
    async with env.sessionmaker() as s:
        accepted = (await s.exec(select(Donor).where(Donor.telegram_id == asked[0].id))).one()
    await staff.tap("Call list", board_of(staff))
    text = staff.last_text()
    assert "Quang" in text and "0988 777 666" in text and "CLB Lê Chân" in text and "1 member to phone" in text
    assert accepted.full_name in text and format_phone(accepted.phone) in text
    for hidden in ("Bà Tư", "+84911222333", "0911 222 333", "Chị Hoa", "+84911444555", "0911 444 555"):
        assert hidden not in text
    async with env.sessionmaker() as s:
        assert (await s.exec(select(AuditLog).where(AuditLog.action == "call_list_viewed"))).first()


async def test_a_lead_is_paged_with_her_own_members_but_never_one_who_refused_contact(env):
    staff, donors = await seed(env, [("O", "+", 1)])
    club_id = await add_member(env, "Bà Tư không dùng Telegram", "+84911222333")
    await add_member(env, "Chị Hoa chỉ lưu hồ sơ", "+84911444555", telegram_id=777_001, profile_only=True)
    other = await add_member(env, "Anh Nam ở CLB khác", "+84911666777", club_name="CLB Kiến An")
    lead = await make_lead(env, club_id, "Quang")
    other_lead = await make_lead(env, other, "Hùng")
    await post(env, staff, "O+ 1")
    await donors[0].tap("Not this time")
    await env.drain()
    paged = lead.last_text()
    assert "Please phone these members" in paged and "0911 222 333" in paged
    assert "0911 444 555" not in paged and "0911 666 777" not in paged
    other_paged = other_lead.last_text()
    assert "0911 666 777" in other_paged and "0911 222 333" not in other_paged
    staff_texts = " ".join(m.get("text", "") for m in staff.bot_messages())
    for phone in ("+84911222333", "+84911444555", "+84911666777"):
        assert phone not in staff_texts and format_phone(phone) not in staff_texts


# --- roster files ---------------------------------------------------------------------------


async def test_a_roster_file_cannot_overwrite_another_clubs_donor_nor_link_an_account(env):
    await add_member(env, "Bà Tư của CLB Lê Chân", "+84911222333")
    async with env.sessionmaker() as s:
        kien_an = Club(name="CLB Kiến An", lat=HOSPITAL[0], lon=HOSPITAL[1])
        s.add(kien_an)
        await s.commit()
    lead = await make_lead(env, kien_an.id, "Hùng")
    data = ("name,phone,blood_type,telegram_id\n"
            "Tên Giả,0911 222 333,AB-,\n"
            f"Người Mới,0911999888,O+,{lead.id}\n").encode()
    replies = await lead.upload("members.csv", data)
    report = replies[-1]["text"]
    assert "row 2, phone" in report and "belongs to another club" in report and "/invitelink" in report
    assert "Telegram ID column was not used" in report
    await lead.tap("Import")
    async with env.sessionmaker() as s:
        tu = (await s.exec(select(Donor).where(Donor.phone == "+84911222333"))).one()
        assert (tu.full_name, tu.abo, tu.rh) == ("Bà Tư của CLB Lê Chân", "O", "+")
        assert [m.club_id for m in (await s.exec(select(ClubMembership).where(
            ClubMembership.donor_id == tu.id))).all()] != [kien_an.id]
        new = (await s.exec(select(Donor).where(Donor.phone == "+84911999888"))).one()
        assert new.telegram_id is None
    replies = await lead.send("/me")
    assert "Người Mới" not in replies[-1]["text"] and "0911 999 888" not in replies[-1]["text"]


# --- consent on first contact ---------------------------------------------------------------


async def test_a_member_linked_without_her_consent_is_asked_on_first_contact_and_not_called_before(env):
    staff, donors = await seed(env, [("O", "+", 1)])
    hoa = env.user(first_name="Hoa", language_code="en")
    club_id = await add_member(env, "Chị Hoa nhập từ file", "+84911444555", telegram_id=hoa.id)
    lead = await make_lead(env, club_id, "Quang")
    await post(env, staff, "O+ 1")
    assert calls(hoa) == []  # linked by a file, never asked: treated as not on Telegram
    await donors[0].tap("Not this time")
    await env.drain()
    assert "0911 444 555" in lead.last_text()  # her lead phones her instead

    replies = await hoa.send("/me")
    assert "Chị Hoa" not in replies[-1]["text"]  # the account is not hers to read until she says so
    replies = await hoa.send("/start")
    assert "Welcome back" not in replies[-1]["text"] and "Choose your language" in replies[-1]["text"]
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor).where(Donor.telegram_id == hoa.id))).one().consent_profile_at is None
    await hoa.tap("English")
    await hoa.tap("Keep my profile")
    await hoa.tap("Contact me in emergencies")
    await hoa.tap("Continue")
    replies = await hoa.share_contact("+84911444555")
    assert "found you on your club's roster" in " ".join(m.get("text", "") for m in replies)
    await hoa.tap("Confirm")
    async with env.sessionmaker() as s:
        donor = (await s.exec(select(Donor).where(Donor.telegram_id == hoa.id))).one()
        assert donor.phone == "+84911444555" and donor.consent_profile_at and donor.consent_contact_at


async def test_an_account_a_file_linked_to_someone_else_registers_its_own_phone(env):
    """A lead's file put her own Telegram id on a member: the lead's account is not that member."""
    quang = env.user(first_name="Quang", language_code="en")
    await add_member(env, "Chị Hoa nhập từ file", "+84911444555", telegram_id=quang.id)
    replies = await quang.send("/start")
    assert "Choose your language" in replies[-1]["text"]
    await quang.tap("English")
    await quang.tap("Keep my profile")
    await quang.tap("Continue")
    await quang.share_contact("+84988777666")
    await quang.send("Trần Văn Quang")
    await quang.tap("O+")
    await quang.tap("Male")
    await quang.send("15/05/1990")
    await quang.send("68")
    await quang.send("Lê Chân")
    await quang.tap("never")
    await quang.tap("CLB Lê Chân")
    await quang.tap("Confirm")
    async with env.sessionmaker() as s:
        by_phone = {d.phone: d for d in (await s.exec(select(Donor))).all()}
    assert by_phone["+84988777666"].telegram_id == quang.id
    assert by_phone["+84911444555"].telegram_id is None


# --- /forget --------------------------------------------------------------------------------


def _sqlite_bytes(db_url: str) -> bytes:
    path = db_url.split("///", 1)[1]
    data = b""
    for suffix in ("", "-wal"):
        try:
            with open(path + suffix, "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


async def test_forget_leaves_no_copy_in_the_outbox_nor_in_the_database_file(env, db_url):
    from models.dispatch_tables import OutboxMessage, RequestContact

    staff, donors = await seed(env, [("O", "+", 1 + i) for i in range(4)])
    await post(env, staff, "O+ 1")
    lan = [u for u in donors if calls(u)][0]
    async with env.sessionmaker() as s:
        me = (await s.exec(select(Donor).where(Donor.telegram_id == lan.id))).one()
        phone, name = me.phone, me.full_name
    await lan.tap("Available")
    await env.drain()
    async with env.sessionmaker() as s:
        c = (await s.exec(select(RequestContact).where(RequestContact.state == "available"))).one()
    env.clock.advance(minutes=c.travel_min + 31)
    await env.reminders.run_due()
    await env.drain()
    assert any(format_phone(phone) in m.get("text", "") for m in staff.bot_messages())  # the nurse's nudge, to ring her
    async with env.sessionmaker() as s:
        nudge = (await s.exec(select(OutboxMessage).where(OutboxMessage.kind == "nudge_arrival"))).one()
    assert nudge.state == "sent" and phone not in str(nudge.params) and name not in str(nudge.params)

    await lan.send("/forget")
    await lan.tap("Yes, delete my data")
    async with env.sessionmaker() as s:
        rows = (await s.exec(select(OutboxMessage))).all()
    for row in rows:
        assert phone not in str(row.params) and name not in str(row.params)
    if db_url.startswith("sqlite"):
        raw = _sqlite_bytes(db_url)
        assert phone.encode() not in raw and name.encode() not in raw


async def test_forget_takes_her_off_a_call_list_still_waiting_to_be_sent(db_sessionmaker):
    from datetime import UTC, datetime

    from dispatcher import messages as M
    from dispatcher.outbox import enqueue
    from models import donors as donor_records
    from models.dispatch_tables import OutboxMessage

    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    async with db_sessionmaker() as s:
        tu = Donor(full_name="Bà Tư", phone="+84911222333")
        s.add(tu)
        await s.flush()
        listed = (M.Listed(name="Bà Tư", phone="+84911222333", type="O+"),
                  M.Listed(name="Anh Nam", phone="+84911666777", type="O+"))
        await enqueue(s, key="lead_rare:1:1:5", chat_id=5, now=now, params=M.LeadRare(
            request_id=1, club_id=1, hospital="BV", abo="O", rh="+", component="red_cells",
            deadline_local="10:00 22/11/2026", call_list=listed))
        await enqueue(s, key="nudge_arrival:9", chat_id=6, now=now, params=M.NudgeArrival(
            request_id=1, contact_id=9, name="Bà Tư", phone="+84911222333", minutes=40, en_route=False))
        await s.commit()
        await donor_records.forget(s, tu.id, now=now, actor="cli")
    async with db_sessionmaker() as s:
        rows = {r.key: r for r in (await s.exec(select(OutboxMessage))).all()}
    assert rows["lead_rare:1:1:5"].state == "pending"
    assert rows["lead_rare:1:1:5"].params["call_list"] == [listed[1].to_json()]
    assert (rows["nudge_arrival:9"].state, rows["nudge_arrival:9"].params) == ("cancelled", {})


# --- a workbook too big to unpack -----------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_a_zip_bomb_gets_a_clear_refusal_and_changes_nothing(env):
    from bench.xlsx_bomb import make_bomb

    club_id = await add_member(env, "Bà Tư", "+84911222333")
    lead = await make_lead(env, club_id, "Quang")
    replies = await lead.upload("roster.xlsx", make_bomb(unpacked_mb=150, level=1), XLSX)
    text = replies[-1]["text"]
    assert "unpacks to 150 MB" in text and "at most 128 MB" in text and "send it again" in text
    assert "Import" not in " ".join(lead.buttons(replies[-1]))
    async with env.sessionmaker() as s:
        assert len((await s.exec(select(Donor))).all()) == 1


async def test_others_are_answered_while_a_workbook_is_being_read(env, monkeypatch):
    import threading

    from bot.routers import lead_files

    club_id = await add_member(env, "Bà Tư", "+84911222333")
    lead = await make_lead(env, club_id, "Quang")
    other = env.user(first_name="Mai", language_code="en")
    reading, go_on = threading.Event(), threading.Event()
    real_open = lead_files.open_roster

    def slow_open(*args, **kwargs):  # a big workbook, as long as the test likes
        reading.set()
        go_on.wait(30)  # on the event loop (before the fix) this froze everyone for 30 s
        return real_open(*args, **kwargs)

    monkeypatch.setattr(lead_files, "open_roster", slow_open)
    upload = env.sim.push_document(lead.id, "roster.xlsx", a_workbook(), mime_type=XLSX)
    for _ in range(200):
        if reading.is_set():
            break
        await asyncio.sleep(0.05)
    assert reading.is_set()
    replies = await other.send("/help")  # waits for the answer (10 s at most)
    assert "What you can do here" in replies[-1]["text"]
    assert upload["update_id"] not in env.tracker.done  # the workbook is still being read
    go_on.set()
    await env.handled(upload)
    assert "1 new donor," in lead.last_text()


def a_workbook() -> bytes:
    import io

    from ground.roster_file import RosterRow, write_roster

    out = io.BytesIO()
    write_roster(out, "xlsx", [RosterRow("Người Mới", "+84911999888", "O", "+")])
    return out.getvalue()


def a_roster_of(n: int) -> bytes:
    import io

    from ground.roster_file import RosterRow, write_roster

    out = io.BytesIO()
    write_roster(out, "xlsx", [RosterRow(f"Người {i}", f"+849130{i:05d}", "O", "+") for i in range(n)])
    return out.getvalue()


async def test_a_club_sized_workbook_of_400_members_passes_the_row_cap(env):
    club_id = await add_member(env, "Bà Tư", "+84911222333")
    lead = await make_lead(env, club_id, "Quang")
    await lead.upload("roster.xlsx", a_roster_of(400), XLSX)
    assert "400 new donors" in lead.last_text()


async def test_a_workbook_over_the_row_cap_is_refused_naming_the_limit_and_nothing_is_saved(db_sessionmaker, db_url):
    """Within the unpacked-size bound a workbook can still hold a million junk rows: minutes of a worker."""
    env = await start_bot(db_sessionmaker, db_url, max_roster_rows=100)
    try:
        club_id = await add_member(env, "Bà Tư", "+84911222333")
        lead = await make_lead(env, club_id, "Quang")
        replies = await lead.upload("roster.xlsx", a_roster_of(400), XLSX)
        assert "more than 100 rows" in lead.last_text() and "at most 100" in lead.last_text()
        assert "Import" not in " ".join(lead.buttons(replies[-1]))
        async with env.sessionmaker() as s:
            assert len((await s.exec(select(Donor))).all()) == 1
    finally:
        await stop_bot(env)
