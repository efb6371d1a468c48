"""How a message kind is declared, checked, stored and read back (the kinds: dispatcher.messages).

A kind is a frozen dataclass deriving from ``Message``, its name, priority and personal
fields given as class arguments. Declaring it registers it in ``KINDS``; its fields are
checked against their annotations when it is built, so a wrong key or type fails where the
message is written, not in the sender. The outbox stores ``to_json()``; ``load`` reads a
stored row back leniently: keys an earlier version wrote and this one no longer knows are
ignored, and fields added since take their defaults.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

# Field metadata: filled in when the message is sent (dispatcher.sender's ``prepare``), never stored.
NOT_STORED = {"stored": False}


class InvalidParams(TypeError):
    """A message's parameters do not match its kind's declaration."""


class Record:
    """A frozen dataclass whose fields are checked against their annotations when it is built."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not _conforms(hints[f.name], value):
                raise InvalidParams(f"{type(self).__name__}.{f.name} must be {f.type}, not {value!r}")

    def to_json(self) -> dict[str, Any]:
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.metadata.get("stored", True)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any:
        hints = _hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        missing = [n for n, f in known.items() if n not in data and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise InvalidParams(f"stored {cls.__name__} lacks {', '.join(missing)}")
        return cls(**{n: _decode(hints[n], data[n]) for n in known if n in data})


class Message(Record):
    """One kind of message the dispatcher asks the bot to send: its parameters and its plain English."""

    kind: ClassVar[str]
    priority: ClassVar[int]  # lower goes first (dispatcher.sender ranks by it)
    personal: ClassVar[tuple[str, ...]]  # fields cleared once the message has left (DOMAIN.md §7)

    def __init_subclass__(cls, *, kind: str, priority: int, personal: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if kind in KINDS:
            raise TypeError(f"message kind {kind!r} is declared twice ({KINDS[kind].__name__}, {cls.__name__})")
        if cls.plain is Message.plain:
            raise TypeError(f"message kind {kind!r} ({cls.__name__}) has no plain-text rendering")
        cls.kind, cls.priority, cls.personal = kind, priority, tuple(personal)
        KINDS[kind] = cls

    def plain(self) -> str:
        """The message in plain English, for logs, tests and the benches (the bot renders its own)."""
        raise NotImplementedError


KINDS: dict[str, type[Message]] = {}


def load(kind: str, params: Mapping[str, Any]) -> Message:
    """A stored row's parameters as its kind's message."""
    if kind not in KINDS:
        raise InvalidParams(f"unknown message kind {kind!r}")
    return KINDS[kind].from_json(params)


def personal_fields(kind: str) -> tuple[str, ...]:
    cls = KINDS.get(kind)
    return () if cls is None else cls.personal


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _conforms(tp: Any, value: Any) -> bool:
    if tp is Any:
        return True
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_conforms(a, value) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(args[0], v) for v in value)
        return len(args) == len(value) and all(_conforms(a, v) for a, v in zip(args, value))
    if origin in (Mapping, dict):
        return isinstance(value, Mapping)  # free-form by design (a board's snapshot): not checked further
    if isinstance(tp, type):
        return isinstance(value, tp)
    raise TypeError(f"a message field cannot be declared as {tp!r}")


def _encode(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(tp: Any, value: Any) -> Any:
    """JSON back into ``tp``: lists into tuples, objects into records."""
    origin, args = get_origin(tp), get_args(tp)
    if value is None:
        return None
    if origin in (Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        return _decode(present[0], value) if len(present) == 1 else value
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value))
    if isinstance(tp, type) and issubclass(tp, Record) and isinstance(value, Mapping):
        return tp.from_json(value)
    return value
