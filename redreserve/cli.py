"""The admin's command line: run the bot, add clubs and hospitals, make invites, move rosters.

Each subcommand calls the functions the bot's admin commands call, so both
follow the same rules and leave the same audit trail. Output is English.
Exit status: 0 done; 2 bad usage, configuration or input, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatcher import exports
from dispatcher.report_months import month_starts
from models import directory
from models import roster as roster_db
from models.engine import make_engine, make_sessionmaker, sqlite_path_problem
from redreserve import dbadmin
from redreserve.progress import Progress
from ground.clock import local_today, system_clock
from ground.config import ConfigError, Settings, load_settings
from ground.logs import logging_to_stderr
from ground.parsing import ParseError, parse_latitude, parse_longitude
from ground.roster_file import RosterRow, open_roster, write_roster
from ground.table_file import write_table

EXIT_OK = 0
EXIT_BAD_INPUT = 2
ACTOR = "cli"
NO_TOKEN = "no Telegram bot token: set [telegram] token in config.toml or the BOT_TOKEN environment variable"
GETME_TIMEOUT_S = 10
ROSTER_FORMATS = {".csv": "csv", ".xlsx": "xlsx"}


class CliError(Exception):
    """Stop with status 2; the message is already worded for the admin."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return args.command(settings, args)
    except (ConfigError, CliError, dbadmin.DbAdminError) as exc:
        return _fail(str(exc))
    except (directory.DirectoryError, ParseError) as exc:
        return _fail(str(exc.text))


