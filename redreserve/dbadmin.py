"""The operator's database commands: ``redreserve db upgrade|current|history|revision``, ``backup``, ``restore``,
and the schema check every other command (``run`` included) makes before it opens the database.

Kept apart from cli.py so its subcommands stay one place; cli.py adds them to its parser.
Exit status as everywhere in the CLI: 0 done, 2 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from models.backup import BackupError, backup_sqlite, inspect_backup, restore_sqlite
from models.engine import make_engine
from models.schema import SchemaNewerError, SchemaState, SchemaStatus, schema_status, upgrade
from ground.config import Settings

EXIT_OK = 0
UPGRADE_HINT = "redreserve db upgrade"


class DbAdminError(Exception):
    """Stop with status 2; the message names the database or the path, and nothing was changed."""


def where(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _describe(status: SchemaStatus) -> str:
    if status.state is SchemaState.empty:
        return "empty (no tables yet)"
    if status.state is SchemaState.legacy:
        return "made before migrations existed (no revision)"
    return "revision " + ", ".join(status.current)


# --- the check before any other command ----------------------------------------------


async def ready_schema(settings: Settings, engine: AsyncEngine) -> None:
    """A new database gets the schema; one behind the code is refused (or, with auto_upgrade, backed up and
    upgraded); one ahead of the code is refused. Raises DbAdminError with the command to run."""
    status = await schema_status(engine)
    url = settings.database.url
    if status.state is SchemaState.current:
        return
    if status.state is SchemaState.newer:
        raise DbAdminError(f"cannot use the database {where(url)}: {SchemaNewerError(status.current, status.head)}")
    if status.state is SchemaState.empty:
        await _upgrade(engine, url)  # nothing to lose: a new database starts at the code's schema
        return
    if not settings.database.auto_upgrade:
        raise DbAdminError(
            f"the database {where(url)} is {_describe(status)}, behind this version of RedReserve ({status.head}). "
            f"Back it up (redreserve backup PATH) and run: {UPGRADE_HINT}   "
            "(or set [database] auto_upgrade = true to do both at start)")
    saved = take_pre_upgrade_backup(url, status)
    print(f"Backed up the database to {saved} before upgrading it.", file=sys.stderr)
    before, after = await _upgrade(engine, url)
    print(f"Upgraded the database {where(url)} from {_describe(before)} to {after.head}.", file=sys.stderr)


async def _upgrade(engine: AsyncEngine, url: str, target: str = "head") -> tuple[SchemaStatus, SchemaStatus]:
    try:
        return await upgrade(engine, target)
    except SchemaNewerError as exc:
        raise DbAdminError(f"cannot upgrade the database {where(url)}: {exc}") from None


def take_pre_upgrade_backup(url: str, status: SchemaStatus) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    label = status.current[0] if status.current else "premigrations"
    path = sqlite_path(url)
    try:
        if path is not None:
            target = path.with_name(f"{path.name}.before-{status.head}-from-{label}-{stamp}.bak")
            backup_sqlite(path, target)
            return target
        target = Path(f"redreserve-before-{status.head}-{stamp}.dump").resolve()
        _pg_dump(url, target)
        return target
    except BackupError as exc:
        raise DbAdminError(f"auto_upgrade: the backup before the upgrade failed, so nothing was upgraded: {exc}") \
            from None


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_dump(url: str, target: Path) -> None:
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed (PostgreSQL's client tools); back up by hand: "
                          + pg_lines(url)[0])
    done = subprocess.run(["pg_dump", "--format=custom", f"--file={target}", _libpq_url(url)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")


def pg_lines(url: str) -> tuple[str, str]:
    """The commands an operator runs to back up and restore a PostgreSQL database (password left out)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=True)
    return (f'pg_dump --format=custom --file=redreserve.dump "{dsn}"',
            f'pg_restore --clean --if-exists --no-owner --dbname="{dsn}" redreserve.dump')


# --- subcommands -----------------------------------------------------------------------


def _on_engine(settings: Settings, work: Callable[[AsyncEngine], object]) -> object:
    async def go() -> object:
        engine = make_engine(settings.database.url, **settings.database.pool_options())
        try:
            return await work(engine)
        except (OSError, SQLAlchemyError) as exc:
            cause = getattr(exc, "orig", None) or exc
            reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise DbAdminError(f"cannot use the database {where(settings.database.url)}: {reason}") from None
        finally:
            await engine.dispose()

    return asyncio.run(go())


def db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.database.url

    async def work(engine: AsyncEngine) -> None:
        before, after = await _upgrade(engine, url, args.to)
        if before.current == after.current:
            print(f"The database {where(url)} is already at {_describe(after)}; nothing to do.")
        else:
            print(f"Upgraded the database {where(url)} from {_describe(before)} to {_describe(after)}.")

    _on_engine(settings, work)
    return EXIT_OK


