"""Thousands of generated updates from every role, through the real bot (issue 10's proof).

A seeded generator (the same run every time, so a failure can be replayed) plays a
newcomer, donors, a club lead, hospital staff, an admin and people in a staff group.
They type commands in any case and with odd arguments, answer prompts with odd digits,
twenty-digit numbers and 4,096 characters, caption photos with commands, share contacts,
locations and files, and press buttons: real ones, old ones, ones Telegram no longer
shows the bot, and forged data for every callback prefix the bot knows.

What must hold for every update: no handler raises (the harness records a raise even
when the last-line error handler answered), every press is answered, and every message
in a private chat gets a reply.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram.filters.callback_data import CallbackData

import bot.callbacks as callbacks
from bot.commands import ADMIN, ALWAYS, DONOR, LEAD, STAFF
from models.tables import ClubMembership, TelegramUser
from tests.harness import ADMIN_ID, TgUser, start_bot, stop_bot
from tests.test_journey_dispatch import seed

SEED = 20261203
# The full run on SQLite; a shorter one on PostgreSQL, whose 32-bit INTEGER is the tighter bound.
UPDATES = {"sqlite": 2_000, "postgresql": 500}
HUGE = "99999999999999999999"
ODD_NUMBERS = ["¹", "②", "٣", "１２", HUGE, "-1", "0", "1.5", "1e9", "2147483648", "9" * 40]
COMMANDS = [c for c, _d in DONOR + LEAD + STAFF + ADMIN + ALWAYS] + ["start", "language", "nonsense"]
OWN_COMMANDS = {"donor": DONOR, "lead": LEAD, "staff": STAFF, "admin": ADMIN, "newcomer": ALWAYS}
ARGS = ["", "O- 1", "O+ 2 platelets critical", "AB Rh- ¹", f"O- {HUGE}", "O- ②", "1", "<b>1</b>",
        "x" * 4000, "O-", "ab+", "ﬀ", "🩸", "1 2 3", "O- 0", "@", "#1", "#" + HUGE] + ODD_NUMBERS
TEXTS = ["55", "55,5", "12/12/1990", "31/02/2000", "14:30", "14:30 23/11", "Nguyễn Thị Lan", "O-", "nam",
         "Nữ", "Hà Nội", "skip", "0912345678", "<i>x", "", " ", "🩸🩸", "x" * 4096, "/", "//", "/ start"] + ODD_NUMBERS
WORDS = ["", "y", "n", "en_route", "arrived", "no_show", "calls_on", "calls_off", "remind_on", "remind_off",
         "edit_blood", "edit_weight", "pause", "donated_today", "open", "edit", "field", "blood", "sex", "never",
         "status", "defer", "deferdef", "remove", "remove_yes", "back", "skip", "save", "join", "cancel", "go",
         "send", "units", "addu", "covered", "covered_yes", "donors", "pick", "mark", "nmark", "calls", "refresh",
         "close", "close_yes", "cancel_yes", "report", "bt", "comp", "units_other", "urg", "deadline", "rh",
         "note_write", "restart", "lead", "staff", "donor", "profile", "contact", "location", "done",
         "use_name", "confirm", "roster", "find", "add", "export", "invitelink", "import", "xlsx", "csv", "en",
         "vi", "xx", "O-", "AB+", "unknown", "M", "F", "donated350", "donated①", "O-.0", "O-.①", "O-." + HUGE,
         "red_cells", "critical", "other", "true", "false", "<b>"] + ODD_NUMBERS
# Past a column's bounds: PostgreSQL INTEGER, SQLite INTEGER (a signed 64 bits), an unsigned 64 bits.
TOO_BIG = [HUGE, "2147483648", "9223372036854775808", "18446744073709551616"]
INTS = ["0", "1", "2", "3", "5", "1000"] + TOO_BIG * 2 + ODD_NUMBERS
FACTORIES: list[type[CallbackData]] = [
    f for f in vars(callbacks).values()
    if isinstance(f, type) and issubclass(f, CallbackData) and f is not CallbackData
]


@dataclass
class Person:
    user: TgUser
    role: str
    private: bool = True
    last_press: tuple[int, str] | None = None  # (message id, data): pressed again, it changes nothing


@pytest.fixture
async def env(db_sessionmaker, db_url):
    env = await start_bot(db_sessionmaker, db_url)
    yield env
    await stop_bot(env)


async def cast(env) -> list[Person]:
    """Everyone who writes: each role, and two people in the hospital's staff group."""
    staff, donors = await seed(env, [("O", "-", 2), ("O", "+", 3), ("A", "+", 4), ("O", "-", 6)])
    lead, admin = env.user(first_name="Lead Minh"), env.user(ADMIN_ID, first_name="Admin")
    async with env.sessionmaker() as s:
        s.add(ClubMembership(club_id=1, telegram_id=lead.id, role="lead"))
        s.add_all([TelegramUser(telegram_id=lead.id, first_name="Lead Minh", locale="vi"),
                   TelegramUser(telegram_id=ADMIN_ID, first_name="Admin", locale="en")])
        await s.commit()
    group = -100_777
    return [
        Person(env.user(first_name="New Hoa", language_code="en"), "newcomer"),
        Person(env.user(first_name="Mới Tâm"), "newcomer"),
        Person(donors[0], "donor"), Person(donors[1], "donor"),
        Person(lead, "lead"), Person(staff, "staff"), Person(admin, "admin"),
        Person(staff.in_group(group), "staff", private=False),
        Person(donors[2].in_group(group), "donor", private=False),
    ]


