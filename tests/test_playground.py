"""The playground's JSON API, its escaping and its command line, without a browser.

Each story acts through the same endpoints the page polls, against the real bot on
the simulator with Telegram's limits on; the browser test covers the page itself.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from datetime import date

import aiohttp
import pytest
from sqlmodel import select

from ground.eligibility import DonorFacts, assess
from models.directory import create_club
from models.engine import create_schema, make_engine, make_sessionmaker
from models.geo import haversine_km
from models.tables import Donor, Hospital
from redreserve.cli import main
from redreserve.playground.render import render_html
from redreserve.playground.server import PlaygroundError, running_playground

SCRIPT_NAME = "<script>alert(1)</script> Giang"


@pytest.fixture
async def pg(tmp_path):
    async with running_playground(port=0, db_path=tmp_path / "playground.db") as playground:
        yield playground


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http, pg, path):
    async with http.get(pg.url + path.lstrip("/")) as r:
        return r.status, await r.json()


async def post(http, pg, path, body, **kwargs):
    async with http.post(pg.url + path.lstrip("/"), json=body, **kwargs) as r:
        return r.status, await r.json()


async def wait_chat(http, pg, user_id, predicate, timeout=20.0, what="the chat to change"):
    """Poll like the page does until ``predicate(messages)`` holds; returns the messages."""
    deadline = time.monotonic() + timeout
    while True:
        _, body = await get(http, pg, f"/api/chat/{user_id}")
        if predicate(body["messages"]):
            return body["messages"]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {body['messages'][-3:]}")
        await asyncio.sleep(0.2)


def with_buttons(messages):
    return [m for m in messages if m["from_bot"] and m.get("buttons")]


# --- the cast --------------------------------------------------------------------------------


async def test_every_role_is_there_and_the_donors_fit_an_o_negative_call_at_the_staff_hospital(pg, http):
    status, body = await get(http, pg, "/api/personas")
    assert status == 200
    roles = [p["role"] for p in body["personas"]]
    assert roles.count("donor") == 3 and {"staff", "lead", "admin", "visitor"} <= set(roles)
    assert {p["kind"] for p in body["places"]} == {"hospital", "club"}
    assert pg.persona("admin").user_id in pg.dp["settings"].bot.admins
    assert not pg.sim.is_started(pg.persona("visitor").user_id)  # has never written to the bot
    menus = {p["role"]: [c["command"] for c in (await get(http, pg, f"/api/chat/{p['id']}"))[1]["commands"]]
             for p in body["personas"]}
    assert "urgent" in menus["staff"] and "roster" in menus["lead"] and "invite" in menus["admin"]
    assert "me" in menus["donor"] and "roster" not in menus["donor"] and "urgent" not in menus["visitor"]
    async with pg.sessionmaker() as s:
        hospital = (await s.exec(select(Hospital).where(Hospital.name == pg.persona("staff").detail))).one()
        for p in (p for p in pg.personas if p.role == "donor"):
            donor = (await s.exec(select(Donor).where(Donor.telegram_id == p.user_id))).one()
            assert (donor.abo, donor.rh, donor.phone) == ("O", "-", p.phone)
            assert assess(DonorFacts.of(donor), date.today(), pg.dp["settings"].eligibility).eligible
            assert donor.consent_contact_at is not None and pg.sim.is_started(p.user_id)
            assert haversine_km(donor.lat, donor.lon, hospital.lat, hospital.lon) < 5


# --- a request, end to end through the API ------------------------------------------------------


async def test_staff_posts_o_negative_a_donor_answers_and_the_name_reaches_the_staff_as_text(pg, http):
    staff = pg.persona("staff").user_id
    donors = [p for p in pg.personas if p.role == "donor"]
    async with pg.sessionmaker() as s:  # a name that would run as a script if pasted as HTML
        donor = (await s.exec(select(Donor).where(Donor.telegram_id == donors[0].user_id))).one()
        donor.full_name = SCRIPT_NAME
        await s.commit()

    assert (await post(http, pg, "/api/send", {"user_id": staff, "text": "/urgent O- 2"}))[0] == 200
    confirm = with_buttons(await wait_chat(http, pg, staff, with_buttons, what="the confirmation"))[-1]
    status, _ = await post(http, pg, "/api/tap", {"user_id": staff, "message_id": confirm["id"],
                                                  "data": confirm["buttons"][0][0]["data"]})
    assert status == 200

    calls = {}
    for p in donors:  # every donor persona is asked: the first thing a visitor tries works
        calls[p.user_id] = with_buttons(await wait_chat(http, pg, p.user_id, with_buttons, what="the call"))[-1]
        assert "Việt Tiệp" in calls[p.user_id]["html"]
    answer = calls[donors[0].user_id]
    await post(http, pg, "/api/tap", {"user_id": donors[0].user_id, "message_id": answer["id"],
                                      "data": answer["buttons"][0][0]["data"]})

    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; Giang"
    messages = await wait_chat(http, pg, staff, lambda ms: any(escaped in m.get("html", "") for m in ms),
                               what="the donor's name in the staff chat")
    assert not any("<script" in m.get("html", "") for m in messages)
    _, body = await get(http, pg, f"/api/chat/{donors[0].user_id}")
    assert body["notices"] and not body["notices"][0]["alert"]  # the tap was answered, as a toast

    # Polling an unchanged chat costs one short answer; an edit is a change.
    _, first = await get(http, pg, f"/api/chat/{staff}")
    _, again = await get(http, pg, f"/api/chat/{staff}?since={first['version']}")
    assert again == {"version": first["version"], "changed": False}


# --- contact, location, files -------------------------------------------------------------------


async def test_contact_location_and_files_arrive_as_telegram_would_send_them(pg, http):
    visitor, lead = pg.persona("visitor"), pg.persona("lead")
    status, body = await post(http, pg, "/api/contact", {"user_id": visitor.user_id})
    assert status == 200 and body["phone"] == visitor.phone
    assert pg.sim.is_started(visitor.user_id)
    status, _ = await post(http, pg, "/api/location", {"user_id": visitor.user_id, "lat": "20,86", "lon": 106.68})
    assert status == 200
    mine = [m for m in pg.sim.messages(visitor.user_id) if not m["from"]["is_bot"]]
    assert mine[0]["contact"] == {"phone_number": visitor.phone, "first_name": visitor.first_name,
                                  "user_id": visitor.user_id}
    assert mine[1]["location"] == {"latitude": 20.86, "longitude": 106.68}
    for lat, lon in (("91", "106"), ("abc", "1"), (None, "1"), ("nan", "1")):
        status, body = await post(http, pg, "/api/location", {"user_id": visitor.user_id, "lat": lat, "lon": lon})
        assert status == 400 and "latitude" in body["error"]

    roster = "name,phone,blood_type\nTrần Văn An,0912 345 678,O-\n".encode()
    form = aiohttp.FormData()
    form.add_field("user_id", str(lead.user_id))
    form.add_field("file", roster, filename="roster.csv", content_type="text/csv")
    async with http.post(pg.url + "api/upload", data=form) as r:
        assert r.status == 200, await r.text()
    messages = await wait_chat(http, pg, lead.user_id, with_buttons, what="the import preview")
    uploaded = next(m for m in messages if "document" in m)
    assert uploaded["document"]["name"] == "roster.csv" and not uploaded["from_bot"]
    assert "roster.csv" in with_buttons(messages)[-1]["html"]
    async with http.get(pg.url + f"api/file/{uploaded['document']['file_id']}") as r:
        assert r.status == 200 and await r.read() == roster
        assert r.headers["Content-Disposition"].startswith("attachment")


# --- what the API refuses ---------------------------------------------------------------------------


async def test_the_api_refuses_strangers_bad_input_and_other_sites(pg, http):
    staff = pg.persona("staff").user_id
    assert (await post(http, pg, "/api/send", {"user_id": 12345, "text": "hi"}))[0] == 404
    assert (await post(http, pg, "/api/send", {"user_id": "x", "text": "hi"}))[0] == 404
    assert (await post(http, pg, "/api/send", {"user_id": staff, "text": "  "}))[0] == 400
    assert (await post(http, pg, "/api/send", {"user_id": staff, "text": "x" * 4097}))[0] == 400
    assert (await post(http, pg, "/api/send", ["not", "an", "object"]))[0] == 400
    assert (await post(http, pg, "/api/tap", {"user_id": staff, "message_id": 999, "data": "x"}))[0] == 404
    assert (await post(http, pg, "/api/tap", {"user_id": staff, "message_id": "1", "data": "x"}))[0] == 400
    async with http.post(pg.url + "api/send", data=b"{oops", headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and "JSON" in (await r.json())["error"]
    status, body = await post(http, pg, "/api/send", {"user_id": staff, "text": "hi"},
                              headers={"Origin": "http://evil.example"})
    assert status == 403 and body["error"]
    assert (await get(http, pg, "/api/nothing"))[0] == 404
    assert (await get(http, pg, "/api/chat/12345"))[0] == 404
    assert (await get(http, pg, "/api/file/nope"))[0] == 404
    assert pg.sim.messages(staff) == []  # none of that reached the bot

    async with http.get(pg.url) as r:
        page = await r.text()
        assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert '<script src="/static/playground.js"' in page and "<script>" not in page  # nothing inline
    assert '<link rel="icon" href="/static/favicon.svg"' in page
    for name, kind in (("playground.js", "text/javascript"), ("playground.css", "text/css"),
                       ("favicon.svg", "image/svg+xml")):
        async with http.get(pg.url + "static/" + name) as r:
            assert r.status == 200 and r.content_type == kind
    async with http.get(pg.url + "static/seed.py") as r:
        assert r.status == 404


# --- the database --------------------------------------------------------------------------------------


async def test_a_playground_database_is_reused_and_anyone_elses_is_refused(tmp_path):
    path = tmp_path / "kept.db"
    async with running_playground(port=0, db_path=path) as first:
        assert first.seeded_now
        ids = [p.user_id for p in first.personas]
    async with running_playground(port=0, db_path=path) as second:
        assert not second.seeded_now and [p.user_id for p in second.personas] == ids
        assert second.sim.is_started(second.persona("staff").user_id)

    foreign = tmp_path / "production.db"
    engine = make_engine(f"sqlite+aiosqlite:///{foreign}")
    await create_schema(engine)
    async with make_sessionmaker(engine)() as s:
        await create_club(s, "CLB Thật", 21.0, 105.8, "Hà Nội", actor="cli")
    await engine.dispose()
    with pytest.raises(PlaygroundError, match="did not seed"):
        async with running_playground(port=0, db_path=foreign):
            pass


# --- rendering ---------------------------------------------------------------------------------------------


def test_only_telegram_formatting_becomes_html_and_everything_else_is_text():
    assert render_html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert render_html("a & b", [{"type": "bold", "offset": 0, "length": 1}]) == "<b>a</b> &amp; b"
    # Offsets count UTF-16 units: the emoji before the bold word counts twice.
    assert render_html("🩸 O−", [{"type": "bold", "offset": 3, "length": 2}]) == "🩸 <b>O−</b>"
    link = render_html("x", [{"type": "text_link", "offset": 0, "length": 1, "url": 'https://a.vn/?q="><b>'}])
    assert link == ('<a href="https://a.vn/?q=&quot;&gt;&lt;b&gt;" target="_blank" rel="noopener noreferrer">'
                    'x</a>')
    assert render_html("x", [{"type": "text_link", "offset": 0, "length": 1, "url": "javascript:alert(1)"}]) == "x"
    # A span crossing its parent's end is cut there, so the tags always nest.
    assert render_html("abc", [{"type": "bold", "offset": 0, "length": 2},
                               {"type": "italic", "offset": 1, "length": 2}]) == "<b>a<i>b</i></b>c"
    # Commands are tappable, as in Telegram clients, except inside code.
    assert render_html("/help or <code>/x</code>") == '<span class="cmd">/help</span> or &lt;code&gt;/x&lt;/code&gt;'
    assert render_html("run /x", [{"type": "code", "offset": 4, "length": 2}]) == "run <code>/x</code>"


# --- the command line ------------------------------------------------------------------------------------------


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that no ./config.toml of the developer's is read


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(["playground", *args])
    return code, capsys.readouterr().err


def test_bad_playground_usage_exits_2_with_the_reason(capsys, elsewhere):
    result = subprocess.run([sys.executable, "-m", "redreserve.cli", "playground", "--bogus"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--bogus" in result.stderr
    code, err = run_cli(capsys, "--port", "70000")
    assert code == 2 and "--port" in err


def test_a_port_in_use_exits_2_and_says_so(capsys, elsewhere):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, err = run_cli(capsys, "--port", str(port))
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port" in err


def test_an_unusable_database_folder_exits_2(tmp_path, capsys, elsewhere):
    code, err = run_cli(capsys, "--port", "0", "--db", str(tmp_path / "missing" / "pg.db"))
    assert code == 2 and "no such directory" in err
    # /proc takes no new files, even for root: the database cannot be created there.
    code, err = run_cli(capsys, "--port", "0", "--db", "/proc/playground.db")
    assert code == 2 and "cannot use the database /proc/playground.db" in err
