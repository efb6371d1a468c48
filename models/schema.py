"""The database's schema version, kept by Alembic (migrations/): status, upgrade, history.

Every change to the tables is a revision in migrations/versions/ (README, "Migrations").
A database made before migrations existed (by ``create_all``, no ``alembic_version``
table) is adopted by the baseline revision, which adds what it lacks, and then upgraded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from models.engine import metadata

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
VERSION_TABLE = "alembic_version"
# Any constant will do: every RedReserve process upgrading one PostgreSQL database takes this lock.
PG_LOCK_KEY = 0x52454452  # "REDR"


class SchemaState(str, enum.Enum):
    empty = "empty"  # no tables at all: a new database
    legacy = "legacy"  # RedReserve tables but no version: made before migrations existed
    behind = "behind"  # an older revision than the code's
    current = "current"
    newer = "newer"  # a revision this code does not know: written by a newer release


@dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    current: tuple[str, ...]  # the database's revisions (empty for empty and legacy)
    head: str  # the code's

    @property
    def needs_upgrade(self) -> bool:
        return self.state in (SchemaState.empty, SchemaState.legacy, SchemaState.behind)


class SchemaNewerError(Exception):
    """The database was upgraded by a newer RedReserve; this code must not touch it."""

    def __init__(self, current: tuple[str, ...], head: str) -> None:
        super().__init__(
            f"the database is at revision {', '.join(current)}, which this version of RedReserve does not know "
            f"(its newest is {head}): it was upgraded by a newer release. Install that release (or newer); "
            "nothing was changed")
        self.current, self.head = current, head


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


@lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    heads = script_directory().get_heads()
    if len(heads) != 1:
        # Two branches each added a revision on the same parent (README, "Migrations": re-point yours).
        raise RuntimeError(f"migrations/versions has {len(heads)} heads ({', '.join(heads)}); it must have one")
    return heads[0]


def _known(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


def status_sync(conn: Connection) -> SchemaStatus:
    head = head_revision()
    current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    if not current:
        ours = {t.name for t in metadata.sorted_tables}
        present = set(inspect(conn).get_table_names())
        return SchemaStatus(SchemaState.legacy if present & ours else SchemaState.empty, (), head)
    if not all(_known(r) for r in current):
        return SchemaStatus(SchemaState.newer, current, head)
    return SchemaStatus(SchemaState.current if current == (head,) else SchemaState.behind, current, head)


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    async with engine.connect() as conn:
        return await conn.run_sync(status_sync)


def _upgrade_sync(conn: Connection, target: str) -> tuple[SchemaStatus, SchemaStatus]:
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        # Batch mode drops and re-creates tables: with foreign keys on, dropping a parent would
        # cascade to its children. The pragma only takes effect outside a transaction.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        # Take the write lock before reading the version: a second process starting on the same
        # new file waits here, then finds the schema done (issue 10: "table donor already exists").
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    try:
        before = status_sync(conn)
        if before.state is SchemaState.newer:
            raise SchemaNewerError(before.current, before.head)
        if before.state is not SchemaState.current or target != "head":
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, target)
        if sqlite:
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the upgrade would break {len(broken)} foreign keys (first: {broken[0]})")
        after = status_sync(conn)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
    return before, after


async def upgrade(engine: AsyncEngine, target: str = "head") -> tuple[SchemaStatus, SchemaStatus]:
    """Run the migrations up to ``target`` in one transaction, under a lock; the status before and after.

    Raises SchemaNewerError, changing nothing, when the database is ahead of the code.
    """
    async with engine.connect() as conn:
        return await conn.run_sync(_upgrade_sync, target)


def history() -> list[str]:
    """The revisions, newest first, one line each: ``id  (parent)  message``."""
    lines = []
    for rev in script_directory().walk_revisions():
        parent = ", ".join(rev._normalized_down_revisions) or "base"
        lines.append(f"{rev.revision}  (after {parent})  {rev.doc}")
    return lines
