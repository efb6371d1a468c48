"""A database made by the first release (commit fc1bd5c, before migrations) is upgraded and then used.

The schema comes from tests/fixtures/first_release_fc1bd5c.<dialect>.sql (generated once from that
commit's models), with rows in every table. On today's code without migrations such a database
crashed an import ("no column named remind_eligible") and left a nurse's /urgent unanswered.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from models.dispatch_tables import BloodRequest, RequestContact
from models.engine import make_engine, make_sessionmaker
from models.schema import SchemaState, head_revision, schema_status
from models.tables import Donor
from redreserve import cli
from tests.conftest import _admin, _postgres_base_url, _with_database
from tests.harness import start_bot, stop_bot
from tests.test_migrations import drift_of

FIXTURES = Path(__file__).parent / "fixtures"
ROW_COUNTS = {"telegram_user": 6, "club": 1, "hospital": 1, "donor": 4, "club_membership": 5, "hospital_staff": 1,
              "invite": 2, "donation": 2, "blood_request": 1, "request_wave": 1, "request_contact": 2,
              "donor_commitment": 1, "outbox_message": 2, "fsm_record": 1, "processed_update": 1, "audit_log": 2}
NEW_CSV = "name,phone,blood_type,sex,birth_date,weight_kg\nĐỗ Văn Mới,0912000777,O-,M,01/01/1991,66\n".encode()


def first_release_sql(dialect: str) -> str:
    return ((FIXTURES / f"first_release_fc1bd5c.{dialect}.sql").read_text(encoding="utf-8") + "\n"
            + (FIXTURES / "first_release_fc1bd5c.rows.sql").read_text(encoding="utf-8"))


@pytest.fixture(params=["sqlite", "postgres"])
def legacy_url(request, tmp_path):
    """A database as the first release left it: its create_all schema, rows in every table, no alembic_version."""
    if request.param == "sqlite":
        path = tmp_path / "first_release.db"
        conn = sqlite3.connect(path)
        conn.executescript(first_release_sql("sqlite"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        yield f"sqlite+aiosqlite:///{path}"
        return
    base = _postgres_base_url()
    if base is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 and TEST_POSTGRES_URL unset")
    name = f"rr_legacy_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    url = _with_database(base, name)

    async def load() -> None:
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute("SET TIME ZONE 'UTC';\n" + first_release_sql("postgresql"))
            # The rows carry their ids; the first release's inserts would have moved the sequences past them.
            for table in await conn.fetch("SELECT table_name FROM information_schema.columns "
                                          "WHERE column_name = 'id' AND table_schema = 'public'"):
                name = table["table_name"]
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                   f"(SELECT max(id) FROM {name}))")
        finally:
            await conn.close()

    asyncio.run(load())
    yield url
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def write_config(tmp_path: Path, url: str, **database: object) -> Path:
    extra = "".join(f"{k} = {str(v).lower()}\n" for k, v in database.items())
    config = tmp_path / "redreserve.toml"
    config.write_text(f'[database]\nurl = "{url}"\n{extra}[telegram]\ntoken = "123:abc"\n', encoding="utf-8")
    return config


async def counts(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {t: (await conn.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar_one() for t in ROW_COUNTS}


async def test_the_first_release_database_is_upgraded_and_every_journey_works_on_it(legacy_url, tmp_path, capsys):
    engine = make_engine(legacy_url)
    try:
        assert (await schema_status(engine)).state is SchemaState.legacy
        config = write_config(tmp_path, legacy_url)

        # The bot refuses to start on it, names the command, and changes nothing.
        assert await asyncio.to_thread(cli.main, ["--config", str(config), "run"]) == 2
        err = capsys.readouterr().err
        assert "made before migrations existed" in err and "redreserve db upgrade" in err
        assert (await schema_status(engine)).state is SchemaState.legacy

        assert await asyncio.to_thread(cli.main, ["--config", str(config), "db", "upgrade"]) == 0
        assert f"to revision {head_revision()}" in capsys.readouterr().out
        assert (await schema_status(engine)).state is SchemaState.current
        assert await drift_of(engine) == []  # exactly the schema a new database gets
        assert await counts(engine) == ROW_COUNTS  # nothing lost
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as s:
            lan = await s.get(Donor, 1)
            assert (lan.full_name, lan.remind_eligible, lan.donation_count) == ("Nguyễn Thị Lan", True, 3)
            old = await s.get(BloodRequest, 1)
            assert (old.state, old.close_reason, old.chat_id) == ("cancelled", "", None)

        env = await start_bot(sessionmaker, legacy_url)
        try:
            await journeys(env)
        finally:
            await stop_bot(env)
    finally:
        await engine.dispose()


async def journeys(env) -> None:
    lead = env.user(user_id=700001, first_name="Minh", language_code="en")
    nurse = env.user(user_id=700002, first_name="Hạnh", language_code="en")
    lan = env.user(user_id=700003, first_name="Lan", language_code="en")
    others = [env.user(user_id=i, first_name=f"Donor {i}", language_code="en") for i in (700004, 700005, 700006)]

    # Donor: her profile from the first release, then a pause (the reminders read remind_eligible).
    text_me = (await lan.send("/me"))[-1]["text"]
    assert "Nguyễn Thị Lan" in text_me and "Donations recorded: 3" in text_me and "CLB Hiến máu dự bị Lê Chân" in text_me
    await lan.send("/pause")
    await lan.tap("14 days")
    assert "06/12/2026" in lan.last_text()

    # Lead: importing a donor wrote a column the first release lacked, and crashed.
    replies = await lead.upload("new.csv", NEW_CSV)
    assert "1 new donors" in replies[-1]["text"] or "1 new donor" in replies[-1]["text"]
    await lead.tap("Import")
    assert "Imported" in lead.last_text()
    async with env.sessionmaker() as s:
        new = (await s.exec(select(Donor).where(Donor.phone == "+84912000777"))).one()
        assert new.remind_eligible is True

    # Staff: /urgent on the old hospital got no reply at all (blood_request.chat_id was missing).
    for user in others:
        await user.send("/help")  # they have written to the bot, so it may write to them
    await nurse.send("/urgent O- 1")
    assert "Send?" in nurse.last_text()
    await nurse.tap("Send to donors")
    await env.drain()
    assert "Request #2" in nurse.last_text()
    called = [u for u in others if any("Urgent blood request" in m.get("text", "") for m in u.bot_messages())]
    assert called, "no donor of the first release was called"
    await called[0].tap("Available")
    await env.drain()
    await called[0].tap("On my way")
    await env.drain()
    async with env.sessionmaker() as s:
        req = await s.get(BloodRequest, 2)
        assert req.chat_id == nurse.id
        contact = (await s.exec(select(RequestContact).where(RequestContact.request_id == 2,
                                                              RequestContact.donor_id == called[0].id - 700002))).one()
        assert contact.state == "en_route" and contact.en_route_at is not None


async def test_auto_upgrade_backs_up_then_upgrades_a_first_release_database(legacy_url, tmp_path, monkeypatch,
                                                                           capsys):
    monkeypatch.chdir(tmp_path)  # where a PostgreSQL dump goes
    config = write_config(tmp_path, legacy_url, auto_upgrade=True)
    assert await asyncio.to_thread(cli.main, ["--config", str(config), "add-club", "CLB Mới", "--lat", "20.8",
                                               "--lon", "106.6"]) == 0
    err = capsys.readouterr().err
    assert "Upgraded the database" in err
    if legacy_url.startswith("sqlite"):
        (backup,) = tmp_path.glob("first_release.db.before-*.bak")
        saved = sqlite3.connect(backup)
        try:  # the backup is the first release's database, untouched
            assert saved.execute("SELECT count(*) FROM donor").fetchone() == (4,)
            tables = {r[0] for r in saved.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert "alembic_version" not in tables
        finally:
            saved.close()
    else:
        (backup,) = tmp_path.glob("redreserve-before-*.dump")
        listing = subprocess.run(["pg_restore", "--list", str(backup)], capture_output=True, text=True, check=True)
        assert "TABLE DATA public donor" in listing.stdout and "alembic_version" not in listing.stdout
    assert str(backup) in err
    engine = make_engine(legacy_url)
    try:
        assert (await schema_status(engine)).state is SchemaState.current
        assert (await counts(engine))["club"] == 2
    finally:
        await engine.dispose()
