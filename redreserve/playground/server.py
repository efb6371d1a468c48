"""``redreserve playground``: the real bot, the simulator and the web page, in one process.

Like ``redreserve run``, the bot runs on the wall clock with APScheduler waking the
dispatcher, and the simulator enforces Telegram's limits, so what a visitor sees is
what a nurse or a donor would see, at the same pace. Quiet hours are off: someone
trying the product at night should still see the call go out.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from aiogram import Bot, Dispatcher
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from bot.app import build_bot, build_dispatcher
from bot.commands import set_default_commands, set_user_commands
from models.directory import roles_of
from models.engine import create_schema, make_engine, make_sessionmaker
from models.tables import Club, Donor, Hospital
from redreserve.botapi_sim import BotAPISimulator
from ground.clock import VIETNAM, local_today, system_clock
from ground.config import Settings
from redreserve.playground.app import make_app
from redreserve.playground.seed import ADMIN_ID, NotAPlaygroundDatabase, Persona, prepare_world

TOKEN = "100200300:PLAYGROUND"


class PlaygroundError(Exception):
    """The playground cannot start; the message is worded for the person who ran it."""


@dataclass
class Playground:
    url: str
    sim: BotAPISimulator
    personas: list[Persona]
    sessionmaker: async_sessionmaker
    bot: Bot
    dp: Dispatcher
    polling: asyncio.Task
    db_path: Path
    seeded_now: bool

    def persona(self, role: str) -> Persona:
        return next(p for p in self.personas if p.role == role)


def bind(host: str, port: int) -> socket.socket:
    """Take the port before anything else starts, so "in use" is said at once and no one can take it meanwhile."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PlaygroundError(f"cannot listen on {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PlaygroundError(f"port {port} on {host} is already in use: stop what uses it, "
                                  f"or choose another with --port") from None
        raise PlaygroundError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def running_playground(*, host: str = "127.0.0.1", port: int = 8765, db_path: Path | None = None,
                             seed: int = 7, settings: dict[str, Any] | None = None) -> AsyncIterator[Playground]:
    """Everything started and seeded; stopped again on exit. ``port=0`` picks a free port."""
    sock = bind(host, port)
    try:
        with _database_dir(db_path) as path:
            async with _running(sock, path, seed, settings or {}) as pg:
                yield pg
    finally:
        sock.close()


@asynccontextmanager
async def _running(sock: socket.socket, db_path: Path, seed: int,
                   overrides: dict[str, Any]) -> AsyncIterator[Playground]:
    url = f"sqlite+aiosqlite:///{db_path}"
    engine = make_engine(url)
    sim = BotAPISimulator(bot_username="redreserve_playground_bot")
    runner: web.AppRunner | None = None
    try:
        try:
            await create_schema(engine)
        except (OSError, SQLAlchemyError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise PlaygroundError(f"cannot use the database {db_path}: {reason}") from None
        sessionmaker = make_sessionmaker(engine)
        await sim.start()
        sim.set_limits()  # Telegram's own: 30/s overall, 1/s per chat, 20/min per group
        try:
            personas, seeded_now = await prepare_world(sessionmaker, sim, seed=seed,
                                                       today=local_today(system_clock, VIETNAM), now=system_clock())
        except NotAPlaygroundDatabase as exc:
            raise PlaygroundError(f"{db_path}: {exc}") from None
        config = _merge({
            "telegram": {"token": TOKEN, "api_base": sim.base_url},
            "database": {"url": url},
            "bot": {"admins": [ADMIN_ID]},
            "dispatch": {"quiet_start": "00:00", "quiet_end": "00:00"},  # equal: no quiet hours
        }, overrides)
        bot_settings = Settings(**config)
        bot = build_bot(bot_settings)
        dp = build_dispatcher(bot_settings, sessionmaker)  # the wall clock and APScheduler, as `run`
        await set_default_commands(bot, dp["i18n_instance"])
        await _set_persona_menus(bot, dp, sessionmaker, personas)
        polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=10))
        try:
            await asyncio.wait_for(dp["runtime"].started.wait(), 15)
            runner = web.AppRunner(make_app(sim, personas, await _places(sessionmaker)), access_log=None,
                                   shutdown_timeout=1.0)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            yield Playground(f"http://{shown}:{port}/", sim, personas, sessionmaker, bot, dp, polling, db_path,
                             seeded_now)
        finally:
            if runner is not None:
                await runner.cleanup()
            if not polling.done():
                await dp.stop_polling()
            await asyncio.wait_for(asyncio.gather(polling, return_exceptions=True), 15)
            await bot.session.close()
    finally:
        await sim.stop()
        await engine.dispose()