# --- subcommands ---------------------------------------------------------------------


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The service (bot.service): every start-up refusal is a StartupError naming the key, exit 2."""
    if not settings.token:
        raise CliError(NO_TOKEN)
    try:
        service = importlib.import_module("bot.service")
    except ImportError as exc:
        raise CliError(f"the bot cannot be loaded ({exc}); reinstall the package with its dependencies") from None
    _with_session(settings, _nothing)  # the database is reachable and its schema the code's, or exit 2
    secret = settings.telegram.webhook_secret
    secrets = [settings.token, secret.get_secret_value() if secret else ""]
    with logging_to_stderr(settings.log.level, settings.log.format, secrets):
        try:
            asyncio.run(service.serve(settings))
        except service.StartupError as exc:
            raise CliError(str(exc)) from None
    return EXIT_OK


def demo(settings: Settings, args: argparse.Namespace) -> int:
    """The demo ignores the configured database and token: it runs on its own temporary ones."""
    from redreserve.demo import default_lang, run_demo

    if args.speed <= 0 or args.speed > 10_000:
        raise CliError("--speed must be between 0 and 10000")
    try:
        return asyncio.run(run_demo(speed=args.speed, seed_value=args.seed, workdir=args.workdir,
                                    lang=args.lang or default_lang()))
    except OSError as exc:
        raise CliError(f"the demo cannot start: {exc.strerror or exc}") from None


def playground(settings: Settings, args: argparse.Namespace) -> int:
    """Like the demo, the playground ignores the configured database and token: it brings its own."""
    if not 0 <= args.port <= 65535:
        raise CliError("--port must be between 0 and 65535")
    try:
        from redreserve.playground.server import PlaygroundError, serve
    except KeyboardInterrupt:  # Ctrl+C while the bot's modules load
        return EXIT_OK
    try:
        return asyncio.run(serve(host=args.host, port=args.port, db_path=args.db, seed=args.seed))
    except PlaygroundError as exc:
        raise CliError(f"the playground cannot start: {exc}") from None
    except KeyboardInterrupt:  # Ctrl+C is how it stops
        return EXIT_OK


def add_club(settings: Settings, args: argparse.Namespace) -> int:
    lat, lon = parse_latitude(args.lat), parse_longitude(args.lon)

    async def work(session: AsyncSession) -> None:
        club = await directory.create_club(session, args.name, lat, lon, args.area, actor=ACTOR)
        print(f"Added club “{club.name}” (id {club.id}) at {club.lat}, {club.lon}.")

    return _with_session(settings, work)


def add_hospital(settings: Settings, args: argparse.Namespace) -> int:
    lat, lon = parse_latitude(args.lat), parse_longitude(args.lon)

    async def work(session: AsyncSession) -> None:
        hospital = await directory.create_hospital(session, args.name, lat, lon, args.address, args.phone,
                                                   settings.bot.phone_region, actor=ACTOR)
        phone = f", phone {hospital.phone}" if hospital.phone else ""
        print(f"Added hospital “{hospital.name}” (id {hospital.id}) at {hospital.lat}, {hospital.lon}{phone}.")

    return _with_session(settings, work)


def invite(settings: Settings, args: argparse.Namespace) -> int:
    # Asked first: a token Telegram rejects is refused before an invite is written.
    username, why_not = _bot_username(settings)

    async def work(session: AsyncSession) -> None:
        if args.club is not None:
            club, hospital = await _club_named(session, args.club), None
            target = f"club “{club.name}”"
        else:
            club, hospital = None, await _hospital_named(session, args.hospital)
            target = f"hospital “{hospital.name}”"
        made = await directory.create_invite(
            session, args.kind, club_id=club.id if club else None, hospital_id=hospital.id if hospital else None,
            uses=args.uses, expires_hours=args.expires, now=system_clock(), actor=ACTOR)
        expires = made.expires_at.astimezone(settings.bot.tz)
        uses = "1 use" if made.max_uses == 1 else f"{made.max_uses} uses"
        print(f"{made.kind.capitalize()} invite for {target}: {uses}, "
              f"expires {expires:%d/%m/%Y %H:%M} ({settings.bot.timezone}).")
        print(f"Code: {made.code}")
        print(f"Link: {directory.deep_link(username or '<bot_username>', made.code)}")
        if why_not:
            print(f"The bot's username is unknown ({why_not}): replace <bot_username> in the link, "
                  "or set [telegram] bot_username in config.toml.", file=sys.stderr)

    return _with_session(settings, work)


def import_roster(settings: Settings, args: argparse.Namespace) -> int:
    today = local_today(system_clock, settings.bot.tz)

    async def work(session: AsyncSession) -> None:
        club = await _club_named(session, args.club)
        try:
            roster = open_roster(args.path, today=today, rules=settings.eligibility,
                                 region=settings.bot.phone_region)
        except OSError as exc:
            raise CliError(f"cannot read {args.path}: {exc.strerror or exc}") from None
        # Read before importing: a dry run ends in a rollback, which expires loaded rows.
        club_id, club_name = club.id, club.name
        progress = Progress()
        with roster:
            report = await roster_db.import_roster(
                session, club_id, roster, dry_run=args.dry_run, today=today, actor=ACTOR,
                progress=lambda r: progress.rows(r.rows, refused=r.refused,
                                                 written=0 if args.dry_run else r.created + r.updated))
        progress.done()
        print(f"Roster of “{club_name}” from {args.path}:")
        for line in report.summary(limit=100):
            print(line)

    return _with_session(settings, work)


def export_roster(settings: Settings, args: argparse.Namespace) -> int:
    fmt = ROSTER_FORMATS.get(args.path.suffix.lower())
    if fmt is None:
        raise CliError(f"{args.path}: the file name must end in .csv or .xlsx")

    async def work(session: AsyncSession) -> None:
        club = await _club_named(session, args.club)
        rows = await roster_db.export_roster(session, club.id, actor=ACTOR)
        progress = Progress()

        def counted() -> Iterator[RosterRow]:
            for done, row in enumerate(rows, 1):
                yield row
                progress.rows(done, written=done)

        try:
            # Headers in the clubs' language; either language imports back.
            write_roster(args.path, fmt, counted(), lang=settings.bot.default_locale)
            progress.done()
        except OSError as exc:
            raise CliError(f"cannot write {args.path}: {exc.strerror or exc}") from None
        print(f"Wrote {len(rows)} {'donor' if len(rows) == 1 else 'donors'} of “{club.name}” to {args.path}.")

    return _with_session(settings, work)


def export_donations(settings: Settings, args: argparse.Namespace) -> int:
    fmt = _table_format(args.path, args.months)
    today = local_today(system_clock, settings.bot.tz)

    async def work(session: AsyncSession) -> None:
        club = await _club_named(session, args.club)
        first = month_starts(today, args.months)[0]
        table = await exports.club_donations(session, club.id, first, today, actor=ACTOR)
        _write(args.path, fmt, table, settings.bot.default_locale)
        print(f"Wrote {len(table.rows)} {'donation' if len(table.rows) == 1 else 'donations'} of the members of "
              f"“{club.name}” ({first:%d/%m/%Y}–{today:%d/%m/%Y}) to {args.path}. It names donors and their "
              f"phones: keep it safe.")

    return _with_session(settings, work)


def export_requests(settings: Settings, args: argparse.Namespace) -> int:
    fmt = _table_format(args.path, args.months)
    today = local_today(system_clock, settings.bot.tz)

    async def work(session: AsyncSession) -> None:
        hospital = await _hospital_named(session, args.hospital)
        first = month_starts(today, args.months)[0]
        since = datetime.combine(first, time(), settings.bot.tz)
        table = await exports.hospital_requests(session, hospital.id, since, settings.bot.tz, actor=ACTOR)
        _write(args.path, fmt, table, settings.bot.default_locale)
        print(f"Wrote {len(table.rows)} {'request' if len(table.rows) == 1 else 'requests'} of “{hospital.name}” "
              f"(since {first:%d/%m/%Y}) to {args.path}.")

    return _with_session(settings, work)


def _table_format(path: Path, months: int) -> str:
    if not 1 <= months <= 120:
        raise CliError("--months must be between 1 and 120")
    fmt = ROSTER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CliError(f"{path}: the file name must end in .csv or .xlsx")
    return fmt


def _write(path: Path, fmt: str, table: exports.Table, lang: str) -> None:
    try:
        write_table(path, fmt, table.sheet_name(lang), table.header_row(lang), table.rows)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


# --- plumbing --------------------------------------------------------------------------


def simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Club sizing (issue 13): what share of requests the club's roster covers within 2 hours, per type."""
    from redreserve.clubsizing import render, size_club

    if not 10 <= args.requests <= 5000:
        raise CliError("--requests must be between 10 and 5000")
    if args.db is not None:
        settings = settings.model_copy(update={"database": settings.database.model_copy(update={"url": args.db})})

    async def work(session: AsyncSession) -> None:
        club = await _club_named(session, args.club)
        print(render(await size_club(session, club, requests=args.requests, seed=args.seed)))

    return _with_session(settings, work)


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[Any]]) -> int:
    """Open the database (a new one gets the schema; one behind the code is refused), run ``work``, close."""

    problem = sqlite_path_problem(settings.database.url)
    if problem:
        raise CliError(f"cannot use the database {settings.database.url} ([database] url): {problem}")

    async def go() -> None:
        engine = make_engine(settings.database.url, **settings.database.pool_options())
        try:
            try:
                await dbadmin.ready_schema(settings, engine)
            except dbadmin.DbAdminError as exc:
                raise CliError(str(exc)) from None
            except (OSError, SQLAlchemyError) as exc:
                where = make_url(settings.database.url).render_as_string(hide_password=True)
                raise CliError(f"cannot use the database {where} ([database] url): {_reason(exc)}") from None
            async with make_sessionmaker(engine)() as session:
                await work(session)
        finally:
            await engine.dispose()

    asyncio.run(go())
    return EXIT_OK