def _case(rng: random.Random, word: str) -> str:
    return rng.choice([word, word.upper(), word.capitalize(), word])


def _command(rng: random.Random, role: str) -> str:
    # Half of the time one of the person's own commands, so their flows and prompts are reached.
    name = rng.choice([c for c, _d in OWN_COMMANDS[role]] if rng.random() < 0.5 else COMMANDS)
    text = "/" + _case(rng, name)
    if rng.random() < 0.1:
        text += "@redreserve_test_bot"
    args = rng.choice(ARGS)
    return f"{text} {args}".strip()


def _typed(rng: random.Random, role: str) -> str:
    roll = rng.random()
    if roll < 0.45:
        return _command(rng, role)
    # An answer to whatever prompt is open: often an odd number or a whole message's length.
    return rng.choice(ODD_NUMBERS + ["x" * 4096, "9" * 4096]) if roll < 0.65 else rng.choice(TEXTS)


def _forged(rng: random.Random) -> str:
    """Data in the shape of one of the bot's factories, each field from a pool of odd values."""
    factory = rng.choice(FACTORIES)
    parts = [factory.__prefix__]
    for name, field in factory.model_fields.items():
        pool = INTS if "int" in repr(field.annotation) or "Num" in repr(field.annotation) else WORDS
        parts.append(rng.choice(pool + WORDS[:3]))
    if rng.random() < 0.1:
        parts = parts[:rng.randint(1, len(parts))]  # too few fields
    return ":".join(parts).encode()[:64].decode(errors="ignore")


