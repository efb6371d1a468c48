"""Schema migrations (migrations/, models/schema.py): the revisions produce exactly the models' tables,
a database made before migrations is adopted, and the CLI refuses a database behind or ahead of the code."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from models.engine import make_engine, metadata
from models.schema import SchemaNewerError, SchemaState, head_revision, schema_status, script_directory, upgrade
from redreserve import cli

README_HINT = "models/ changed without a migration: add a revision (README, 'Migrations'):"


def _drift(conn) -> list:
    return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


async def drift_of(engine) -> list:
    async with engine.connect() as conn:
        return await conn.run_sync(_drift)


def test_the_revisions_form_one_line():
    # Two branches that each add a revision on the same parent leave two heads: re-point yours (README).
    assert len(script_directory().get_heads()) == 1, script_directory().get_heads()
    assert head_revision()


async def test_the_migrations_build_exactly_the_models_tables(db_engine):
    """Fails whenever someone changes models/ without a revision (or a revision without the models)."""
    assert (await schema_status(db_engine)).state is SchemaState.current
    diff = await drift_of(db_engine)
    assert diff == [], f"{README_HINT} {diff}"


async def test_every_revision_downgrades_and_upgrades_again(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'down.db'}")
    try:
        await upgrade(engine)
        await upgrade_to(engine, "base", down=True)
        async with engine.connect() as conn:
            left = await conn.run_sync(lambda c: set(inspect(c).get_table_names()) - {"alembic_version"})
        assert left == set()
        await upgrade(engine)
        assert await drift_of(engine) == []
    finally:
        await engine.dispose()


async def upgrade_to(engine, target: str, *, down: bool = False) -> None:
    from alembic import command

    from models.schema import alembic_config

    def go(conn):
        config = alembic_config()
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, target)
        conn.commit()

    async with engine.connect() as conn:
        await conn.run_sync(go)


async def test_a_database_newer_than_the_code_is_refused_and_left_alone(db_engine, db_url, tmp_path, capsys):
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed1234'"))
    with pytest.raises(SchemaNewerError, match="f00dfeed1234"):
        await upgrade(db_engine)
    assert (await schema_status(db_engine)).state is SchemaState.newer

    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[telegram]\ntoken = "1:x"\n', encoding="utf-8")
    for argv in (["db", "upgrade"], ["add-club", "A", "--lat", "1", "--lon", "2"], ["run"]):
        assert await asyncio.to_thread(cli.main, ["--config", str(config), *argv]) == 2
        err = capsys.readouterr().err
        assert "f00dfeed1234" in err and "newer release" in err and "nothing was changed" in err
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one() == "f00dfeed1234"
        assert (await conn.execute(text("SELECT count(*) FROM club"))).scalar_one() == 0


def test_commands_started_together_on_a_new_sqlite_file_all_succeed(tmp_path):
    """Issue 10: two CLI commands at once on a new file failed with 'table donor already exists'."""
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "new.db"}"\n', encoding="utf-8")
    procs = [subprocess.Popen([sys.executable, "-m", "redreserve.cli", "--config", str(config), "add-club",
                               f"Club {i}", "--lat", "20.8", "--lon", "106.6"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert results == [(0, "")] * 3
    db = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")

    async def clubs() -> int:
        async with db.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM club"))).scalar_one()

    try:
        assert asyncio.run(clubs()) == 3
    finally:
        asyncio.run(db.dispose())


def test_the_cli_shows_the_revision_and_the_history(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "h.db"}"\n', encoding="utf-8")
    assert cli.main(["--config", str(config), "db", "current"]) == 0
    assert "no database file" in capsys.readouterr().out
    assert not (tmp_path / "h.db").exists()  # looking created nothing
    assert cli.main(["--config", str(config), "db", "upgrade"]) == 0
    assert f"to revision {head_revision()}" in capsys.readouterr().out
    assert cli.main(["--config", str(config), "db", "upgrade"]) == 0
    assert "already at" in capsys.readouterr().out
    assert cli.main(["--config", str(config), "db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert cli.main(["--config", str(config), "db", "history"]) == 0
    assert "0001_baseline" in capsys.readouterr().out
