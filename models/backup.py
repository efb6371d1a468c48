"""Consistent copies of a live SQLite database, and putting one back (``redreserve backup``/``restore``).

SQLite's online backup API copies the database as one reader sees it, WAL included, while
the bot goes on writing: copying the file alone would miss what still sits in ``-wal``.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
# A database from before migrations has no alembic_version table; these tables mark it as ours.
CORE_TABLES = frozenset({"donor", "club", "telegram_user"})


class BackupError(Exception):
    """Nothing was written; the message names the path and the reason."""


@dataclass(frozen=True)
class Inspected:
    revision: str | None  # None: made before migrations existed
    donors: int


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy the live database ``source`` to the new file ``target`` (a single file, no WAL of its own)."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if target.exists():
        raise BackupError(f"{target} already exists: choose a new file name")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: the folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                # One step: the copy is one consistent snapshot. In WAL mode the bot's writers
                # are not blocked meanwhile.
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        if ok != "ok":
            raise BackupError(f"the copy of {source} failed its integrity check ({ok}); nothing was written")
        os.replace(partial, target)  # the backup appears whole or not at all
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source} to {target}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def inspect_backup(path: Path) -> Inspected:
    """Check that ``path`` is a sound RedReserve SQLite database; raise BackupError saying why not."""
    if not path.is_file():
        raise BackupError(f"there is no file at {path}")
    with path.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BackupError(f"{path} is not a RedReserve database (not a SQLite file); nothing was changed")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not CORE_TABLES <= tables:
                raise BackupError(f"{path} is not a RedReserve database (it has no donor, club or telegram_user "
                                  "table); nothing was changed")
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise BackupError(f"{path} is damaged (integrity check: {ok}); nothing was changed")
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
            donors = conn.execute("SELECT count(*) FROM donor").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be read as a database ({exc}); nothing was changed") from None
    return Inspected(revision, donors)


def restore_sqlite(backup: Path, target: Path) -> None:
    """Replace the database ``target`` with the contents of ``backup`` (checked by the caller).

    Through the backup API, under SQLite's write lock, so a reader never sees half of it and
    ``target``'s WAL stays consistent.
    """
    if not target.parent.is_dir():
        raise BackupError(f"cannot restore to {target}: the folder {target.parent} does not exist")
    try:
        src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target, timeout=30)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {backup} into {target}: {exc}") from None
