"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import models.bot_state  # noqa: F401
import models.dispatch_tables  # noqa: F401
import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

# Every table of the models: what the migrations (migrations/) must produce, checked by tests/test_migrations.py.
metadata = SQLModel.metadata


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

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
    return create_async_engine(url, echo=echo, pool_pre_ping=True)


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
