"""Club leads, end to end through the Bot API simulator: roster, find, add, edit, remove,
import, export, invite links, and presses that must be refused."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlmodel import select

from bot.callbacks import LeadClubCb, MemberCb
from bot.i18n import make_i18n
from bot.routers.lead_files import REPORT_LINE_CHARS, report_text
from models.directory import create_club
from models.roster import ImportReport
from models.tables import AuditLog, ClubMembership, Donor, TelegramUser
from ground.i18n import Text
from ground.roster_file import RowError
from tests.harness import start_bot, stop_bot

TODAY = date(2026, 11, 22)  # harness START, 10:00 in Hà Nội


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url, page_size=2)
    yield env
    await stop_bot(env)


async def make_club(env, name="CLB Hiến máu dự bị Lê Chân", lat=20.8449, lon=106.6881):
    async with env.sessionmaker() as s:
        return await create_club(s, name, lat, lon, "Lê Chân, Hải Phòng", actor="cli")


async def make_lead(env, *clubs, first_name="Minh"):
    """A lead who reads English, as if they had redeemed a lead invite for each club."""
    user = env.user(first_name=first_name, language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=user.id, first_name=first_name, locale="en"))
        for club in clubs:
            s.add(ClubMembership(club_id=club.id, role="lead", telegram_id=user.id))
        await s.commit()
    return user


async def seed(env, club, name, phone, blood="O-", *, last=None, status="active", until=None, telegram_id=None,
               sex="F", birth=date(1990, 5, 15), weight=55.0) -> int:
    abo, rh = (blood[:-1], blood[-1]) if blood else (None, None)
    async with env.sessionmaker() as s:
        donor = Donor(full_name=name, phone=phone, abo=abo, rh=rh, sex=sex, birth_date=birth, weight_kg=weight,
                      last_donation_date=last, status=status, status_until=until, telegram_id=telegram_id,
                      lat=club.lat, lon=club.lon, location_approx=True)
        s.add(donor)
        await s.flush()
        s.add(ClubMembership(club_id=club.id, donor_id=donor.id))
        await s.commit()
        return donor.id


def table_row(text: str, label: str) -> list[int]:
    """The numbers on the roster table's line for ``label`` (a blood type, or Total)."""
    for line in text.splitlines():
        if line.startswith(label + " "):
            return [int(n) for n in line.split()[-4:]]
    raise AssertionError(f"no {label!r} line in {text!r}")


def now_showing(user, message: dict) -> dict:
    """The message as it reads now: buttons edit it in place instead of sending new ones."""
    return next(m for m in user.bot_messages() if m["message_id"] == message["message_id"])


async def audit(env, action: str) -> list[AuditLog]:
    async with env.sessionmaker() as s:
        return list((await s.exec(select(AuditLog).where(AuditLog.action == action))).all())


# --- /roster ------------------------------------------------------------------------------