async def _nothing(_session: AsyncSession) -> None:
    return None


def _reason(exc: BaseException) -> str:
    # SQLAlchemy wraps the driver's error and appends a link to its docs; the driver's own words are enough.
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


async def _club_named(session: AsyncSession, name: str):
    club = await directory.find_club(session, name)
    if club is None:
        raise CliError(f"no club named “{name}”{_known([c.name for c in await directory.list_clubs(session)])}")
    return club


async def _hospital_named(session: AsyncSession, name: str):
    hospital = await directory.find_hospital(session, name)
    if hospital is None:
        names = [h.name for h in await directory.list_hospitals(session)]
        raise CliError(f"no hospital named “{name}”{_known(names)}")
    return hospital


def _known(names: list[str], shown: int = 10) -> str:
    if not names:
        return " (there are none yet)"
    more = f", … ({len(names) - shown} more)" if len(names) > shown else ""
    return " (known: " + ", ".join(f"“{n}”" for n in names[:shown]) + more + ")"


def _bot_username(settings: Settings) -> tuple[str | None, str | None]:
    """The bot's @username for deep links, and if unknown, why."""
    if settings.telegram.bot_username:
        return settings.telegram.bot_username.lstrip("@"), None
    if not settings.token:
        return None, "no token is configured to ask Telegram"
    from aiogram.utils.token import TokenValidationError, validate_token  # here: aiogram is slow to import

    try:
        validate_token(settings.token)
    except TokenValidationError:
        raise CliError("[telegram] token (or BOT_TOKEN) is malformed: a bot token looks like "
                       "123456789:AA… as @BotFather gives it") from None
    url = f"{settings.telegram.api_base.rstrip('/')}/bot{settings.token}/getMe"
    try:
        with urllib.request.urlopen(url, timeout=GETME_TIMEOUT_S) as response:
            username = json.load(response)["result"]["username"]
    # The URL holds the token: report the failure without it.
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise CliError("Telegram rejected the token (401): check [telegram] token or BOT_TOKEN") from None
        return None, f"getMe answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return None, f"getMe failed: {exc.reason}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"getMe failed: {type(exc).__name__}"
    return username, None


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redreserve", description=__doc__.splitlines()[0])
    config_help = "configuration file (default: ./config.toml if present, else built-in defaults)"
    parser.add_argument("--config", metavar="PATH", default=None, help=config_help)
    # The same option after the subcommand; SUPPRESS keeps it from overwriting one given before.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=config_help)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[[Settings, argparse.Namespace], int], help: str):
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(command=handler)
        return sub

    command("run", run, "run the Telegram bot (long polling)")

    sub = command("demo", demo, "run the whole product on the built-in Telegram simulator (no token needed)")
    sub.add_argument("--speed", type=float, default=300.0, metavar="N", help="virtual seconds per real second")
    sub.add_argument("--seed", type=int, default=7, metavar="N", help="seed for the roster and the answers")
    sub.add_argument("--workdir", type=Path, default=None, metavar="DIR", help="where the temporary database goes")
    sub.add_argument("--lang", choices=("vi", "en"), default=None,
                     help="language of the timeline, the boards and the reports (default: the terminal's, "
                          "else Vietnamese)")

    sub = command("playground", playground,
                  "a local web page to try the bot as hospital staff, donors, a club lead and an admin")
    sub.add_argument("--port", type=int, default=8765, metavar="N", help="port to serve the page on (default 8765)")
    sub.add_argument("--host", default="127.0.0.1", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    sub.add_argument("--db", type=Path, default=None, metavar="PATH",
                     help="SQLite file to keep the playground in (default: a temporary one)")
    sub.add_argument("--seed", type=int, default=7, metavar="N", help="seed for the synthetic roster")

    for name, handler, what in (("add-club", add_club, "club"), ("add-hospital", add_hospital, "hospital")):
        sub = command(name, handler, f"add a {what}")
        sub.add_argument("name", metavar="NAME")
        # Strings, read by the shared coordinate parser: "21,03" is accepted like "21.03".
        sub.add_argument("--lat", required=True, metavar="LAT", help="latitude, e.g. 20.86")
        sub.add_argument("--lon", required=True, metavar="LON", help="longitude, e.g. 106.68")
        if what == "club":
            sub.add_argument("--area", default="", metavar="TEXT", help="district or area, as people say it")
        else:
            sub.add_argument("--address", default="", metavar="TEXT")
            sub.add_argument("--phone", default=None, metavar="PHONE", help="any valid number, landlines too")

    sub = command("invite", invite, "make an invite link for a club lead, hospital staff or donors")
    sub.add_argument("kind", choices=["lead", "staff", "donor"])
    target = sub.add_mutually_exclusive_group(required=True)
    target.add_argument("--club", metavar="NAME", help="for lead and donor invites")
    target.add_argument("--hospital", metavar="NAME", help="for staff invites")
    sub.add_argument("--uses", type=int, default=1, metavar="N", help="how many people may use it (default 1)")
    sub.add_argument("--expires", type=int, default=72, metavar="HOURS", help="valid for HOURS (default 72)")

    sub = command("export-donations", export_donations,
                  "export a club's members' donations to CSV or XLSX (by extension)")
    sub.add_argument("path", metavar="PATH", type=Path)
    sub.add_argument("--club", required=True, metavar="NAME")
    sub.add_argument("--months", type=int, default=12, metavar="N",
                     help="the last N calendar months, this one included (default 12)")
    sub = command("export-requests", export_requests, "export a hospital's requests to CSV or XLSX (by extension)")
    sub.add_argument("path", metavar="PATH", type=Path)
    sub.add_argument("--hospital", required=True, metavar="NAME")
    sub.add_argument("--months", type=int, default=12, metavar="N",
                     help="the last N calendar months, this one included (default 12)")

    sub = command("import-roster", import_roster, "import a club roster from CSV or XLSX")
    sub.add_argument("path", metavar="PATH", type=Path)
    sub.add_argument("--club", required=True, metavar="NAME")
    sub.add_argument("--dry-run", action="store_true", help="check the file and report, change nothing")

    sub = command("export-roster", export_roster, "export a club roster to CSV or XLSX (by extension)")
    sub.add_argument("path", metavar="PATH", type=Path)
    sub.add_argument("--club", required=True, metavar="NAME")

    sub = command("simulate", simulate, "a club's cover within 2 hours per blood type, and the members it lacks")
    sub.add_argument("--club", required=True, metavar="NAME")
    sub.add_argument("--db", default=None, metavar="URL", help="database URL (default: [database] url)")
    sub.add_argument("--requests", type=int, default=200, metavar="N", help="simulated requests per type")
    sub.add_argument("--seed", type=int, default=1, metavar="N")

    dbadmin.add_commands(commands, common)
    return parser


if __name__ == "__main__":
    sys.exit(main())
