"""The registry of message kinds: each kind declared once, checked where it is written, read back leniently."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, get_args, get_origin, get_type_hints

import pytest
from sqlmodel import select

from bot.i18n import make_i18n
from bot.render import RENDERERS, render_outgoing
from dispatcher import messages as M
from dispatcher.message_base import NOT_STORED, InvalidParams, Record
from dispatcher.outbox import enqueue
from dispatcher.sender import Outgoing, Sender
from models.dispatch_tables import OutboxMessage
from tests.dispatch_helpers import FakeTelegram, settings

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


# Fields whose values mean something to the renderers; any other is filled from its annotation.
MEANINGFUL = {"abo": "O", "rh": "-", "type": "O-", "component": "red_cells", "urgency": "critical", "reason": "covered",
              "eligible": (("O", "-", 2), ("A", "+", 0)), "requests": (("O", "-", 1, 1),), "month": "2026-11"}


def example(cls: type) -> Any:
    """A message of kind ``cls`` with every stored field filled."""
    hints = get_type_hints(cls)
    return cls(**{f.name: MEANINGFUL[f.name] if f.name in MEANINGFUL else _value(hints[f.name])
                  for f in dataclasses.fields(cls) if f.metadata.get("stored", True)})


def _value(tp: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if args and type(None) in args:  # optional: the present case says more
        return _value(next(a for a in args if a is not type(None)))
    if origin is tuple:
        return (_value(args[0]),) if args[-1] is Ellipsis else tuple(_value(a) for a in args)
    if isinstance(tp, type) and issubclass(tp, Record):
        return example(tp)
    return {bool: True, int: 3, float: 4.2, str: "O"}[tp]


def test_every_kind_declares_its_parameters_priority_personal_data_and_plain_text():
    assert len(M.KINDS) >= 20
    for kind, cls in M.KINDS.items():
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, kind
        assert cls.kind == kind and isinstance(cls.priority, int), kind
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(cls.personal) <= fields, f"{kind}: personal fields {cls.personal} are not parameters"
        assert example(cls).plain(), kind


def test_every_kind_has_a_telegram_rendering():
    missing = [cls.__name__ for cls in M.KINDS.values() if cls not in RENDERERS]
    assert not missing, f"no Telegram rendering in bot/render.py for {missing}"
    i18n = make_i18n()
    for kind, cls in M.KINDS.items():
        if any(f.metadata == NOT_STORED for f in dataclasses.fields(cls)):
            continue  # read when sent (the board): rendered in tests/test_journey_desk.py and the dispatch tests
        for locale in ("vi", "en"):
            text, _ = render_outgoing(Outgoing(1, "k", 5, kind, example(cls), locale, None), i18n, "vi")
            assert text.strip(), (kind, locale)


def test_a_kind_without_priority_or_plain_text_or_declared_twice_is_refused_when_declared():
    with pytest.raises(TypeError, match="priority"):
        @dataclasses.dataclass(frozen=True)
        class NoPriority(M.Message, kind="no_priority"):  # type: ignore[call-arg]
            def plain(self) -> str:
                return "x"
    with pytest.raises(TypeError, match="no plain-text rendering"):
        @dataclasses.dataclass(frozen=True)
        class NoPlain(M.Message, kind="no_plain", priority=5):
            pass
    with pytest.raises(TypeError, match="declared twice"):
        @dataclasses.dataclass(frozen=True)
        class AnotherCall(M.Message, kind="call", priority=1):
            def plain(self) -> str:
                return "x"
    assert {"no_priority", "no_plain"}.isdisjoint(M.KINDS) and M.KINDS["call"] is M.Call


def test_a_wrong_key_or_type_fails_where_the_message_is_written():
    with pytest.raises(TypeError, match="reson"):
        M.StandDown(request_id=1, reson="covered")  # type: ignore[call-arg]
    with pytest.raises(InvalidParams, match=r"StandDown.request_id must be int, not '1'"):
        M.StandDown(request_id="1", reason="covered")  # type: ignore[arg-type]
    with pytest.raises(InvalidParams, match="Listed.phone"):
        M.Listed(name="An", phone=None, type="O-")  # type: ignore[arg-type]
    with pytest.raises(InvalidParams, match="LeadDigest.eligible"):
        dataclasses.replace(example(M.LeadDigest), eligible=[["O", "-", 2]])  # lists, not the declared tuples


async def test_enqueue_takes_a_declared_kind_only_and_writes_nothing_else(db_sessionmaker):
    async with db_sessionmaker() as s:
        with pytest.raises(TypeError, match="must be a message kind"):
            await enqueue(s, key="k", chat_id=5, params={"request_id": 1, "reason": "covered"}, now=NOW)
        assert await enqueue(s, key="k2", chat_id=5, params=M.StandDown(request_id=1, reason="covered"), now=NOW)
        await s.commit()
    async with db_sessionmaker() as s:
        rows = (await s.exec(select(OutboxMessage))).all()
    assert [(r.key, r.kind, r.params, r.priority) for r in rows] == [
        ("k2", "stand_down", {"request_id": 1, "reason": "covered"}, M.StandDown.priority)]


def test_every_kind_is_stored_and_read_back_unchanged():
    for kind, cls in M.KINDS.items():
        message = example(cls)
        assert M.load(kind, message.to_json()) == message, kind


def test_a_board_stores_only_its_request_the_view_is_read_when_sent():
    board = M.Board(request_id=4, view={"state": "open"})
    assert board.to_json() == {"request_id": 4}


def test_a_stored_row_is_read_leniently_and_a_broken_one_says_what_is_missing():
    stored = example(M.Call).to_json() | {"patient": "never stored today, written by some older version"}
    assert M.load("call", stored) == example(M.Call)
    assert M.load("lead_rare", example(M.LeadRare).to_json() | {"call_list": [
        {"name": "Bình", "phone": "+84900000000", "type": "O-"}]}).call_list == (
        M.Listed(name="Bình", phone="+84900000000", type="O-", why=""),)  # "why" came later
    with pytest.raises(InvalidParams, match="stored StandDown lacks reason"):
        M.load("stand_down", {"request_id": 1})
    with pytest.raises(InvalidParams, match="unknown message kind 'notice'"):
        M.load("notice", {})


# Rows as the code before the registry wrote them (free dicts): still sent, in the same words.
LEGACY_ROWS = {
    "call": {"request_id": 7, "token": "abc123", "hospital": "BV Bạch Mai", "address": "78 Giải Phóng", "abo": "O",
             "rh": "-", "component": "red_cells", "units": 2, "urgency": "critical",
             "deadline": "2026-03-10T05:00:00+00:00", "deadline_local": "12:00 10/03/2026", "distance_km": 3.4,
             "travel_min": 12, "note": "", "late": False, "arrive_local": "09:40"},
    "lead_digest": {"club": "CLB Hà Nội", "week": "2026-W11", "members": 8,
                    "eligible": [["O", "-", 2], ["A", "-", 0]], "eligible_total": 2, "paused": 1, "unreachable": 0,
                    "radius_km": 100.0, "days": 7, "requests": [["O", "-", 1, 1]], "requests_total": 1,
                    "covered_total": 1},
    "stand_down": {"request_id": 7, "reason": "covered"},
}


async def test_rows_written_before_the_registry_are_still_sent_in_the_same_words(db_sessionmaker):
    async with db_sessionmaker() as s:
        for kind, params in LEGACY_ROWS.items():
            s.add(OutboxMessage(key=f"old:{kind}", chat_id=5, kind=kind, params=params, locale="en", priority=5,
                                next_attempt_at=NOW, created_at=NOW))
        await s.commit()
    tg = FakeTelegram()
    delivered: dict[str, Outgoing] = {}

    class Recording:
        async def deliver(self, m: Outgoing):
            delivered[m.kind] = m
            return await tg.deliver(m)

    await Sender(db_sessionmaker, Recording(), settings().dispatch.send).run_until_idle()
    assert set(delivered) == set(LEGACY_ROWS)
    assert delivered["call"].params.plain() == (
        "Urgent: BV Bạch Mai needs O- red_cells by 12:00 10/03/2026. 3.4 km, about 12 min away. Can you come?")
    assert delivered["lead_digest"].params.plain() == (
        "Weekly digest for CLB Hà Nội (2026-W11): 8 members, 2 able to give now: O- 2 · A- 0. Paused or "
        "deferred: 1; not reachable on Telegram: 0. Requests within 100 km in 7 days: 1, 1 covered: O- 1 (1 covered).")
    text, markup = render_outgoing(delivered["call"], make_i18n(), "vi")  # the row's locale: English
    assert text == ("🩸 <b>Urgent blood request</b>\nBV Bạch Mai needs <b>O−</b> red cells (🚨 critical).\n"
                    "📍 3.4 km from you, about 12 min.\n⏰ Needed by 12:00 10/03/2026.\nCan you come?")
    assert markup is not None  # the answer buttons, bound to the stored token


async def test_a_stored_row_nobody_can_read_fails_once_with_the_reason_and_is_not_retried(db_sessionmaker):
    async with db_sessionmaker() as s:
        s.add(OutboxMessage(key="broken", chat_id=5, kind="stand_down", params={"request_id": 1}, priority=1,
                            next_attempt_at=NOW, created_at=NOW))
        await s.commit()
    tg = FakeTelegram()
    await Sender(db_sessionmaker, tg, settings().dispatch.send).run_until_idle()
    async with db_sessionmaker() as s:
        row = (await s.exec(select(OutboxMessage))).one()
    assert (row.state, row.last_error, tg.sent) == ("failed", "stored StandDown lacks reason", [])