async def test_the_roster_counts_each_type_with_rh_negative_first(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    await seed(env, club, "An", "+84912000001", "O-", telegram_id=555_001)  # never gave: ready
    await seed(env, club, "Bình", "+84912000002", "O-", last=TODAY - timedelta(days=30))
    await seed(env, club, "Chi", "+84912000003", "O-", status="paused", until=TODAY + timedelta(days=10))
    await seed(env, club, "Dũng", "+84912000004", "A+", last=TODAY - timedelta(days=84))  # ready again today
    await seed(env, club, "Em", "+84912000005", "O+", last=TODAY - timedelta(days=83))  # one day short
    await seed(env, club, "Phúc", "+84912000006", None)
    other = await make_club(env, "CLB Lào Cai", 22.48, 103.97)
    await seed(env, other, "Giang", "+84912000007", "O-")  # another club's member is not counted

    text = (await lead.send("/roster"))[-1]["text"]

    order = [line.split()[0] for line in text.splitlines() if line[:1] in "OABu" and " " in line]
    assert order[:8] == ["O−", "A−", "B−", "AB−", "O+", "A+", "B+", "AB+"]
    assert order[8] == "unknown"
    #                         all ready off no-telegram
    assert table_row(text, "O−") == [3, 1, 1, 2]
    assert table_row(text, "A+") == [1, 1, 0, 1]
    assert table_row(text, "O+") == [1, 0, 0, 1]
    assert table_row(text, "AB−") == [0, 0, 0, 0]
    assert table_row(text, "unknown") == [1, 0, 0, 1]
    assert table_row(text, "Total") == [6, 2, 1, 5]


async def test_a_donor_sending_roster_is_told_it_is_for_leads(env):
    club = await make_club(env)
    donor = env.user(language_code="en")
    async with env.sessionmaker() as s:
        s.add(TelegramUser(telegram_id=donor.id, first_name="Lan", locale="en"))
        await s.commit()
    await seed(env, club, "Lan", "+84912000001", telegram_id=donor.id)
    replies = await donor.send("/roster")
    assert "for club leads" in replies[-1]["text"]


async def test_a_lead_of_two_clubs_chooses_the_club(env):
    a = await make_club(env)
    b = await make_club(env, "CLB Lào Cai", 22.48, 103.97)
    lead = await make_lead(env, a, b)
    await seed(env, b, "Giang", "+84912000007", "B-")
    replies = await lead.send("/roster")
    assert "Which club?" in replies[-1]["text"]
    replies = await lead.tap("CLB Lào Cai")
    assert "CLB Lào Cai" in replies[-1]["text"] and table_row(replies[-1]["text"], "B−") == [1, 1, 0, 1]


# --- /find and the member card -----------------------------------------------------------


async def test_find_pages_through_one_type_editing_the_same_message(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    await seed(env, club, "An", "+84912000001", "O-", last=TODAY - timedelta(days=10))
    await seed(env, club, "Bình", "+84912000002", "O-")
    await seed(env, club, "Chi", "+84912000003", "O-", last=TODAY - timedelta(days=50))
    await seed(env, club, "Dũng", "+84912000004", "O-")
    await seed(env, club, "Em", "+84912000005", "O-", last=TODAY - timedelta(days=100))
    await seed(env, club, "Phúc", "+84912000006", "O+")

    replies = await lead.send("/find O Rh âm")
    page = replies[-1]
    assert "5 members" in page["text"] and "page 1/3" in page["text"]
    # Likely-eligible members come first, alphabetically; the latest donor last.
    assert "Bình" in page["text"] and "Dũng" in page["text"] and "Phúc" not in page["text"]
    assert "◀" not in lead.buttons(page)

    assert await lead.tap("▶", page) == []  # no new message: the page is edited
    text = now_showing(lead, page)["text"]
    assert "page 2/3" in text and "Em" in text and "Chi" in text
    await lead.tap("▶")
    text = now_showing(lead, page)["text"]
    assert "page 3/3" in text and "An" in text and "recently gave blood" in text
    assert "▶" not in lead.buttons(now_showing(lead, page))
    await lead.tap("◀")
    assert "page 2/3" in now_showing(lead, page)["text"]

    await lead.tap("Chi")
    card = now_showing(lead, page)["text"]
    assert "0912 000 003" in card and "Not on Telegram" in card
    await lead.tap("Back")
    assert "page 2/3" in now_showing(lead, page)["text"]


@pytest.mark.parametrize("command", ["/find", "/find X+", "/find A", "/find <O"])
async def test_find_without_a_good_blood_type_explains_and_shows_usage(env, command):
    club = await make_club(env)
    lead = await make_lead(env, club)
    replies = await lead.send(command)
    assert "Usage: /find" in replies[-1]["text"]
    assert "blood type" in replies[-1]["text"].lower() or "Rh" in replies[-1]["text"]


async def test_a_lead_edits_a_members_weight_and_defers_them(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    donor_id = await seed(env, club, "Chi", "+84912000003", "A-")
    await lead.send("/find A-")
    await lead.tap("Chi")
    await lead.tap("Edit")
    await lead.tap("Weight")
    replies = await lead.send("five")
    assert "not a weight" in replies[-1]["text"]
    replies = await lead.send("61,5")
    assert "61.5 kg" in replies[-1]["text"] and "✏️ Edit" in lead.buttons()

    await lead.tap("Edit")
    await lead.tap("Status")
    await lead.tap("Deferred until")
    await lead.tap("Tattoo")
    until = TODAY + timedelta(days=182)
    await lead.tap(f"Until {until:%d/%m/%Y}")
    assert f"deferred until {until:%d/%m/%Y}" in lead.last_text()
    async with env.sessionmaker() as s:
        donor = await s.get(Donor, donor_id)
        assert donor.weight_kg == 61.5
        assert (donor.status, donor.status_until, donor.deferral_reason) == ("deferred", until, "6m")
    edits = await audit(env, "member.edit")
    assert [e.detail for e in edits] == [f"club:{club.id} field=weight", f"club:{club.id} field=status"]
    assert all("61" not in e.detail for e in edits)  # the audit names the field, never the value


async def test_removing_a_member_asks_first_and_keeps_a_linked_donor(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    imported = await seed(env, club, "An", "+84912000001", "B+")
    linked = await seed(env, club, "Bình", "+84912000002", "B+", telegram_id=555_002)

    await lead.send("/find B+")
    await lead.tap("An")
    await lead.tap("Remove")
    assert "Remove An from CLB Hiến máu dự bị Lê Chân?" in lead.last_text()
    assert "cannot be undone" in lead.last_text()
    await lead.tap("Keep")
    async with env.sessionmaker() as s:
        assert await s.get(Donor, imported) is not None  # nothing happens before the confirmation
    await lead.tap("Remove")
    await lead.tap("Yes, remove")
    assert "removed" in lead.last_text() and "deleted" in lead.last_text()

    await lead.tap("Back")
    await lead.tap("Bình")
    await lead.tap("Remove")
    assert "keep their own RedReserve account" in lead.last_text()
    await lead.tap("Yes, remove")
    async with env.sessionmaker() as s:
        assert await s.get(Donor, imported) is None  # never linked, in no other club: deleted
        assert (await s.get(Donor, linked)).telegram_id == 555_002  # their own account stays
        assert (await s.exec(select(ClubMembership).where(ClubMembership.donor_id.is_not(None)))).all() == []
    assert len(await audit(env, "member.remove")) == 2


async def test_forged_presses_for_another_clubs_member_are_refused_and_change_nothing(env):
    a = await make_club(env)
    b = await make_club(env, "CLB Lào Cai", 22.48, 103.97)
    lead_a = await make_lead(env, a)
    victim = await seed(env, b, "Giang", "+84912000007", "O-")
    roster = (await lead_a.send("/roster"))[-1]

    forged = MemberCb(action="remove_yes", club_id=b.id, donor_id=victim).pack()
    await lead_a.press(roster["message_id"], forged)
    assert "Only a lead of this member's club" in lead_a.alerts()[-1]
    forged = MemberCb(action="remove_yes", club_id=a.id, donor_id=victim).pack()  # their own club, B's member
    await lead_a.press(roster["message_id"], forged)
    assert "not on your club's roster" in lead_a.alerts()[-1]
    await lead_a.press(roster["message_id"], LeadClubCb(command="import", club_id=b.id).pack())
    assert "Only a lead" in lead_a.alerts()[-1]

    donor = env.user(language_code="en")  # not a lead at all
    await donor.send("/start")
    await donor.press(donor.last()["message_id"], MemberCb(action="open", club_id=b.id, donor_id=victim).pack())
    assert "Only a lead" in donor.alerts()[-1]

    async with env.sessionmaker() as s:
        assert await s.get(Donor, victim) is not None
        assert (await s.exec(select(ClubMembership).where(ClubMembership.donor_id == victim))).one().club_id == b.id
    assert await audit(env, "member.remove") == []
    refused = await audit(env, "access.refused")
    assert len(refused) == 4 and refused[0].actor_telegram_id == lead_a.id


# --- /add ---------------------------------------------------------------------------------


async def add_until_phone(lead, name="Hoàng Văn Nam"):
    await lead.send("/add")
    await lead.send(name)


async def test_a_lead_adds_a_member_step_by_step(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    await add_until_phone(lead)
    replies = await lead.send("12345")
    assert "12345" in replies[-1]["text"]  # the parser's explanation; the step is asked again
    await lead.send("0912 345 678")
    await lead.tap("AB−")
    await lead.tap("Male")
    await lead.send("03/03/1988")
    await lead.tap("Skip")  # weight not known
    replies = await lead.tap("Never gave blood")
    summary = replies[-1]["text"]
    assert "Hoàng Văn Nam" in summary and "0912 345 678" in summary and "AB−" in summary
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).all() == []  # nothing before Save
    await lead.tap("Save")
    assert "Added to the roster" in lead.last_text() and "Not on Telegram" in lead.last_text()
    async with env.sessionmaker() as s:
        donor = (await s.exec(select(Donor))).one()
        assert (donor.abo, donor.rh, donor.sex, donor.birth_date) == ("AB", "-", "M", date(1988, 3, 3))
        assert donor.weight_kg is None and donor.last_donation_date is None
        assert donor.telegram_id is None and donor.consent_contact_at is None
        assert donor.location_approx and (donor.lat, donor.lon) == (club.lat, club.lon)
        member = (await s.exec(select(ClubMembership).where(ClubMembership.donor_id == donor.id))).one()
        assert member.club_id == club.id and member.role == "member"
    assert [a.subject for a in await audit(env, "member.add")] == [f"donor:{donor.id}"]


async def test_adding_a_phone_already_on_the_roster_offers_to_open_that_member(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    await seed(env, club, "An", "+84912000001", "O+")
    await add_until_phone(lead)
    replies = await lead.send("0912 000 001")
    assert "already on your club's roster" in replies[-1]["text"]
    await lead.tap("Open")
    assert "An" in lead.last_text() and "0912 000 001" in lead.last_text()
    async with env.sessionmaker() as s:
        assert len((await s.exec(select(Donor))).all()) == 1


async def test_adding_a_donor_of_another_club_adds_them_to_this_roster_only(env):
    club = await make_club(env)
    other = await make_club(env, "CLB Lào Cai", 22.48, 103.97)
    lead = await make_lead(env, club)
    donor_id = await seed(env, other, "Giang", "+84912000007", "B-", weight=63)
    await add_until_phone(lead, "Someone Else")
    replies = await lead.send("+84 912 000 007")
    assert "already registered" in replies[-1]["text"]
    await lead.tap("Add to our roster")
    assert "Giang" in lead.last_text()
    async with env.sessionmaker() as s:
        donor = await s.get(Donor, donor_id)
        assert donor.full_name == "Giang" and donor.weight_kg == 63  # their details are untouched
        clubs = (await s.exec(select(ClubMembership.club_id).where(ClubMembership.donor_id == donor_id))).all()
        assert sorted(clubs) == sorted([club.id, other.id])


async def test_cancel_in_the_middle_of_adding_leaves_nothing(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    await add_until_phone(lead)
    await lead.send("0912 345 678")
    await lead.tap("O+")
    replies = await lead.send("/cancel")
    assert "Nothing was saved" in replies[-1]["text"]
    await add_until_phone(lead)
    await lead.send("0912 345 678")
    await lead.tap("Cancel")
    assert "Nothing was saved" in lead.last_text()
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).all() == []
    assert await audit(env, "member.add") == []


# --- import, export, invite link ------------------------------------------------------------


ROSTER_CSV = (
    "name,phone,blood_type,sex,birth_date,weight_kg,last_donation\n"
    "Nguyễn Văn An,0912000001,O-,M,01/01/1990,60,\n"
    "Trần Thị Bình,0912000002,A+,F,02/02/1992,50,01/06/2026\n"
    "Lê Văn Cường,12345,B+,M,03/03/1985,70,\n"
).encode()


async def test_an_uploaded_roster_is_tried_first_then_imported(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    replies = await lead.upload("members.csv", ROSTER_CSV)
    report = replies[-1]["text"]
    assert "Trial run" in report and "2 new donors" in report and "1 row refused" in report
    assert "row 4, phone" in report and "12345" in report
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).all() == []  # a trial writes nothing
    await lead.tap("Import")
    assert "Imported" in lead.last_text() and "2 new donors" in lead.last_text()
    async with env.sessionmaker() as s:
        phones = set((await s.exec(select(Donor.phone))).all())
        assert phones == {"+84912000001", "+84912000002"}
        assert len((await s.exec(select(ClubMembership).where(ClubMembership.club_id == club.id,
                                                              ClubMembership.role == "member"))).all()) == 2
    assert len(await audit(env, "roster.import")) == 1

    replies = await lead.upload("members.csv", ROSTER_CSV)
    assert "2 unchanged" in replies[-1]["text"] and "Nothing to import" in replies[-1]["text"]
    assert "Import" not in " ".join(lead.buttons(replies[-1]))


async def test_cancelling_an_import_saves_nothing(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    await lead.upload("members.csv", ROSTER_CSV)
    await lead.tap("Cancel")
    assert "Nothing was saved" in lead.last_text()
    async with env.sessionmaker() as s:
        assert (await s.exec(select(Donor))).all() == []


@pytest.mark.parametrize("filename, data, mime, expected", [
    ("roster.csv", b"x" * (5 * 1024 * 1024 + 1), "text/csv", "the limit is 5 MB"),
    ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png", ".xlsx"),
    ("roster.xlsx", b"this is not a workbook", "application/octet-stream", "not an Excel workbook"),
    ("roster.csv", b"hello;world\n1;2\n", "text/csv", "no name"),
])
async def test_unusable_uploads_get_a_clear_answer(env, filename, data, mime, expected):
    club = await make_club(env)
    lead = await make_lead(env, club)
    replies = await lead.upload(filename, data, mime)
    assert expected in replies[-1]["text"]
    assert not lead.buttons(replies[-1])


async def test_an_exported_roster_reimports_unchanged(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    await seed(env, club, "Nguyễn Thị Lan", "+84912000001", "O-", last=date(2026, 5, 1), telegram_id=555_001)
    await seed(env, club, "Trần Văn Bình", "+84912000002", None, weight=72.5, sex="M")
    await seed(env, club, "Lê Chi", "+84912000003", "AB+", birth=date(2001, 12, 31))
    await lead.send("/export")
    sent = env.sim.documents(lead.id)
    assert len(sent) == 1 and sent[0].file_name.endswith(".xlsx") and sent[0].data[:2] == b"PK"
    assert len(await audit(env, "roster.export")) == 1  # written once, by export_roster

    replies = await lead.upload(sent[0].file_name, sent[0].data,
                                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "3 unchanged" in replies[-1]["text"] and "0 new donors" in replies[-1]["text"]

    await lead.tap("CSV instead", lead.bot_messages()[-2])
    csv_file = env.sim.documents(lead.id)[-1]
    assert csv_file.file_name.endswith(".csv") and "Nguyễn Thị Lan" in csv_file.data.decode("utf-8-sig")


async def test_the_invite_link_brings_a_new_donor_into_the_club(env):
    club = await make_club(env)
    await make_club(env, "CLB Lào Cai", 22.48, 103.97)
    lead = await make_lead(env, club)
    replies = await lead.send("/invitelink")
    text = replies[-1]["text"]
    assert "200 people" in text and (TODAY + timedelta(days=30)).strftime("%d/%m/%Y") in text
    code = re.search(r"https://t\.me/\w+\?start=([\w-]+)", text).group(1)

    lan = env.user(language_code="en")
    await lan.send(f"/start {code}")
    await lan.tap("English")
    await lan.tap("Keep my profile")
    await lan.tap("Continue")
    await lan.share_contact("+84912345678")
    await lan.send("Nguyễn Thị Lan")
    await lan.tap("O+")
    await lan.tap("Female")
    await lan.send("15/05/1990")
    await lan.send("58")
    await lan.send("Lê Chân")
    replies = await lan.tap("never")
    assert club.name in replies[-1]["text"]  # no club question: the link named the club
    await lan.tap("Confirm")
    async with env.sessionmaker() as s:
        donor = (await s.exec(select(Donor))).one()
        assert (await s.exec(select(ClubMembership.club_id).where(ClubMembership.donor_id == donor.id))).one() \
            == club.id
    replies = await lead.send("/roster")
    assert table_row(replies[-1]["text"], "O+") == [1, 1, 0, 0]


async def test_a_lead_of_two_clubs_imports_into_the_club_they_choose(env):
    a = await make_club(env)
    b = await make_club(env, "CLB Lào Cai", 22.48, 103.97)
    lead = await make_lead(env, a, b)
    replies = await lead.upload("members.csv", ROSTER_CSV)
    assert "Which club?" in replies[-1]["text"]
    replies = await lead.tap("CLB Lào Cai")
    assert "CLB Lào Cai" in replies[-1]["text"] and "2 new donors" in replies[-1]["text"]
    await lead.tap("Import")
    async with env.sessionmaker() as s:
        clubs = (await s.exec(select(ClubMembership.club_id).where(ClubMembership.role == "member"))).all()
        assert clubs == [b.id, b.id]


async def test_markup_in_a_refused_cell_is_quoted_back_as_typed(env):
    club = await make_club(env)
    lead = await make_lead(env, club)
    replies = await lead.upload("members.csv", "name,phone,blood_type\nAn,<b>0912,O-\n".encode())
    report = replies[-1]["text"]
    assert "1 row refused" in report and "“<b>0912” is not a valid phone number" in report


def test_a_long_report_line_is_cut_short_but_never_inside_an_html_entity():
    i18n = make_i18n("en")
    for length in range(REPORT_LINE_CHARS, REPORT_LINE_CHARS + 4):  # one of these cuts through "&lt;"
        report = ImportReport(club_id=1, dry_run=False, refused=1,
                              errors=[RowError(2, "note", Text("{value}", {"value": "<" * length}))])
        line = report_text("title", report, i18n).splitlines()[-1]
        assert len(line) <= REPORT_LINE_CHARS and line.endswith("…")
        assert re.fullmatch(r"row 2, note: (&lt;)+…", line)
