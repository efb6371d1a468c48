"""Alembic's environment: the models' metadata, SQLite in batch mode, and the async engine.

models/schema.py runs the migrations on a connection it has already opened and locked
(``config.attributes["connection"]``). Alembic's own command line gets a database with
``-x url=sqlite+aiosqlite:///path.db``; ``--sql`` renders the DDL without one.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from models.engine import make_engine, metadata

config = context.config


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=metadata,
        # SQLite can't ALTER most things: batch mode copies the table instead. On PostgreSQL
        # the same operations are plain ALTERs, so one revision serves both.
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: pass -x url=sqlite+aiosqlite:///PATH, or use `redreserve db ...`")
    return url


if context.is_offline_mode():
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    _run(shared)
else:
    asyncio.run(_run_on_url(_url()))