async def serve(*, host: str, port: int, db_path: Path | None, seed: int, out: TextIO = sys.stdout) -> int:
    """Run until interrupted (Ctrl+C), printing where to point the browser."""
    async with running_playground(host=host, port=port, db_path=db_path, seed=seed) as pg:
        async with pg.sessionmaker() as s:
            donors = len((await s.exec(select(Donor.id))).all())
        where = "a temporary file" if db_path is None else str(pg.db_path)
        state = "seeded" if pg.seeded_now else "reused"
        print(f"RedReserve playground: {pg.url}", file=out)
        print(f"Database: {where} ({state}; {donors} donors). The bot runs on the built-in Telegram "
              f"simulator; nothing leaves this machine.", file=out)
        print("Personas: " + "; ".join(f"{p.name} ({p.role})" for p in pg.personas), file=out)
        if host not in ("127.0.0.1", "::1", "localhost"):
            print(f"Note: the page has no login; anyone who can reach {host}:{port} can act as every persona.",
                  file=sys.stderr)
        print("Press Ctrl+C to stop.", file=out, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # either one stops it cleanly, temporary files removed
            loop.add_signal_handler(signum, stop.set)
        try:
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([pg.polling, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    print("Playground stopped.", file=out, flush=True)
    return 0


async def _set_persona_menus(bot: Bot, dp: Dispatcher, sessionmaker: async_sessionmaker,
                             personas: list[Persona]) -> None:
    """Each seeded persona's own command menu, as the bot sets it when someone joins by invite."""
    admins = set(dp["settings"].bot.admins)
    async with sessionmaker() as s:
        for p in personas:
            if p.role != "visitor":
                roles = await roles_of(s, p.user_id)
                await set_user_commands(bot, dp["i18n_instance"], p.user_id, roles, p.user_id in admins, p.language)


async def _places(sessionmaker: async_sessionmaker) -> list[dict[str, Any]]:
    async with sessionmaker() as s:
        hospitals = (await s.exec(select(Hospital).order_by(Hospital.id))).all()
        clubs = (await s.exec(select(Club).order_by(Club.id))).all()
    return ([{"kind": "hospital", "name": h.name, "lat": h.lat, "lon": h.lon} for h in hospitals]
            + [{"kind": "club", "name": c.name, "lat": c.lat, "lon": c.lon} for c in clubs])


class _database_dir:
    """The SQLite file: the one given (its folder must exist), else one in a temporary folder removed at exit."""

    def __init__(self, db_path: Path | None) -> None:
        self.db_path = db_path
        self.tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Path:
        if self.db_path is not None:
            path = self.db_path.expanduser().resolve()
            if not path.parent.is_dir():
                raise PlaygroundError(f"cannot use the database {path}: no such directory {path.parent}")
            if path.is_dir():
                raise PlaygroundError(f"cannot use the database {path}: it is a directory")
            try:
                # Found out here rather than by the driver: a failed aiosqlite connect leaves a
                # thread behind that reports to a loop already closed.
                path.open("ab").close()
            except OSError as exc:
                raise PlaygroundError(f"cannot use the database {path}: {exc.strerror or exc}") from None
            return path
        try:
            self.tmp = tempfile.TemporaryDirectory(prefix="redreserve-playground-")
        except OSError as exc:
            raise PlaygroundError(f"cannot make a temporary folder: {exc.strerror or exc}") from None
        return Path(self.tmp.name) / "playground.db"

    def __exit__(self, *exc_info: object) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
