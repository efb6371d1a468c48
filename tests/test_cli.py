"""The admin's command line, run in-process against a temporary SQLite database."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import types
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from redreserve.cli import main

TOKEN = "123456:TEST-token"


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, tmp_path: Path, capsys) -> None:
        self.dir = tmp_path
        self.db = tmp_path / "cli.db"
        self.config = tmp_path / "test.toml"
        self.capsys = capsys
        self.configure()

    def configure(self, extra: str = "") -> None:
        self.config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{self.db}"\n{extra}', encoding="utf-8")

    def __call__(self, *argv: str, config: bool = True) -> Result:
        code = main([*argv, "--config", str(self.config)] if config else list(argv))
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def rows(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    for name in [n for n in os.environ if n.startswith("REDRESERVE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # so that no ./config.toml of the developer's is read
    return Cli(tmp_path, capsys)


@pytest.fixture
def club(cli):
    assert cli("add-club", "CLB Hải Phòng", "--lat", "20.86", "--lon", "106.68", "--area", "Lê Chân").code == 0
    return "CLB Hải Phòng"


# --- happy paths -------------------------------------------------------------------------


def test_add_club_stores_it_and_audits_the_cli_as_actor(cli):
    result = cli("add-club", "  CLB Hải Phòng ", "--lat", "20,86", "--lon", "106.68", "--area", "Lê Chân")
    assert result.code == 0, result.err
    assert result.out == "Added club “CLB Hải Phòng” (id 1) at 20.86, 106.68.\n"
    assert cli.rows("select name, lat, lon, area from club") == [("CLB Hải Phòng", 20.86, 106.68, "Lê Chân")]
    assert cli.rows("select action, actor, subject from audit_log") == [("club.create", "cli", "club:1")]


def test_add_hospital_stores_a_landline_in_e164(cli):
    result = cli("add-hospital", "Bệnh viện Việt Tiệp", "--lat", "20.85", "--lon", "106.68",
                 "--address", "1 Nhà Thương", "--phone", "0225 3700 436")
    assert result.code == 0, result.err
    assert "phone +842253700436" in result.out
    assert cli.rows("select phone, address from hospital") == [("+842253700436", "1 Nhà Thương")]


def test_a_lead_invite_prints_its_code_and_deep_link(cli, club):
    cli.configure('[telegram]\nbot_username = "@redreserve_bot"\n')
    result = cli("invite", "lead", "--club", "clb hải phòng", "--uses", "2", "--expires", "24")
    assert result.code == 0, result.err
    (code, uses, kind), = cli.rows("select code, max_uses, kind from invite")
    assert (uses, kind) == (2, "lead")
    assert f"Code: {code}\n" in result.out
    assert f"Link: https://t.me/redreserve_bot?start={code}\n" in result.out
    assert "Lead invite for club “CLB Hải Phòng”: 2 uses, expires" in result.out
    assert result.err == ""


def test_without_a_username_or_token_the_link_has_a_placeholder_and_says_how_to_fix_it(cli, club):
    result = cli("invite", "donor", "--club", club)
    assert result.code == 0
    assert "Link: https://t.me/<bot_username>?start=" in result.out
    assert "set [telegram] bot_username in config.toml" in result.err


def test_with_a_token_the_username_comes_from_getme_on_the_configured_server(cli, club):
    asked = []

    class BotApi(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            body = json.dumps({"ok": True, "result": {"id": 1, "is_bot": True, "username": "rr_test_bot"}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), BotApi)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        cli("add-hospital", "BV Việt Tiệp", "--lat", "20.85", "--lon", "106.68")
        cli.configure(f'[telegram]\ntoken = "{TOKEN}"\napi_base = "http://127.0.0.1:{server.server_port}"\n')
        result = cli("invite", "staff", "--hospital", "bv việt tiệp")
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 0, result.err
    assert asked == [f"/bot{TOKEN}/getMe"]
    assert "Link: https://t.me/rr_test_bot?start=" in result.out


def test_a_roster_is_tried_imported_and_exported_by_club_name(cli, club):
    roster = cli.dir / "roster.csv"
    roster.write_text("name,phone,blood_type\nNguyễn Văn A,0912345678,O+\nTrần Thị B,0912,A-\n", encoding="utf-8")

    trial = cli("import-roster", str(roster), "--club", "clb hải phòng", "--dry-run")
    assert trial.code == 0, trial.err
    assert "Trial run: nothing was saved" in trial.out and "1 new donor," in trial.out
    assert "row 3, phone:" in trial.out
    assert cli.rows("select count(*) from donor") == [(0,)]

    done = cli("import-roster", str(roster), "--club", club)
    assert done.code == 0, done.err
    assert "rows/s" not in done.err + done.out  # not a terminal: no progress line in logs
    assert cli.rows("select full_name, phone from donor") == [("Nguyễn Văn A", "+84912345678")]

    for name in ("out.csv", "out.xlsx"):
        exported = cli("export-roster", str(cli.dir / name), "--club", club)
        assert exported.code == 0, exported.err
        assert exported.out == f"Wrote 1 donor of “CLB Hải Phòng” to {cli.dir / name}.\n"
        again = cli("import-roster", str(cli.dir / name), "--club", club)
        assert "0 new donors, 0 updated, 1 unchanged, 0 rows refused." in again.out
    assert "+84912345678" in (cli.dir / "out.csv").read_text(encoding="utf-8-sig")
    assert [a for (a,) in cli.rows("select action from audit_log where action like 'roster.%' order by id")] == [
        "roster.import", "roster.export", "roster.import", "roster.export", "roster.import"]


def test_run_hands_the_settings_to_the_bot(cli, monkeypatch):
    started = []

    async def serve(settings):
        started.append(settings.token)

    monkeypatch.setitem(sys.modules, "bot.service", types.SimpleNamespace(serve=serve, StartupError=Exception))
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    assert cli("run").code == 0
    assert started == [TOKEN]


def test_config_is_taken_before_the_subcommand_and_from_the_working_directory(cli, tmp_path):
    result = cli("--config", str(cli.config), "add-club", "A", "--lat", "1", "--lon", "2", config=False)
    assert result.code == 0, result.err
    (tmp_path / "config.toml").write_text(cli.config.read_text(encoding="utf-8"), encoding="utf-8")
    assert cli("add-club", "B", "--lat", "1", "--lon", "2", config=False).code == 0
    assert cli.rows("select name from club order by id") == [("A",), ("B",)]


def test_without_any_config_the_built_in_sqlite_file_is_used(cli, tmp_path):
    assert cli("add-club", "A", "--lat", "1", "--lon", "2", config=False).code == 0
    assert (tmp_path / "redreserve.db").exists()


# --- refusals: exit status 2, the reason on stderr -----------------------------------------


@pytest.mark.parametrize("argv, reason", [
    (("invite", "lead", "--club", "CLB Hà Nội"), "no club named “CLB Hà Nội” (known: “CLB Hải Phòng”)"),
    (("import-roster", "r.csv", "--club", "CLB Hà Nội"), "no club named “CLB Hà Nội”"),
    (("export-roster", "r.csv", "--club", "CLB Hà Nội"), "no club named “CLB Hà Nội”"),
    (("invite", "staff", "--club", "CLB Hải Phòng"), "A staff invite is for a hospital"),
    (("invite", "lead", "--hospital", "BV"), "no hospital named “BV” (there are none yet)"),
    (("invite", "lead", "--club", "CLB Hải Phòng", "--uses", "0"), "from 1 to 1000 times"),
    (("add-club", "CLB HẢI PHÒNG", "--lat", "1", "--lon", "2"), "already exists"),
    (("add-club", "X", "--lat", "95", "--lon", "106"), "“95” is not a latitude"),
    (("add-club", "X", "--lat", "abc", "--lon", "106"), "“abc” is not a latitude"),
    (("add-hospital", "X", "--lat", "1", "--lon", "2", "--phone", "12345"), "not a valid phone number"),
    (("import-roster", "missing.csv", "--club", "CLB Hải Phòng"), "cannot read missing.csv"),
    (("import-roster", "old.xls", "--club", "CLB Hải Phòng"), "old Excel file (.xls)"),
    (("export-roster", "out.txt", "--club", "CLB Hải Phòng"), "must end in .csv or .xlsx"),
])
def test_bad_input_is_refused_with_the_reason(cli, club, argv, reason):
    result = cli(*argv)
    assert result.code == 2
    assert reason in result.err
    assert "Traceback" not in result.err


def test_an_unknown_config_key_is_named_with_its_file(cli):
    cli.configure('[telegram]\ntokn = "x"\n')
    result = cli("add-club", "A", "--lat", "1", "--lon", "2")
    assert (result.code, result.err) == (2, f"{cli.config}: [telegram.tokn] unknown key\n")


def test_a_missing_config_file_is_refused(cli, tmp_path):
    result = cli("--config", str(tmp_path / "nope.toml"), "add-club", "A", "--lat", "1", "--lon", "2",
                 config=False)
    assert (result.code, result.err) == (2, f"{tmp_path / 'nope.toml'}: no such file\n")


def test_a_database_that_cannot_be_opened_is_reported_plainly(cli, tmp_path):
    cli.db = tmp_path / "no" / "such" / "dir" / "x.db"
    cli.configure()
    result = cli("add-club", "A", "--lat", "1", "--lon", "2")
    assert result.code == 2
    assert result.err.startswith("cannot use the database sqlite+aiosqlite:///") and "Traceback" not in result.err


def test_run_without_a_token_says_how_to_set_one(cli):
    result = cli("run")
    assert result.code == 2
    assert result.err == ("no Telegram bot token: set [telegram] token in config.toml "
                          "or the BOT_TOKEN environment variable\n")


def test_run_says_so_when_the_bot_cannot_be_loaded(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "bot.service", None)  # makes `import bot.service` fail
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    result = cli("run")
    assert result.code == 2 and result.err.startswith("the bot cannot be loaded")


def test_usage_errors_exit_2_as_argparse_does(cli):
    for argv in ([], ["add-club", "A", "--lat", "1"], ["invite", "admin", "--club", "A"],
                 ["invite", "lead", "--club", "A", "--hospital", "B"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2


# --- the installed console script ----------------------------------------------------------


def test_the_console_script_runs_a_command(tmp_path):
    script = Path(sys.executable).with_name("redreserve")
    assert script.exists(), "the package is not installed (pip install -e .)"
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "c.db"}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN" and not k.startswith("REDRESERVE_")}
    done = subprocess.run([str(script), "add-club", "CLB Huế", "--lat", "16.46", "--lon", "107.59",
                           "--config", str(config)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "Added club “CLB Huế” (id 1) at 16.46, 107.59.\n"


# --- start-up checks of run and invite (issue 11) ----------------------------------------


@pytest.fixture
def rejecting_bot_api():
    """A Bot API server that answers every call 401, as Telegram does for a revoked token."""
    asked = []

    class BotApi(BaseHTTPRequestHandler):
        def do_GET(self):
            self.do_POST()

        def do_POST(self):
            asked.append(self.path)
            body = json.dumps({"ok": False, "error_code": 401, "description": "Unauthorized"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), BotApi)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()
    server.server_close()


REJECTED = "Telegram rejected the token (401): check [telegram] token or BOT_TOKEN\n"
MALFORMED = "[telegram] token (or BOT_TOKEN) is malformed"


def test_run_with_a_token_telegram_rejects_exits_2_with_the_reason(cli, rejecting_bot_api):
    api, asked = rejecting_bot_api
    cli.configure(f'[telegram]\ntoken = "{TOKEN}"\napi_base = "{api}"\n')
    result = cli("run")
    assert (result.code, result.err.splitlines()[-1] + "\n") == (2, REJECTED)
    assert "Traceback" not in result.err
    assert asked == [f"/bot{TOKEN}/getMe"]  # refused before any polling


def test_run_with_a_malformed_token_names_the_key_without_asking_anyone(cli):
    cli.configure('[telegram]\ntoken = "not a token"\napi_base = "http://127.0.0.1:9"\n')
    result = cli("run")
    assert result.code == 2 and result.err.startswith(MALFORMED) and "Traceback" not in result.err


def test_invite_with_a_rejected_token_says_so_and_writes_no_invite(cli, club, rejecting_bot_api):
    api, _ = rejecting_bot_api
    cli.configure(f'[telegram]\ntoken = "{TOKEN}"\napi_base = "{api}"\n')
    result = cli("invite", "lead", "--club", club)
    assert (result.code, result.err, result.out) == (2, REJECTED, "")
    assert cli.rows("select count(*) from invite") == [(0,)]
    cli.configure('[telegram]\ntoken = "12:34:56 bad"\n')
    result = cli("invite", "lead", "--club", club)
    assert result.code == 2 and result.err.startswith(MALFORMED)


def test_run_with_a_database_that_cannot_be_reached_names_the_key(cli):
    cli.config.write_text(f'[telegram]\ntoken = "{TOKEN}"\n[database]\n'
                          'url = "postgresql+asyncpg://rr@127.0.0.1:9/rr"\n', encoding="utf-8")
    result = cli("run")
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.startswith(
        "cannot use the database postgresql+asyncpg://rr@127.0.0.1:9/rr ([database] url): ")


@pytest.mark.parametrize("telegram, http, reason", [
    ('mode = "hook"', "", "[telegram.mode] Input should be 'polling' or 'webhook'"),
    ('mode = "webhook"\nwebhook_url = "http://bot.example.org/hook"\nwebhook_secret = "s"', 'listen = "127.0.0.1:0"',
     "[telegram.webhook_url] Value error, must be an https:// URL"),
    ('mode = "webhook"\nwebhook_url = "https://bot.example.org/hook"', "",
     '[telegram] mode = "webhook" needs [telegram] webhook_secret, [http] listen'),
    ('webhook_secret = "has spaces"', "", "[telegram.webhook_secret] Value error, must be 1 to 256 characters"),
    ("", 'listen = "8080"', "[http.listen] Value error, must be HOST:PORT"),
])
def test_a_bad_service_setting_is_refused_naming_the_key(cli, telegram, http, reason):
    cli.configure(f'[telegram]\ntoken = "{TOKEN}"\n{telegram}\n[http]\n{http}\n')
    result = cli("run")
    assert result.code == 2 and reason in result.err, result.err


def test_a_database_in_a_missing_folder_leaves_no_thread_calling_into_a_closed_loop(cli, tmp_path, monkeypatch):
    # aiosqlite's worker thread, after a failed connect, used to call back into the loop that
    # asyncio.run had closed: "RuntimeError: Event loop is closed" in a thread, after the command ended.
    raised = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    cli.db = tmp_path / "missing" / "x.db"
    cli.configure()
    result = cli("add-club", "A", "--lat", "1", "--lon", "2")
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            thread.join(5)
    assert raised == []
    assert result.code == 2 and f"the folder {tmp_path / 'missing'} does not exist" in result.err


def test_progress_is_one_line_redrawn_on_a_terminal_and_silent_elsewhere():
    from redreserve.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    now = [0.0]
    screen = Terminal()
    progress = Progress(screen, every=0.2, clock=lambda: now[0])
    for done in (1000, 2000, 3000):
        now[0] += 0.5
        progress.rows(done, refused=2, written=done - 2)
    now[0] += 0.05
    progress.rows(3100, refused=2, written=3098)  # too soon after the last draw: skipped
    progress.done()
    drawn = screen.getvalue()
    assert drawn.count("\r") == 3 and drawn.endswith("\n")
    assert "3,000 rows · 2 refused · 2,998 written · 2,000 rows/s" in drawn

    log = io.StringIO()  # a file or a pipe
    quiet = Progress(log, clock=lambda: now[0])
    quiet.rows(5, refused=0)
    quiet.done()
    assert log.getvalue() == ""


def test_donations_and_requests_export_to_a_spreadsheet_with_totals_from_the_database(cli, club):
    import asyncio
    from datetime import date, datetime, timedelta, timezone

    from openpyxl import load_workbook

    from models.dispatch_tables import BloodRequest, RequestContact
    from models.engine import make_engine, make_sessionmaker
    from models.tables import Donation

    roster = cli.dir / "roster.csv"
    roster.write_text("name,phone,blood_type\nNguyễn Văn A,0912345678,O-\n", encoding="utf-8")
    assert cli("import-roster", str(roster), "--club", club).code == 0
    assert cli("add-hospital", "BV Việt Tiệp", "--lat", "20.85", "--lon", "106.68").code == 0
    today = datetime.now(timezone.utc).date()
    posted = datetime.now(timezone.utc) - timedelta(hours=3)

    async def history() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{cli.db}")
        async with make_sessionmaker(engine)() as s:
            s.add(Donation(donor_id=1, donated_on=today, volume_ml=350, component="whole_blood", hospital_id=1))
            s.add(Donation(donor_id=1, donated_on=today - timedelta(days=400), component="whole_blood"))  # too old
            request = BloodRequest(hospital_id=1, abo="O", rh="-", component="red_cells", units=1, urgency="critical",
                                   deadline=posted + timedelta(hours=2), created_at=posted, state="fulfilled")
            s.add(request)
            await s.flush()
            s.add(RequestContact(request_id=request.id, donor_id=1, state="donated", asked_at=posted,
                                 outcome_at=posted + timedelta(minutes=45)))
            await s.commit()
        await engine.dispose()

    asyncio.run(history())
    done = cli("export-donations", str(cli.dir / "donations.xlsx"), "--club", club)
    assert done.code == 0, done.err
    assert "Wrote 1 donation of the members of “CLB Hải Phòng”" in done.out and "keep it safe" in done.out
    sheet = load_workbook(cli.dir / "donations.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Ngày hiến", "Họ tên", "Số điện thoại")  # the clubs' language by default
    assert len(rows) == 2 and rows[1][1:7] == ("Nguyễn Văn A", "0912 345 678", "O−", "whole_blood", 350,
                                                "BV Việt Tiệp")

    done = cli("export-requests", str(cli.dir / "requests.csv"), "--hospital", "BV Việt Tiệp")
    assert done.code == 0, done.err
    lines = (cli.dir / "requests.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 2 and lines[1].split(",")[-5:] == ["1", "1", "1", "1", "45"]  # asked … minutes
    assert "Nguyễn" not in lines[1] and "0912" not in lines[1]  # a hospital's export names no donor
    assert [a for (a,) in cli.rows("select action from audit_log where action like '%.export'")] == [
        "donations.export", "requests.export"]

    bad = cli("export-requests", str(cli.dir / "requests.pdf"), "--hospital", "BV Việt Tiệp")
    assert bad.code == 2 and ".csv or .xlsx" in bad.err
    bad = cli("export-donations", str(cli.dir / "d.csv"), "--club", club, "--months", "0")
    assert bad.code == 2 and "--months" in bad.err


# --- simulate --club (issue 13: club sizing) -----------------------------------------------

def _seed_members(db: Path, club_name: str, types: dict[tuple[str, str], int]) -> None:
    """``types``: members of each blood type, all near the club, reachable by the bot."""
    import asyncio
    import random
    from datetime import date, datetime, timezone

    from sqlmodel import select

    from models.engine import make_engine, make_sessionmaker
    from models.geo import placed
    from models.tables import Club, ClubMembership, Donor, TelegramUser
    from redreserve.synthetic import person

    async def go() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        try:
            async with make_sessionmaker(engine)() as s:
                club = (await s.exec(select(Club).where(Club.name == club_name))).one()
                rng, phones, n = random.Random(3), set(), 0
                now = datetime(2026, 3, 1, tzinfo=timezone.utc)
                for (abo, rh), count in types.items():
                    for _ in range(count):
                        p = person(rng, near=(club.lat, club.lon), spread_km=4.0, today=date(2026, 3, 1),
                                   used_phones=phones)
                        n += 1
                        d = Donor(full_name=p.full_name, phone=p.phone, telegram_id=900_000 + n, abo=abo, rh=rh,
                                  sex=p.sex, birth_date=p.birth_date, weight_kg=max(p.weight_kg, 55.0),
                                  **placed(p.lat, p.lon, approx=False), locale="vi",
                                  consent_profile_at=now, consent_contact_at=now)
                        s.add(d)
                        s.add(TelegramUser(telegram_id=900_000 + n, locale="vi"))
                        await s.flush()
                        s.add(ClubMembership(club_id=club.id, donor_id=d.id))
                await s.commit()
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_simulate_club_answers_per_blood_type_from_the_real_roster(cli, club):
    assert cli("add-hospital", "BV Việt Tiệp", "--lat", "20.8561", "--lon", "106.6822").code == 0
    _seed_members(cli.db, club, {("O", "+"): 40, ("A", "+"): 3})
    r = cli("simulate", "--club", club, "--db", f"sqlite+aiosqlite:///{cli.db}", "--requests", "20")
    assert r.code == 0, r.err
    rows = {line.split()[0]: line.split() for line in r.out.splitlines()[3:]}
    assert list(rows) == ["O−", "O+", "A−", "A+", "B−", "B+", "AB−", "AB+"]
    assert rows["O+"][1] == "40" and rows["A+"][1] == "3" and rows["B−"][1] == "0"
    share = {t: int(f[2].rstrip("%")) for t, f in rows.items()}
    assert share["O+"] >= 95 and rows["O+"][3] == "–"  # forty O+ cover O+ requests
    assert share["O−"] == 0 and rows["O−"][3] != "–"  # nobody can give to an O− patient
    assert share["A+"] >= share["A−"]  # A+ patients take the O+ too; A− ones nobody here
    assert rows["A−"][3].startswith("+") or rows["A−"][3] == "more"
    assert "43 members, 43 the bot can call" in r.out


def test_simulate_club_refuses_an_unknown_club(cli, club):
    r = cli("simulate", "--club", "CLB Nowhere", "--requests", "20")
    assert r.code == 2 and "no club named “CLB Nowhere”" in r.err and "CLB Hải Phòng" in r.err
