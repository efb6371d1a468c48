"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import models.bot_state  # noqa: F401
import models.dispatch_tables  # noqa: F401
import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

# Every table of the models: what the migrations (migrations/) must produce, checked by tests/test_migrations.py.
metadata = SQLModel.metadata


def make_engine(url: str, *, echo: bool = False, pool_size: int | None = None, max_overflow: int | None = None,
                pool_timeout: float | None = None) -> AsyncEngine:
    """An engine for ``url``; the pool's settings (None: SQLAlchemy's 5 + 10, 30 s) come from
    ``[database]`` (ground.config.DatabaseConfig.pool_options), the bot sizes its admission of
    updates from them (bot.app.updates_admitted)."""
    pool: dict[str, float] = {k: v for k, v in (("pool_size", pool_size), ("max_overflow", max_overflow),
                                                ("pool_timeout", pool_timeout)) if v is not None}
    if url.startswith("sqlite"):
        if make_url(url).database in (None, "", ":memory:"):
            pool = {}  # one shared in-memory connection (StaticPool): no pool to size
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets the bot read while an import writes; the busy timeout makes a
            # second writer wait instead of failing with "database is locked".
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows (a /forget, a removed member) are overwritten with zeros, not left
            # readable in free pages of the file (DOMAIN.md §7).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True, **pool)


def sqlite_path_problem(url: str) -> str | None:
    """Why a SQLite file cannot be opened, checked before connecting (None: try it).

    Checked up front because a failed aiosqlite connect leaves its worker thread calling
    back into the event loop after ``asyncio.run`` closed it ("Event loop is closed").
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    folder = Path(parsed.database).parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    return None


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the database to the code's schema by running the migrations (models.schema).

    An empty database gets every table; one made before migrations existed is adopted.
    Two processes starting on a new database at once are serialised by the upgrade's lock.
    Raises models.schema.SchemaNewerError on a database written by newer code.
    """
    from models.schema import upgrade  # Alembic loads only when a schema is needed

    await upgrade(engine)


class InstanceLocked(Exception):
    """Another process already runs the bot on this SQLite file."""


@contextmanager
def single_instance(url: str) -> Iterator[None]:
    """Hold the SQLite file for this process while the bot runs; raise InstanceLocked if another holds it.

    SQLite serves one running bot: two would each send the same outbox rows (and reset each
    other's "sending" ones at start-up). The lock is an OS lock on ``<file>.lock`` beside the
    database, released by the kernel when the process dies, so a crash never leaves it stuck.
    PostgreSQL and in-memory databases take no lock here.
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        yield
        return
    path = Path(parsed.database).resolve().with_name(Path(parsed.database).name + ".lock")
    with open(path, "a+") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceLocked(str(path)) from None
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
