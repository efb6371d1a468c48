"""Logging for ``redreserve run``: one handler on the root logger, text or JSON, never a secret in full.

Everything goes through the standard library's logging, so aiogram's, aiohttp's and
APScheduler's own lines come out at the configured level in the same format as ours.
Each line carries the update id and the request id of the work it belongs to when
there is one (:func:`log_context`, set by the bot's update middleware and by the
dispatcher). A filter on the handler redacts Bot API tokens (aiohttp logs URLs, which
hold the token), the configured secrets, and phone numbers (donors' privacy: a log
file is read by whoever runs the server).

This module uses only the standard library: the dispatcher sets the context too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO

update_id_var: ContextVar[int | None] = ContextVar("update_id", default=None)
request_id_var: ContextVar[int | None] = ContextVar("request_id", default=None)

# "123456789:AA…" as BotFather gives it; the id before the colon is public (it is the bot's id).
_TOKEN = re.compile(r"(?<!\d)(\d{5,20}):[A-Za-z0-9_-]{20,}")
# Phone numbers as people and our own code write them: E.164 (+84912345678), 84912345678,
# and local 0912345678, with or without spaces or dashes between the digits. The last three
# digits stay, so that an operator can tell two numbers apart.
_PHONE = re.compile(r"(?<![\w+.])(?:\+\d(?:[ -]?\d){7,14}|84\d{9}|0(?:[ -]?\d){9,10})(?!\w|\.\d)")
_REDACTED = "[redacted]"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with tokens, the given secrets and phone numbers masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    text = _TOKEN.sub(lambda m: f"{m.group(1)}:{_REDACTED}", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_phone(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    plus = "+" if m.group(0).startswith("+") else ""
    return f"{plus}{'•' * (len(digits) - 3)}{digits[-3:]}"


class RedactFilter(logging.Filter):
    """Rewrites each record's message (and its traceback) with :func:`redact` before any formatter sees it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class ContextFilter(logging.Filter):
    """Copies the current update id and request id onto the record (unless given with ``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # setattr: a LogRecord takes any attribute, and the formatters read these two by name.
        if getattr(record, "update_id", None) is None:
            setattr(record, "update_id", update_id_var.get())
        if getattr(record, "request_id", None) is None:
            setattr(record, "request_id", request_id_var.get())
        context = [f"{name}={value}" for name, value in (("update", getattr(record, "update_id")),
                                                          ("request", getattr(record, "request_id")))
                   if value is not None]
        record.context = f" [{' '.join(context)}]" if context else ""
        return True


@contextmanager
def log_context(*, update_id: int | None = None, request_id: int | None = None) -> Iterator[None]:
    """Lines logged inside carry these ids (tasks started inside inherit them)."""
    tokens = []
    if update_id is not None:
        tokens.append((update_id_var, update_id_var.set(update_id)))
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, update_id, request_id, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {"time": _utc(record), "level": record.levelname, "logger": record.name,
                                    "message": record.getMessage()}
        for key in ("update_id", "request_id"):
            if getattr(record, key, None) is not None:
                entry[key] = getattr(record, key)
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _utc(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")


def make_handler(fmt: str, secrets: Iterable[str] = (), stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("redreserve")
    return handler


@contextmanager
def logging_to_stderr(level: str, fmt: str, secrets: Iterable[str] = (),
                      stream: IO[str] | None = None) -> Iterator[logging.Handler]:
    """Inside, every logger's lines at ``level`` or above go to stderr (or ``stream``) in ``fmt``;
    undone on the way out, so that an in-process caller (a test) gets its logging back."""
    root = logging.getLogger()
    handler = make_handler(fmt, secrets, stream)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
