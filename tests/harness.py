"""End-to-end harness: the real bot, polling the Bot API simulator, on a real database.

Tests act as Telegram users: they push updates into the simulator and read what the
bot sent back. Nothing of aiogram is mocked; the only test-side hook is an outer
middleware that tells the test when an update has been fully handled, so tests wait
on events instead of sleeping.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.dispatcher.middlewares.error import ErrorsMiddleware
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.app import build_bot, build_dispatcher
from redreserve.botapi_sim import BotAPISimulator
from ground.clock import FrozenClock
from ground.config import Settings

ADMIN_ID = 900_000_001
START = datetime(2026, 11, 22, 3, 0, tzinfo=timezone.utc)  # 10:00 in Hà Nội


class HandledTracker(BaseMiddleware):
    """Outermost: knows when an update is done, the error handler's answer included.

    Its :attr:`raised` part sits inside aiogram's ErrorsMiddleware, so a handler that
    raises fails the test even though bot/routers/errors.py answered the person.
    """

    def __init__(self) -> None:
        self.done: set[int] = set()
        self.errors: list[BaseException] = []
        self.raised_by: dict[int, BaseException] = {}  # update_id → what its handler raised
        self._changed = asyncio.Condition()
        self.raised = _RaisedRecorder(self)

    async def __call__(self, handler, event, data):
        try:
            return await handler(event, data)
        except BaseException as exc:  # surfaced by the test instead of vanishing in a log
            self.errors.append(exc)
            self.raised_by.setdefault(event.update_id, exc)
            raise
        finally:
            async with self._changed:
                self.done.add(event.update_id)
                self._changed.notify_all()

    async def wait(self, update_id: int, timeout: float = 10.0, *, check: bool = True) -> None:
        """Until ``update_id`` is handled; then fail if any handler raised (``check=False``: see
        :attr:`raised_by` instead)."""
        async def _wait():
            async with self._changed:
                await self._changed.wait_for(lambda: update_id in self.done)

        await asyncio.wait_for(_wait(), timeout)
        if check and self.errors:
            raise AssertionError(f"a handler raised: {self.errors[-1]!r}") from self.errors[-1]


class _RaisedRecorder(BaseMiddleware):
    def __init__(self, tracker: HandledTracker) -> None:
        self._tracker = tracker

    async def __call__(self, handler, event, data):
        try:
            return await handler(event, data)
        except BaseException as exc:
            self._tracker.errors.append(exc)
            self._tracker.raised_by[event.update_id] = exc
            raise


@dataclass
class BotEnv:
    sim: BotAPISimulator
    bot: Bot
    dp: Dispatcher
    sessionmaker: async_sessionmaker
    settings: Settings
    clock: FrozenClock
    tracker: HandledTracker
    _next_user: int = 100_000_001
    users: dict[int, "TgUser"] = field(default_factory=dict)

    @property
    def engine(self):
        return self.dp["engine"]

    @property
    def reminders(self):
        """The reminders service: tests move ``clock`` and call ``reminders.run_due()`` (no APScheduler)."""
        return self.dp["runtime"].reminders

    async def drain(self) -> None:
        """Wait until the outbox has been sent (the dispatcher's messages reach the simulator).

        A retry is due later on the (frozen) clock: time is moved on to it, as it would pass.
        """
        from sqlmodel import func, select

        from models.dispatch_tables import OutboxMessage

        for _ in range(20):
            await self.dp["runtime"].sender.run_until_idle(timeout=10)
            async with self.sessionmaker() as s:
                due = (await s.exec(select(func.min(OutboxMessage.next_attempt_at))
                                    .where(OutboxMessage.state == "pending",
                                           OutboxMessage.channel == "telegram"))).one()  # SMS: its own sender
            if due is None:
                return
            due = due if due.tzinfo else due.replace(tzinfo=self.clock.now.tzinfo)
            if due > self.clock.now:
                self.clock.now = due
        raise AssertionError("the outbox never drained")

    def user(self, user_id: int | None = None, first_name: str = "Lan", language_code: str = "vi") -> "TgUser":
        if user_id is None:
            user_id = self._next_user
            self._next_user += 1
        u = TgUser(self, user_id, first_name, language_code)
        self.users[user_id] = u
        return u

    async def handled(self, update: dict) -> None:
        await self.tracker.wait(update["update_id"])


class TgUser:
    """One person in a private chat with the bot, or (``in_group``) in a group chat with it."""

    def __init__(self, env: BotEnv, user_id: int, first_name: str, language_code: str, *,
                 chat_id: int | None = None, chat_title: str | None = None) -> None:
        self.env = env
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.chat_id = user_id if chat_id is None else chat_id
        self.chat_title = chat_title

    def in_group(self, chat_id: int, title: str = "Khoa Cấp cứu") -> "TgUser":
        """The same person writing in a (super)group: sends, taps and reads happen there."""
        return TgUser(self.env, self.id, self.first_name, self.language_code, chat_id=chat_id, chat_title=title)

    @property
    def _group(self) -> dict[str, Any]:
        if self.chat_id == self.id:
            return {}
        return {"chat_id": self.chat_id, "chat_type": "supergroup", "chat_title": self.chat_title}

    @property
    def sim(self) -> BotAPISimulator:
        return self.env.sim

    def bot_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.sim.messages(self.chat_id) if m.get("from", {}).get("is_bot")]

    def last(self) -> dict[str, Any]:
        msgs = self.bot_messages()
        assert msgs, "the bot has sent nothing to this user"
        return msgs[-1]

    def last_text(self) -> str:
        return self.last().get("text", "")

    async def _push(self, update: dict) -> list[dict[str, Any]]:
        """The bot messages that arrived while the update was handled (by id: the bot may delete some)."""
        if "update_id" not in update:
            return []  # withheld from the bot by group privacy mode: nothing to wait for
        before = max((m["message_id"] for m in self.sim.messages(self.chat_id)), default=0)
        if "message" in update:
            before = max(before, update["message"]["message_id"])
        await self.env.handled(update)
        return [m for m in self.bot_messages() if m["message_id"] > before]

    async def send(self, text: str, reply_to: int | None = None) -> list[dict[str, Any]]:
        """Type ``text``; ``reply_to``: as a reply to that message (in a group, how a bot hears typing)."""
        return await self._push(
            self.sim.push_message(self.id, text, first_name=self.first_name, language_code=self.language_code,
                                  reply_to_message_id=reply_to, **self._group)
        )

    async def send_photo(self, caption: str | None = None) -> list[dict[str, Any]]:
        """A photo, maybe captioned: a command in a caption is a command, and ``text`` is None."""
        return await self._push(self.sim.push_photo(self.id, caption, **({"chat_id": self.chat_id}
                                                                         if self.chat_id != self.id else {})))

    async def share_contact(self, phone: str, contact_user_id: int | None = None) -> list[dict[str, Any]]:
        return await self._push(
            self.sim.push_contact(self.id, phone, contact_user_id=self.id if contact_user_id is None else contact_user_id,
                                  first_name=self.first_name)
        )

    async def share_location(self, lat: float, lon: float) -> list[dict[str, Any]]:
        return await self._push(self.sim.push_location(self.id, lat, lon))

    async def upload(self, filename: str, data: bytes, mime_type: str = "text/csv") -> list[dict[str, Any]]:
        return await self._push(self.sim.push_document(self.id, filename, data, mime_type=mime_type))

    def find_button(self, label: str, message: dict | None = None) -> tuple[dict, dict]:
        """The newest bot message with an inline button whose text contains ``label``."""
        candidates = [message] if message else reversed(self.bot_messages())
        for msg in candidates:
            markup = msg.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if label in button.get("text", ""):
                        return msg, button
        raise AssertionError(f"no button {label!r}; last message: {self.last_text()!r}")

    def buttons(self, message: dict | None = None) -> list[str]:
        msg = message or self.last()
        return [b["text"] for row in (msg.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]

    async def tap(self, label: str, message: dict | None = None, *,
                  inaccessible: bool = False) -> list[dict[str, Any]]:
        """``inaccessible``: the message is too old for Telegram to show it to the bot (date 0)."""
        msg, button = self.find_button(label, message)
        return await self.press(msg["message_id"], button["callback_data"], inaccessible=inaccessible)

    async def press(self, message_id: int, data: str, *, inaccessible: bool = False) -> list[dict[str, Any]]:
        return await self._push(self.sim.push_callback(self.id, message_id, data, chat_id=self.chat_id,
                                                       inaccessible=inaccessible))

    def alerts(self) -> list[str]:
        return [c.get("text") or "" for c in self.sim.callback_answers(user_id=self.id)]


async def start_bot(sessionmaker, db_url: str, *, database: dict[str, Any] | None = None,
                    sms: dict[str, Any] | None = None, dispatch: dict[str, Any] | None = None,
                    http: dict[str, Any] | None = None, zalo: dict[str, Any] | None = None,
                    **bot_settings: Any) -> BotEnv:
    sim = BotAPISimulator()
    await sim.start()
    settings = Settings(
        telegram={"token": "123456:TEST-token", "api_base": sim.base_url},
        database={"url": db_url, **(database or {})},
        bot={"admins": [ADMIN_ID], **bot_settings},
        # A test taps faster than any person: keeping 1 message/s per chat would make every
        # journey wait a second per step. The limits themselves are proven by the sender's tests,
        # bench/send.py and the demo, all against the simulator's exact enforcement.
        dispatch={"send": {"per_chat_per_second": 1000, "global_per_second": 1000, "group_per_minute": 100_000},
                  **(dispatch or {})},
        sms={"per_second": 1000, **(sms or {})},  # off unless a test turns it on (tests/test_journey_sms.py)
        http=http or {},
        zalo={"per_second": 1000, **(zalo or {})},  # off unless a test turns it on (tests/test_journey_zalo.py)
    )
    clock = FrozenClock(START)
    bot = build_bot(settings)
    # No APScheduler in tests: it runs on the wall clock. Tests move env.clock and call
    # env.engine.tick(request_id), which is all a scheduler wake-up does.
    dp = build_dispatcher(settings, sessionmaker, clock=clock, rng=random.Random(7), use_scheduler=False)
    tracker = HandledTracker()
    # Outermost, so it also sees updates the de-duplication skips.
    existing = list(dp.update.outer_middleware[:])
    for middleware in existing:
        dp.update.outer_middleware.unregister(middleware)
    errors_at = next(i for i, m in enumerate(existing) if isinstance(m, ErrorsMiddleware))
    for middleware in [tracker, *existing[:errors_at + 1], tracker.raised, *existing[errors_at + 1:]]:
        dp.update.outer_middleware.register(middleware)
    env = BotEnv(sim, bot, dp, sessionmaker, settings, clock, tracker)
    env._task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    await asyncio.wait_for(dp["runtime"].started.wait(), 10)
    return env


async def stop_bot(env: BotEnv) -> None:
    try:
        await env.dp.stop_polling()
    except RuntimeError:
        pass
    await asyncio.wait_for(env._task, 10)
    await env.bot.session.close()
    await env.sim.stop()