def _buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def _push(env, rng: random.Random, person: Person) -> tuple[dict[str, Any], str]:
    """One generated update from ``person``; returns it and what it was, for the failure message."""
    user, sim = person.user, env.sim
    chat = {} if person.private else {"chat_id": user.chat_id, "chat_type": "supergroup",
                                      "chat_title": user.chat_title}
    bot_messages = user.bot_messages()
    roll = rng.random()
    if roll < 0.06 and person.last_press and any(m["message_id"] == person.last_press[0] for m in bot_messages):
        message_id, data = person.last_press  # the same button again, at once
        update = sim.push_callback(user.id, message_id, data, chat_id=user.chat_id)
        return update, f"press {data!r} on #{message_id} again"
    if roll < 0.40 and bot_messages:
        with_buttons = [m for m in bot_messages if _buttons(m)]
        message = (rng.choice(with_buttons[-3:]) if with_buttons and rng.random() < 0.7
                   else rng.choice(bot_messages))
        real = _buttons(message)
        if real and rng.random() < 0.5:
            data = rng.choice(real)
            if rng.random() < 0.3:  # a real button with one field forged: it reaches the handler's own checks
                fields = data.split(":")
                fields[rng.randrange(1, len(fields))] = rng.choice(ODD_NUMBERS + WORDS)
                data = ":".join(fields).encode()[:64].decode(errors="ignore")
        else:
            data = _forged(rng)
        inaccessible = rng.random() < 0.25
        person.last_press = (message["message_id"], data)
        update = sim.push_callback(user.id, message["message_id"], data, chat_id=user.chat_id,
                                   inaccessible=inaccessible)
        return update, f"press {data!r} on #{message['message_id']}{' (inaccessible)' if inaccessible else ''}"
    if roll < 0.80 or not person.private:
        text = _typed(rng, person.role)
        if not person.private and rng.random() < 0.3 and bot_messages:  # a reply to the bot: heard in groups
            update = sim.push_message(user.id, text, first_name=user.first_name, language_code=user.language_code,
                                      reply_to_message_id=bot_messages[-1]["message_id"], **chat)
        else:
            update = sim.push_message(user.id, text, first_name=user.first_name,
                                      language_code=user.language_code, **chat)
        return update, f"text {text[:80]!r}"
    if roll < 0.88:
        caption = _typed(rng, person.role) if rng.random() < 0.8 else None
        return sim.push_photo(user.id, caption), f"photo captioned {(caption or '')[:80]!r}"
    if roll < 0.93:
        phone = rng.choice(["+84912345678", "0912 345 678", "+1 202 555 0100", "123", HUGE])
        own = rng.random() < 0.8
        return (sim.push_contact(user.id, phone, contact_user_id=user.id if own else 42),
                f"contact {phone!r}{'' if own else ' (someone else)'}")
    if roll < 0.97:
        lat, lon = rng.choice([(20.85, 106.68), (21.03, 105.85), (0.0, 0.0), (-89.9, 179.9)])
        return sim.push_location(user.id, lat, lon), f"location {lat},{lon}"
    body = rng.choice([b"name,phone,blood\nLan,0912345678,O-\n", b"\x00\x01garbage", b"",
                       "họ tên,điện thoại\n¹,②\n".encode()])
    name = rng.choice(["roster.csv", "roster.xlsx", "photo.jpg"])
    caption = rng.choice([None, "/roster", "/IMPORT"])
    return sim.push_document(user.id, name, body, caption=caption), f"file {name} captioned {caption!r}"


@pytest.mark.slow  # about 70 s of CPU for the 2,000 on SQLite
async def test_no_generated_update_crashes_the_bot_and_each_gets_an_answer(env, db_url):
    rng = random.Random(SEED)
    updates = UPDATES[db_url.split("+")[0]]
    people = await cast(env)
    unanswered: list[str] = []
    crashed: list[str] = []
    sent = 0
    while sent < updates:
        # One update per person at a time, all of them in flight together: their replies
        # cannot be told apart otherwise, and the bot handles different people concurrently.
        batch = []
        for person in people:
            before = max((m["message_id"] for m in env.sim.messages(person.user.chat_id)), default=0)
            update, what = _push(env, rng, person)
            batch.append((person, update, what, before))
        for person, update, what, before in batch:
            if "update_id" not in update:
                continue  # a group message privacy mode keeps from the bot
            sent += 1
            await env.tracker.wait(update["update_id"], timeout=30, check=False)
            if (exc := env.tracker.raised_by.get(update["update_id"])) is not None:
                crashed.append(f"{person.role}: {what} → {exc!r}")  # and go on, to find the others
            query = update.get("callback_query")
            if query is not None:
                if not env.sim.callback_answers(query["id"]):
                    unanswered.append(f"{person.role}: {what}")
            elif person.private:
                mine = update["message"]["message_id"]
                if not any(m["message_id"] > max(before, mine) for m in person.user.bot_messages()):
                    unanswered.append(f"{person.role}: {what}")
    kinds = {}  # one example of each distinct failure
    for line in crashed:
        kinds.setdefault(line.rsplit(" → ", 1)[1][:120], line)
    assert crashed == [], (f"{len(crashed)} of {sent} updates crashed a handler, {len(kinds)} ways: "
                           f"{list(kinds.values())}")
    assert unanswered == [], f"{len(unanswered)} of {sent} updates got no answer, e.g. {unanswered[:10]}"