def db_current(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.database.url
    missing = _missing_sqlite_file(url)
    if missing is not None:
        # A look must not create what it looks at: connecting would leave an empty file behind.
        from models.schema import head_revision

        print(f"{where(url)}: no database file at {missing} yet; the code's is {head_revision()} "
              f"(run: {UPGRADE_HINT} (or any command) to create it).")
        return EXIT_OK

    async def work(engine: AsyncEngine) -> None:
        status = await schema_status(engine)
        advice = {
            SchemaState.current: "up to date",
            SchemaState.empty: f"run: {UPGRADE_HINT} (or any command) to create the tables",
            SchemaState.legacy: f"behind the code: run {UPGRADE_HINT}",
            SchemaState.behind: f"behind the code: run {UPGRADE_HINT}",
            SchemaState.newer: "NEWER than this code: install the release that upgraded it",
        }[status.state]
        print(f"{where(url)}: {_describe(status)}; the code's is {status.head} ({advice}).")

    _on_engine(settings, work)
    return EXIT_OK


def _missing_sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def db_history(settings: Settings, args: argparse.Namespace) -> int:
    from models.schema import history

    for line in history():
        print(line)
    return EXIT_OK


def db_revision(settings: Settings, args: argparse.Namespace) -> int:
    """For developers: a new revision file, written by comparing the models with a database at head."""
    from alembic import command

    from models.schema import alembic_config, head_revision

    head_revision()  # refuses while two branches' revisions share one parent

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'head.db'}"

        async def work(engine: AsyncEngine) -> None:
            await upgrade(engine)

            def write(conn) -> None:
                config = alembic_config()
                config.attributes["connection"] = conn
                made = command.revision(config, message=args.message, autogenerate=not args.empty)
                for script in made if isinstance(made, list) else [made]:
                    print(f"Wrote {script.path}: review it, then run the tests (tests/test_migrations.py).")

            async with engine.connect() as conn:
                await conn.run_sync(write)

        engine_settings = settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})
        _on_engine(engine_settings, work)
    return EXIT_OK


def backup(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.database.url
    path = sqlite_path(url)
    if path is None:
        dump, restore_line = pg_lines(url)
        raise DbAdminError("backup copies SQLite databases; this one is PostgreSQL, so nothing was written. "
                           f"Back it up with:\n  {dump}\nand restore it with:\n  {restore_line}")
    target: Path = args.path
    if target.resolve() == path.resolve():
        raise DbAdminError(f"{target} is the database itself: choose another file")
    try:
        backup_sqlite(path, target)
        info = inspect_backup(target)
    except BackupError as exc:
        raise DbAdminError(str(exc)) from None
    print(f"Backed up {path} to {target} ({info.donors} donors, {_describe_revision(info.revision)}).")
    return EXIT_OK


def restore(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.database.url
    path = sqlite_path(url)
    if path is None:
        raise DbAdminError("restore puts back SQLite backups; this database is PostgreSQL, so nothing was changed. "
                           f"Restore with:\n  {pg_lines(url)[1]}")
    source: Path = args.path
    if source.resolve() == path.resolve():
        raise DbAdminError(f"{source} is the database itself: nothing to restore")
    try:
        info = inspect_backup(source)
    except BackupError as exc:
        raise DbAdminError(str(exc)) from None
    from models.schema import script_directory

    if info.revision is not None:
        try:
            script_directory().get_revision(info.revision)
        except Exception:
            raise DbAdminError(f"{source} is at revision {info.revision}, which this version of RedReserve does not "
                               "know (a newer release made it); nothing was changed") from None
    saved = None
    try:
        if path.exists() and path.stat().st_size > 0:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            saved = path.with_name(f"{path.name}.before-restore-{stamp}.bak")
            backup_sqlite(path, saved)  # the database being replaced stays recoverable
        restore_sqlite(source, path)
    except BackupError as exc:
        raise DbAdminError(str(exc)) from None
    kept = f"; the database it replaced is kept in {saved}" if saved else ""
    print(f"Restored {path} from {source} ({info.donors} donors, {_describe_revision(info.revision)}){kept}.")
    print(f"If the backup is from an older release, run: {UPGRADE_HINT}")
    return EXIT_OK


def _describe_revision(revision: str | None) -> str:
    return f"schema revision {revision}" if revision else "made before migrations existed"


def add_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``db``, ``backup`` and ``restore`` to the CLI's subcommands (``common`` carries --config)."""

    def command(parent: argparse._SubParsersAction, name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(command=handler)
        return sub

    db = commands.add_parser("db", parents=[common], help="the database's schema: upgrade, current, history",
                             description="The database's schema version, kept by migrations.")
    db_commands = db.add_subparsers(title="commands", metavar="COMMAND", required=True)
    sub = command(db_commands, "upgrade", db_upgrade, "bring the database to this version's schema")
    sub.add_argument("--to", default="head", metavar="REVISION", help="stop at REVISION (default: the newest)")
    command(db_commands, "current", db_current, "show the database's schema revision and whether it is behind")
    command(db_commands, "history", db_history, "list the schema revisions, newest first")
    sub = command(db_commands, "revision", db_revision,
                  "(developers) write a new revision from the difference between the models and the migrations")
    sub.add_argument("-m", "--message", required=True, help="what the revision changes, e.g. 'donor.nickname'")
    sub.add_argument("--empty", action="store_true", help="an empty revision to fill in by hand (data changes)")

    sub = command(commands, "backup", backup, "copy the live SQLite database to PATH (consistent, WAL included)")
    sub.add_argument("path", metavar="PATH", type=Path)
    sub = command(commands, "restore", restore, "put a backup made by `backup` back in place of the database")
    sub.add_argument("path", metavar="PATH", type=Path)
