"""Shared fixtures: a real database (SQLite always, PostgreSQL when a server answers)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlmodel import SQLModel

from models.engine import create_schema, make_engine, make_sessionmaker

# Hypothesis' per-example deadline is a wall-clock assertion: on a busy 2-core machine it fails
# tests that are correct. Speed is measured in bench/, not asserted here.
hypothesis_settings.register_profile("redreserve", deadline=None)
hypothesis_settings.load_profile("redreserve")

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _postgres_base_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL")
    if url:
        return url
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return DEFAULT_PG
    except OSError:
        return None


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    parts = urlsplit(url.replace("postgresql+asyncpg", "postgresql"))
    conn = await asyncpg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
        password=parts.password, database=parts.path.lstrip("/") or "test",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database of this test run's own, created and dropped here."""
    base = _postgres_base_url()
    if base is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 and TEST_POSTGRES_URL unset")
    name = f"rr_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # a server that refuses us is as good as absent
        pytest.skip(f"PostgreSQL at {base} refused CREATE DATABASE: {exc}")
    url = _with_database(base, name)

    async def _schema():
        engine = make_engine(url)
        await create_schema(engine)
        await engine.dispose()

    asyncio.run(_schema())
    yield url
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite file brought to the code's schema by the migrations, once per run; tests get copies."""
    path = tmp_path_factory.mktemp("schema") / "template.db"

    async def _schema():
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await create_schema(engine)
        async with engine.connect() as conn:  # fold the WAL into the file, so copying the file is enough
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await engine.dispose()

    asyncio.run(_schema())
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A database at the code's schema (made by the migrations, as in production), with empty tables."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    return request.getfixturevalue("postgres_url")


async def _empty_tables(engine) -> None:
    # One PostgreSQL database per run; each test starts from empty tables.
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def db_engine(db_url):
    engine = make_engine(db_url)
    if db_url.startswith("postgresql"):
        await _empty_tables(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg(postgres_url):
    """PostgreSQL only (several instances share it): the run's database with empty tables, its
    sessionmaker and URL (each instance under test makes its own engine from the URL)."""
    engine = make_engine(postgres_url)
    await _empty_tables(engine)
    yield make_sessionmaker(engine), postgres_url
    await engine.dispose()


@pytest.fixture
def db_sessionmaker(db_engine):
    return make_sessionmaker(db_engine)
